/** Readable output helpers of the CLI. */
import type { ClusterInfo } from '../client/types.js';

export interface Out {
  /** Prints `value` as one JSON line with --json, else the readable form (text or raw bytes). */
  result(value: unknown, readable: () => string | Uint8Array): void;
  /** A side note on stderr. */
  note(line: string): void;
  error(e: unknown): void;
}

/** Left-aligned columns with a header row. */
export function printTable(header: string[], rows: string[][]): string {
  const all = [header, ...rows];
  const widths = header.map((_, i) => Math.max(...all.map((r) => (r[i] ?? '').length)));
  return all
    .map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join('  '))
    .join('\n');
}

export function printCluster(c: ClusterInfo): string {
  const lines = [
    `metadata: leader ${c.metadata.leader ?? 'none'}, members ${c.metadata.members.join(', ')}`,
    '',
  ];
  const age = (ms: number | null) => (ms === null ? '?' : `${ms} ms`);
  lines.push(
    printTable(
      ['NODE', 'ROLE', 'ADDR', 'PID', 'STATE', 'HEARTBEAT'],
      c.nodes.map((n) => [
        String(n.id),
        n.role,
        n.addr,
        n.pid === null ? '-' : String(n.pid),
        n.state,
        age(n.heartbeat_age_ms),
      ]),
    ),
    '',
  );
  lines.push(
    printTable(
      ['GROUP', 'MEMBERS', 'LEADER', 'TERM'],
      c.groups.map((g) => [
        String(g.id),
        g.members.join(','),
        g.leader === null ? 'none' : String(g.leader),
        String(g.term),
      ]),
    ),
    '',
  );
  const shardRows = c.tables.flatMap((t) =>
    t.shards.map((s) => [t.name, t.engine, JSON.stringify(s.start), JSON.stringify(s.end), String(s.group)]),
  );
  lines.push(printTable(['TABLE', 'ENGINE', 'START', 'END', 'GROUP'], shardRows));
  return lines.join('\n');
}
