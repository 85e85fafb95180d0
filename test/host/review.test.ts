/**
 * Correctness review (wave 3): driver races found by reading src/host against docs/consensus.md.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Entry, SnapshotMeta } from '../../src/consensus/types.js';
import { Descriptors, initialSnapshot } from '../../src/host/descriptor.js';
import { memoryCommand } from '../../src/host/memory-sm.js';
import { TesseraError } from '../../src/lib/errors.js';
import type { CommandOutcome } from '../../src/host/types.js';
import { type GroupId, groupId, logIndex, nodeId, term } from '../../src/lib/ids.js';
import { Cluster, members, waitFor } from './harness.js';

let cluster: Cluster | undefined;
afterEach(async () => {
  await cluster?.close();
  cluster = undefined;
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function cmds(prefix: string, n: number, from = 0): Uint8Array[] {
  return Array.from({ length: n }, (_, k) => memoryCommand(`${prefix}${from + k}`, `v${from + k}`));
}

const okCount = (outs: CommandOutcome<string>[]): number => outs.filter((o) => o.ok).length;

describe('host review: snapshot capture vs the apply lane', () => {
  it('a snapshot sent while applies are queued in the lane describes exactly the captured state', async () => {
    const c = (cluster = await Cluster.start(3, { checkpointEntries: 20, compactionMarginEntries: 5 }));
    const g: GroupId = await c.addGroup(1, members(1, 2, 3), 'self');
    const l = await c.leader(g);
    const f = [1, 2, 3].find((i) => i !== l)!;
    await c.stop(f);
    for (let b = 0; b < 4; b++) expect(okCount(await c.host(l).propose(g, cmds('s', 25, b * 25)))).toBe(25);
    await c.host(l).checkpoint(g);
    expect(c.host(l).status(g)!.firstIndex).toBeGreaterThan(50);

    // The leader's applies become slow, so the apply lane holds committed entries not yet applied
    // (the core's applied index lags what the lane will have applied when a capture runs).
    const sm = c.sm(l, g);
    const apply = sm.apply.bind(sm);
    sm.apply = async (entries: readonly Entry[]) => {
      await sleep(40);
      return apply(entries);
    };
    const mismatches: string[] = [];
    const snapshot = sm.snapshot.bind(sm);
    sm.snapshot = async (meta: SnapshotMeta) => {
      if (meta.index !== sm.applied.index) mismatches.push(`meta ${meta.index}, state ${sm.applied.index}`);
      return snapshot(meta);
    };

    // A steady stream of proposals (several in flight) keeps the lane busy while the follower returns.
    let stop = false;
    let acked = 0;
    const writer = async (j: number): Promise<void> => {
      for (let k = 0; !stop; k++) {
        // On a loaded machine leadership may move: then this writer just idles (the check below holds).
        const outs = await c
          .host(l)
          .propose(g, cmds(`w${j}-${k}-`, 1))
          .catch(async () => {
            await sleep(20);
            return [];
          });
        acked += okCount(outs);
      }
    };
    const writers = [0, 1, 2, 3, 4, 5, 6, 7].map(writer);
    await waitFor(() => acked >= 20, 20_000, 'writes under way');
    await c.restart(f);
    await waitFor(
      () => (c.node(f).sms.get(g)?.applied.index ?? 0) >= c.host(l).status(g)!.firstIndex,
      15_000,
      'the follower to catch up by snapshot',
    );
    stop = true;
    await Promise.all(writers);
    expect(acked).toBeGreaterThan(0);
    expect(mismatches).toEqual([]);
    // And the follower converges to the leader's data.
    await waitFor(
      () => c.node(f).sms.get(g)?.applied.index === sm.applied.index,
      15_000,
      'the follower to converge',
    );
    expect([...c.sm(f, g).data].sort()).toEqual([...sm.data].sort());
  }, 40_000);
});

describe('host review: proposals cut off by a close', () => {
  it('a proposal pending when the host closes is answered as possibly applied, never as a plain failure', async () => {
    const c = (cluster = await Cluster.start(3));
    const g: GroupId = await c.addGroup(1, members(1, 2, 3), 'self');
    const l = await c.leader(g);
    for (const f of [1, 2, 3].filter((i) => i !== l)) await c.stop(f);
    // The entry is in the leader's log (it could still commit after a restart) but cannot commit now.
    const pending = c.host(l).propose(g, cmds('p', 1));
    await sleep(30);
    await c.stop(l);
    const [o] = await pending;
    expect(o?.ok).toBe(false);
    if (o === undefined || o.ok) return;
    // A request manager retries with the same id and, if it never learns the fate, must answer
    // OUTCOME_UNKNOWN: the error has to say the write may have been delivered.
    const unknown = o.error.code === 'OUTCOME_UNKNOWN' || o.error.detail?.maybeDelivered === true;
    expect(unknown, `${o.error.code} ${JSON.stringify(o.error.detail)}`).toBe(true);
  });
});

describe('host review: descriptor writes of one group that overlap', () => {
  it('(a checkpoint compacting while a snapshot installs) both land, the last one wins', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tessera-host-review-'));
    try {
      const ds = new Descriptors(dir);
      await ds.init();
      const m = { voters: [nodeId(1), nodeId(2), nodeId(3)], learners: [] };
      const at = (i: number) => ({ ...initialSnapshot(m), index: logIndex(i), term: term(2) });
      const d = { group: groupId(4), electionMode: 'self' as const, snapshot: at(0), installing: null };
      for (let k = 0; k < 20; k++) {
        const writes = [
          ds.write({ ...d, snapshot: at(10 * k + 1), installing: at(10 * k + 5) }),
          ds.write({ ...d, snapshot: at(10 * k + 2) }),
          ds.write({ ...d, snapshot: at(10 * k + 5) }),
        ];
        const results = await Promise.allSettled(writes);
        expect(results.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled', 'fulfilled']);
        expect((await ds.read(groupId(4)))?.snapshot.index).toBe(10 * k + 5);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('host review: a replica stopped by a state machine error', () => {
  it('refuses new proposals and reads at once instead of leaving them waiting forever', async () => {
    const c = (cluster = await Cluster.start(3));
    const g: GroupId = await c.addGroup(1, members(1, 2, 3), 'self');
    const l = await c.leader(g);
    const sm = c.sm(l, g);
    sm.apply = async () => {
      throw new TesseraError('INTERNAL', 'engine failed');
    };
    const [first] = await c.host(l).propose(g, cmds('a', 1));
    expect(first?.ok).toBe(false);
    const settled = (p: Promise<unknown>) =>
      Promise.race([
        p.then(
          () => 'resolved',
          (e: unknown) => (e instanceof TesseraError ? e.code : String(e)),
        ),
        sleep(1_500).then(() => 'still waiting'),
      ]);
    const outcome = await settled(
      c
        .host(l)
        .propose(g, cmds('b', 1))
        .then((outs) => {
          const o = outs[0];
          if (o !== undefined && !o.ok) throw o.error;
        }),
    );
    expect(outcome).toBe('UNAVAILABLE');
    expect(await settled(c.host(l).read(g))).toBe('UNAVAILABLE');
  });
});
