import { afterEach, describe, expect, it } from 'vitest';
import { memoryCommand } from '../../src/host/memory-sm.js';
import type { CommandOutcome } from '../../src/host/types.js';
import { isTesseraError } from '../../src/lib/errors.js';
import { type GroupId, nodeId, term } from '../../src/lib/ids.js';
import { Cluster, members, waitFor } from './harness.js';
import { converged } from './converge.js';

let cluster: Cluster | undefined;
afterEach(async () => {
  await cluster?.close();
  cluster = undefined;
});

function cmds(prefix: string, n: number, from = 0): Uint8Array[] {
  return Array.from({ length: n }, (_, k) => memoryCommand(`${prefix}${from + k}`, `v${from + k}`));
}

function okCount(outs: CommandOutcome<string>[]): number {
  return outs.filter((o) => o.ok).length;
}

/**
 * Proposes idempotent puts at the group's current leader and retries the ones that failed
 * (NOT_LEADER, OUTCOME_UNKNOWN) at whoever leads next: on a loaded machine a leader may step down
 * (check-quorum) right after its election. Returns the leader that committed the last batch.
 */
async function proposeUntilApplied(c: Cluster, g: GroupId, commands: Uint8Array[]): Promise<number> {
  let pending = commands;
  for (let attempt = 0; attempt < 10; attempt++) {
    const l = await c.leader(g);
    const outs = await c.host(l).propose(g, pending);
    const failed = outs.flatMap((o, k) => (o.ok ? [] : [k]));
    for (const o of outs) if (!o.ok) expect(['NOT_LEADER', 'OUTCOME_UNKNOWN']).toContain(o.error.code);
    if (failed.length === 0) return l;
    pending = failed.map((k) => pending[k]!);
  }
  throw new Error(`group ${g}: ${pending.length} proposals never committed`);
}

/** Directed election, retried while voters still honour the old leader (stickiness). */
async function elect(c: Cluster, g: GroupId, id: number): Promise<void> {
  for (let k = 0; k < 20 && c.host(id).status(g)!.role !== 'leader'; k++) {
    try {
      c.host(id).campaign(g, term(0));
    } catch (e) {
      if (!isTesseraError(e, 'UNAVAILABLE')) throw e; // still hears from the old leader
    }
    await new Promise((r) => setTimeout(r, 300));
  }
  expect(c.host(id).status(g)!.role).toBe('leader');
}

async function waitLeader(c: Cluster, g: GroupId, ids: number[]): Promise<number> {
  let found = 0;
  await waitFor(
    () => {
      const l = ids.find((id) => c.host(id).status(g)?.role === 'leader');
      found = l ?? 0;
      return l !== undefined && ids.every((id) => c.host(id).status(g)?.leader === l);
    },
    10_000,
    `a leader of group ${g} among ${ids}`,
  );
  return found;
}

describe('group host: failures and recovery', () => {
  it('leader stop: a new leader is elected and no acknowledged entry is lost; the old one catches up', async () => {
    const c = (cluster = await Cluster.start(3));
    const g = await c.addGroup(1, members(1, 2, 3), 'self');
    const l1 = await c.leader(g);
    const acked: string[] = [];
    const outs = await c.host(l1).propose(g, cmds('k', 50));
    expect(okCount(outs)).toBe(50);
    for (let k = 0; k < 50; k++) acked.push(`k${k}`);
    await c.stop(l1);
    const l2 = await c.leader(g);
    expect(l2).not.toBe(l1);
    for (const k of acked) expect(c.sm(l2, g).data.get(k)).toBe(`v${k.slice(1)}`);
    expect(okCount(await c.host(l2).propose(g, cmds('m', 20)))).toBe(20);
    await c.restart(l1);
    await converged(c, g, [1, 2, 3], l2);
    expect(c.sm(l1, g).data.get('m19')).toBe('v19');
  });

  it('follower restart from disk replays its log and catches up', async () => {
    const c = (cluster = await Cluster.start(3));
    const g = await c.addGroup(1, members(1, 2, 3), 'self');
    const l = await c.leader(g);
    const f = [1, 2, 3].find((i) => i !== l)!;
    expect(okCount(await c.host(l).propose(g, cmds('a', 30)))).toBe(30);
    await converged(c, g, [1, 2, 3], l);
    const term = c.host(f).status(g)!.term;
    await c.stop(f);
    expect(okCount(await c.host(l).propose(g, cmds('b', 30)))).toBe(30);
    await c.restart(f);
    // Nothing was checkpointed: the restarted state machine starts empty and replays the log.
    expect(c.host(f).status(g)!.term).toBe(term);
    await converged(c, g, [1, 2, 3], l);
    expect(c.sm(f, g).data.get('a0')).toBe('v0');
    expect(c.sm(f, g).data.get('b29')).toBe('v29');
  });

  it('a follower behind the compacted log catches up by snapshot', async () => {
    const c = (cluster = await Cluster.start(3, { checkpointEntries: 20, compactionMarginEntries: 5 }));
    const g = await c.addGroup(1, members(1, 2, 3), 'self');
    const l = await c.leader(g);
    const f = [1, 2, 3].find((i) => i !== l)!;
    await c.stop(f);
    for (let b = 0; b < 6; b++) expect(okCount(await c.host(l).propose(g, cmds('s', 25, b * 25)))).toBe(25);
    await c.host(l).checkpoint(g);
    const st = c.host(l).status(g)!;
    expect(st.firstIndex).toBeGreaterThan(100);
    await c.restart(f);
    await converged(c, g, [1, 2, 3], l);
    expect(c.sm(f, g).data.size).toBe(150);
    // The follower got the data by snapshot (it applied far fewer entries than the log holds).
    expect(c.sm(f, g).appliedCount).toBeLessThan(50);
    expect(c.node(f).registry.expose()).toMatch(/tessera_host_snapshots_installed_total\{node="\d"\} [1-9]/);
    // It restarts from its installed snapshot too.
    await c.stop(f);
    await c.restart(f);
    expect(okCount(await c.host(l).propose(g, cmds('t', 5)))).toBe(5);
    await converged(c, g, [1, 2, 3], l);
  });

  it('membership: add a learner, promote it, remove the leader (which deletes its data)', async () => {
    const c = (cluster = await Cluster.start(3));
    const g = await c.addGroup(1, members(1, 2), 'self', [1, 2]);
    const l = await c.leader(g);
    const other = l === 1 ? 2 : 1;
    expect(okCount(await c.host(l).propose(g, cmds('x', 10)))).toBe(10);
    await c.host(3).addGroup(g, { membership: members(1, 2), electionMode: 'self' });
    await c.host(l).proposeMembership(g, { type: 'add-learner', node: nodeId(3) });
    await converged(c, g, [1, 2, 3], l);
    expect(c.host(3).status(g)!.role).toBe('follower');
    expect(c.host(l).status(g)!.membership.learners).toEqual([3]);
    await waitFor(
      () =>
        (c
          .host(l)
          .status(g)!
          .peers.find((p) => p.id === 3)?.match ?? 0) >= c.host(l).status(g)!.commit,
      5_000,
      'learner caught up',
    );
    await c.host(l).proposeMembership(g, { type: 'promote', node: nodeId(3) });
    expect(c.host(l).status(g)!.membership.voters).toContain(3);
    // Removing the leader: it commits its own removal, steps down and deletes its replica.
    const sm = c.sm(l, g);
    await c.host(l).proposeMembership(g, { type: 'remove', node: nodeId(l) });
    await waitFor(() => !c.host(l).groups().includes(g), 5_000, 'removed replica to delete its group');
    await waitFor(() => sm.destroyed, 5_000, 'state machine destroyed');
    expect(c.host(l).log.groupIds()).not.toContain(g);
    const l2 = await waitLeader(c, g, [other, 3]);
    await waitFor(() => c.host(l2).status(g)!.membership.voters.length === 2, 5_000, 'removal committed');
    expect(c.host(l2).status(g)!.membership.voters.slice().sort()).toEqual([other, 3].sort());
    expect(okCount(await c.host(l2).propose(g, cmds('y', 5)))).toBe(5);
    await converged(c, g, [other, 3], l2);
    // The removed replica does not come back after a restart.
    await c.stop(l);
    await c.restart(l);
    expect(c.host(l).groups()).not.toContain(g);
  });

  it('several groups share one log; each has its own leader and data', async () => {
    const c = (cluster = await Cluster.start(3));
    const gs: GroupId[] = [];
    for (let g = 1; g <= 4; g++) gs.push(await c.addGroup(g, members(1, 2, 3), 'directed'));
    for (const [k, g] of gs.entries()) c.host((k % 3) + 1).campaign(g, term(0));
    const leaders: number[] = [];
    for (const g of gs) leaders.push(await c.leader(g));
    expect(leaders).toEqual([1, 2, 3, 1]);
    const committedBy = await Promise.all(gs.map((g) => proposeUntilApplied(c, g, cmds(`g${g}-`, 40))));
    for (const [k, g] of gs.entries()) await converged(c, g, [1, 2, 3], committedBy[k]!);
    for (const id of [1, 2, 3]) expect(c.host(id).log.groupIds().sort()).toEqual([1, 2, 3, 4]);
    // Group commit: proposals to the 2 groups led by node 1, made in one turn, share one append.
    await elect(c, gs[0]!, 1);
    await elect(c, gs[3]!, 1);
    const appends = () =>
      Number(/log_append_seconds_count\{node="1"\} (\d+)/.exec(c.node(1).registry.expose())?.[1]);
    const before = appends();
    const mine = [0, 3, 0].map((k, j) => c.host(1).propose(gs[k]!, cmds(`gc${j}-`, 2)));
    for (const outs of await Promise.all(mine)) expect(okCount(outs)).toBe(2);
    expect(appends() - before).toBe(1);
    expect(c.sm(1, gs[0]!).data.has('g2-0')).toBe(false);
    // Restart a node: all four groups come back from the one log (group 2 needs a new leader).
    await c.stop(2);
    await c.restart(2);
    expect(c.host(2).groups()).toEqual(gs);
    await elect(c, gs[1]!, 3);
    for (const [k, g] of gs.entries()) {
      const l = await c.leader(g);
      expect(okCount(await c.host(l).propose(g, cmds('z', 3)))).toBe(3);
      await converged(c, g, [1, 2, 3], l);
      expect(leaders[k]).toBeGreaterThan(0);
    }
  });
  it('an isolated leader answers OUTCOME_UNKNOWN, never a false success; its entries are overwritten', async () => {
    const c = (cluster = await Cluster.start(3));
    const g = await c.addGroup(1, members(1, 2, 3), 'self');
    const l = await c.leader(g);
    const others = [1, 2, 3].filter((i) => i !== l);
    expect(okCount(await c.host(l).propose(g, cmds('a', 5)))).toBe(5);
    const sw = c.node(l).transport!.faults;
    for (const o of others) {
      sw.block(nodeId(l), nodeId(o));
      sw.block(nodeId(o), nodeId(l));
    }
    const outs = await c.host(l).propose(g, [memoryCommand('lost', 'x')]);
    expect(outs[0]!.ok).toBe(false);
    expect(outs[0]!.ok ? '' : outs[0]!.error.code).toBe('OUTCOME_UNKNOWN');
    // The old leader stepped down (check-quorum): it refuses reads.
    await expect(c.host(l).read(g)).rejects.toMatchObject({ code: 'NOT_LEADER' });
    const l2 = await waitLeader(c, g, others);
    expect(okCount(await c.host(l2).propose(g, cmds('b', 5)))).toBe(5);
    sw.clear();
    await converged(c, g, [1, 2, 3], l2);
    expect(c.sm(l, g).data.has('lost')).toBe(false);
    expect(c.sm(l, g).data.get('b4')).toBe('v4');
  });

  it('the whole cluster restarts from checkpoints + compacted logs with every acknowledged entry', async () => {
    const c = (cluster = await Cluster.start(3, { checkpointEntries: 30, compactionMarginEntries: 10 }));
    const g = await c.addGroup(1, members(1, 2, 3), 'self');
    const l = await c.leader(g);
    for (let b = 0; b < 4; b++) expect(okCount(await c.host(l).propose(g, cmds('r', 25, b * 25)))).toBe(25);
    await converged(c, g, [1, 2, 3], l);
    for (const id of [1, 2, 3]) await c.host(id).checkpoint(g);
    expect(okCount(await c.host(l).propose(g, cmds('q', 7)))).toBe(7);
    await converged(c, g, [1, 2, 3], l);
    const before = c.host(l).status(g)!;
    for (const id of [1, 2, 3]) await c.stop(id);
    for (const id of [1, 2, 3]) await c.restart(id);
    for (const id of [1, 2, 3]) {
      const st = c.host(id).status(g)!;
      expect(st.firstIndex).toBeGreaterThan(50);
      expect(st.term).toBe(before.term);
      expect(c.sm(id, g).appliedCount).toBeLessThan(40); // replayed only the tail after the checkpoint
      expect(c.sm(id, g).data.get('r99')).toBe('v99');
    }
    const l2 = await c.leader(g);
    await c.host(l2).read(g);
    expect(c.sm(l2, g).data.get('q6')).toBe('v6');
    expect(c.sm(l2, g).data.size).toBe(107);
  });
});
