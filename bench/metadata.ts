/**
 * Catalog and control-plane figures (not a timed test): apply rate, snapshot size and time, routing
 * view build time, decide() time for many groups. Run: npx tsx bench/metadata.ts
 */
import { performance } from 'node:perf_hooks';
import {
  decide,
  defaultControlConfig,
  emptyControlMemory,
  type NodeHeartbeat,
} from '../src/control/index.js';
import { logIndex, type NodeId, nodeId, term } from '../src/lib/ids.js';
import { Catalog } from '../src/metadata/catalog.js';
import { routeKey } from '../src/metadata/routing.js';

const nodes = 300;
const groups = 100;
const tables = 10_000;

function time<T>(label: string, fn: () => T, per?: number): T {
  const t0 = performance.now();
  const out = fn();
  const ms = performance.now() - t0;
  const rate = per === undefined ? '' : ` (${Math.round((per / ms) * 1000).toLocaleString()} /s)`;
  console.log(`${label.padEnd(44)} ${ms.toFixed(1).padStart(9)} ms${rate}`);
  return out;
}

const c = new Catalog();
time(
  `register ${nodes} nodes`,
  () => {
    for (let i = 1; i <= nodes; i++) {
      const cap = { replicasMax: 100, diskBytes: 1e12 };
      c.apply({
        type: 'registerNode',
        nodeKey: `n${i}`,
        address: `10.0.0.${i}:7000`,
        role: 'storage',
        capacity: cap,
        atMs: 0,
      });
    }
  },
  nodes,
);
time(
  `create ${groups} groups + leaders`,
  () => {
    for (let g = 0; g < groups; g++) {
      const members = [1, 2, 3].map((k) => nodeId(g * 3 + k));
      const r = c.apply({ type: 'createGroup', members, atMs: 0 });
      if (!r.ok) throw new Error(r.message);
      c.apply({ type: 'setGroupLeader', group: r.value.group, leader: members[0]!, term: term(1) });
    }
  },
  groups,
);
time(
  `create ${tables} tables`,
  () => {
    for (let t = 0; t < tables; t++)
      c.apply({ type: 'createTable', name: `t${t}`, engine: 'btree', atMs: t });
  },
  tables,
);
const snap = time('snapshot()', () => c.snapshot());
console.log(
  `snapshot size: ${snap.length.toLocaleString()} bytes (${(snap.length / tables).toFixed(0)} B/table)`,
);
time('restore(snapshot) incl. invariant check', () => Catalog.restore(snap));
const file = time('backup()', () => c.backup(Date.now()));
time('restoreBackup(file)', () => Catalog.restoreBackup(file));
const view = time('routing view build', () => c.routing());
const key = new TextEncoder().encode('some-key');
time(
  'route 1,000,000 keys (cached view)',
  () => {
    let s = 0;
    for (let i = 0; i < 1_000_000; i++) s += routeKey(c.routing().tables.get(`t${i % tables}`)!, key).epoch;
    return s;
  },
  1_000_000,
);
const hb = new Map<NodeId, NodeHeartbeat>();
for (const g of c.state.groups.values()) {
  for (const m of g.members) {
    const replicas = [
      {
        group: g.id,
        term: term(1),
        role: g.leader === m.node ? ('leader' as const) : ('follower' as const),
        lastLogIndex: logIndex(9),
        lastLogTerm: term(1),
        commitIndex: logIndex(9),
        appliedIndex: logIndex(9),
      },
    ];
    hb.set(m.node, { lastSeenMs: 99_900, health: { diskOk: true, stalled: false }, replicas });
  }
}
const input = {
  catalog: c.state,
  heartbeats: hb,
  nowMs: 100_000,
  leaderSinceMs: 0,
  config: defaultControlConfig,
  memory: emptyControlMemory,
};
time(
  `decide() x100, ${groups} groups / ${nodes} nodes`,
  () => {
    for (let i = 0; i < 100; i++) decide(input);
  },
  100,
);
void view;
