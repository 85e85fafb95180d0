/** A small parser of the Prometheus text exposition (0.0.4) for tests: families and samples. */

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Exposition {
  /** Family name -> TYPE. */
  types: Map<string, string>;
  samples: Sample[];
}

const sampleRe = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/;
const labelRe = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(?:,|$)/gy;

function parseLabels(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  labelRe.lastIndex = 0;
  let m: RegExpExecArray | null;
  let end = 0;
  while ((m = labelRe.exec(text)) !== null) {
    out[m[1] as string] = (m[2] as string).replace(/\\n/g, '\n').replace(/\\(["\\])/g, '$1');
    end = labelRe.lastIndex;
  }
  if (end !== text.length) throw new Error(`bad labels: {${text}}`);
  return out;
}

/** Parses a whole exposition; throws on a line that is neither a comment nor a sample. */
export function parseExposition(text: string): Exposition {
  const types = new Map<string, string>();
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    if (line.startsWith('# TYPE ')) {
      const [name, type] = line.slice(7).split(' ');
      if (types.has(name as string)) throw new Error(`family ${name} declared twice`);
      types.set(name as string, type as string);
      continue;
    }
    if (line.startsWith('#')) continue;
    const m = sampleRe.exec(line);
    if (m === null) throw new Error(`bad sample line: ${line}`);
    const v = m[3] as string;
    const value =
      v === '+Inf' ? Number.POSITIVE_INFINITY : v === '-Inf' ? Number.NEGATIVE_INFINITY : Number(v);
    if (Number.isNaN(value) && v !== 'NaN') throw new Error(`bad value: ${line}`);
    samples.push({ name: m[1] as string, labels: parseLabels(m[2] ?? ''), value });
  }
  return { types, samples };
}

/** Samples of `name` whose labels include `match`. */
export function find(e: Exposition, name: string, match: Record<string, string> = {}): Sample[] {
  return e.samples.filter(
    (s) => s.name === name && Object.entries(match).every(([k, v]) => s.labels[k] === v),
  );
}

/** The value of the one sample of `name` with these labels (undefined if none; throws if several). */
export function value(e: Exposition, name: string, match: Record<string, string> = {}): number | undefined {
  const f = find(e, name, match);
  if (f.length > 1) throw new Error(`${name} ${JSON.stringify(match)}: ${f.length} samples`);
  return f[0]?.value;
}
