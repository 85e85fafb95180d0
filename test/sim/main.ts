/**
 * `npm run sim -- [--seeds N] [--seed S] [--json] [--bug NAME] [--list-bugs]`
 * `npm run sim:soak -- --minutes M [--bug NAME]`
 *
 * Runs seeds S, S+1, ... (S defaults to a fixed 1; one seed when only --seed is given). A failing
 * seed prints its violation, the command that replays it, and the last events before it. With
 * --json the last line is {"seeds","violations","ops","seeds_per_min","first_failing_seed"}.
 */
import { runSeed, type SeedResult, type SimBug, simBugs } from './cluster.js';

interface Args {
  seeds: number;
  seed: number;
  json: boolean;
  bugs: SimBug[];
  listBugs: boolean;
  soakMinutes: number | null;
  faultMs: number | undefined;
  tracesMax: number;
  quiet: boolean;
  removeLeaders: boolean;
}

const usage = `usage: npm run sim -- [--seeds N] [--seed S] [--json] [--bug NAME] [--list-bugs]
       npm run sim:soak -- [--minutes M] [--seed S] [--bug NAME] [--json]
options: --fault-ms MS (length of the fault phase, default 10000), --quiet,
         --remove-leaders (the metadata manager always removes leaders directly: see test/sim/CORE_ISSUES.md)`;

function parseArgs(argv: readonly string[]): Args {
  const a: Args = {
    seeds: 0,
    seed: 1,
    json: false,
    bugs: [],
    listBugs: false,
    soakMinutes: null,
    faultMs: undefined,
    tracesMax: 1,
    quiet: false,
    removeLeaders: false,
  };
  let seedGiven = false;
  const num = (i: number, name: string): number => {
    const v = Number(argv[i]);
    if (!Number.isFinite(v) || v < 0) throw new Error(`${name} needs a non-negative number`);
    return v;
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--seeds') a.seeds = Math.floor(num(++i, arg));
    else if (arg === '--seed') {
      a.seed = Math.floor(num(++i, arg));
      seedGiven = true;
    } else if (arg === '--json') a.json = true;
    else if (arg === '--quiet') a.quiet = true;
    else if (arg === '--remove-leaders') a.removeLeaders = true;
    else if (arg === '--list-bugs') a.listBugs = true;
    else if (arg === '--soak') a.soakMinutes = a.soakMinutes ?? 10;
    else if (arg === '--minutes') a.soakMinutes = num(++i, arg);
    else if (arg === '--fault-ms') a.faultMs = num(++i, arg);
    else if (arg === '--bug') {
      const b = argv[++i];
      if (!simBugs.includes(b as SimBug)) throw new Error(`unknown bug ${b}; --list-bugs shows them`);
      a.bugs.push(b as SimBug);
    } else if (arg === '--help' || arg === '-h') {
      console.log(usage);
      process.exit(0);
    } else throw new Error(`unknown argument ${arg}\n${usage}`);
  }
  if (a.seeds === 0) a.seeds = seedGiven ? 1 : 100;
  return a;
}

function replayCommand(args: Args, seed: number): string {
  const bugs = args.bugs.map((b) => ` --bug ${b}`).join('');
  const fault = args.faultMs === undefined ? '' : ` --fault-ms ${args.faultMs}`;
  return `npm run sim -- --seed ${seed}${bugs}${fault}${args.removeLeaders ? ' --remove-leaders' : ''}`;
}

function printFailure(args: Args, r: SeedResult): void {
  const out = args.json ? console.error : console.log;
  out(`\n=== seed ${r.seed}: VIOLATION of ${r.invariant}`);
  out(`replay: ${replayCommand(args, r.seed)}`);
  out(`setup: ${r.summary}`);
  out(`at simulated t=${r.simulatedMs.toFixed(1)} ms after ${r.events} events`);
  out(`--- last ${r.trace.length} events ---`);
  for (const line of r.trace) out(line);
  out('--- violation ---');
  out(r.message ?? '');
}

function main(): void {
  const args = parseArgs(process.argv.slice(2));
  if (args.listBugs) {
    for (const b of simBugs) console.log(b);
    return;
  }
  const started = performance.now();
  const soakUntil = args.soakMinutes === null ? null : started + args.soakMinutes * 60_000;
  let seeds = 0;
  let violations = 0;
  let ops = 0;
  let simulatedMs = 0;
  let inconclusive = 0;
  let firstFailing: number | null = null;
  let printed = 0;
  for (let s = args.seed; soakUntil !== null ? performance.now() < soakUntil : seeds < args.seeds; s++) {
    const r = runSeed({
      seed: s,
      bugs: args.bugs,
      removeLeaders: args.removeLeaders,
      ...(args.faultMs === undefined ? {} : { faultMs: args.faultMs }),
    });
    seeds++;
    ops += r.ops;
    simulatedMs += r.simulatedMs;
    if (r.report?.verdict === 'inconclusive') inconclusive++;
    if (!r.ok) {
      violations++;
      firstFailing ??= r.seed;
      if (printed++ < args.tracesMax) printFailure(args, r);
      else if (!args.json)
        console.log(`seed ${r.seed}: VIOLATION of ${r.invariant} (${replayCommand(args, r.seed)})`);
    } else if (!args.quiet && !args.json && args.seeds === 1) {
      console.log(`seed ${r.seed}: ok (${r.ops} ops, ${r.summary})`);
    }
    if (!args.json && !args.quiet && seeds % 25 === 0) {
      console.log(`... ${seeds} seeds, ${violations} violations`);
    }
  }
  const minutes = (performance.now() - started) / 60_000;
  const seedsPerMin = Math.round((seeds / Math.max(minutes, 1e-9)) * 10) / 10;
  const simOpsPerS = Math.round(ops / Math.max(minutes * 60, 1e-9));
  if (!args.json) {
    console.log(
      `${seeds} seeds, ${violations} violations, ${ops} client ops, ${seedsPerMin} seeds/min, ` +
        `${simOpsPerS} simulated client ops/s of wall time, ${(simulatedMs / 1000).toFixed(0)} s simulated` +
        (inconclusive > 0 ? `, ${inconclusive} seeds with an inconclusive linearizability check` : '') +
        (firstFailing === null ? '' : `, first failing seed ${firstFailing}`),
    );
  }
  if (args.json) {
    console.log(
      JSON.stringify({
        seeds,
        violations,
        ops,
        seeds_per_min: seedsPerMin,
        first_failing_seed: firstFailing,
      }),
    );
  }
  process.exitCode = violations > 0 ? 1 : 0;
}

try {
  main();
} catch (e) {
  console.error(e instanceof Error ? e.message : String(e));
  process.exitCode = 2;
}
