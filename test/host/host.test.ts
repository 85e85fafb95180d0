import { afterEach, describe, expect, it } from 'vitest';
import { memoryCommand } from '../../src/host/memory-sm.js';
import type { CommandOutcome } from '../../src/host/types.js';
import { isTesseraError } from '../../src/lib/errors.js';
import { type GroupId, groupId, logIndex, nodeId, term } from '../../src/lib/ids.js';
import { encodeSnapshotFrame } from '../../src/host/snapshot-stream.js';
import { HOST_SNAPSHOT_KIND } from '../../src/host/types.js';
import { Cluster, members, waitFor } from './harness.js';
import { converged } from './converge.js';

let cluster: Cluster | undefined;
afterEach(async () => {
  await cluster?.close();
  cluster = undefined;
});

async function put(
  c: Cluster,
  g: GroupId,
  leader: number,
  pairs: [string, string][],
): Promise<CommandOutcome<string>[]> {
  return c.host(leader).propose(
    g,
    pairs.map(([k, v]) => memoryCommand(k, v)),
  );
}

function allOk(outs: CommandOutcome<string>[]): void {
  for (const o of outs) expect(o.ok, o.ok ? '' : o.error.message).toBe(true);
}

describe('group host', () => {
  it('self mode: elects, proposes, commits everywhere, serves a linearizable read', async () => {
    const c = (cluster = await Cluster.start(3));
    const g = await c.addGroup(1, members(1, 2, 3), 'self');
    const l = await c.leader(g);
    const outs = await put(c, g, l, [
      ['a', '1'],
      ['b', '2'],
      ['a', '3'],
    ]);
    allOk(outs);
    expect(outs.map((o) => (o.ok ? o.result : '?'))).toEqual(['', '', '1']);
    const idx = outs.map((o) => (o.ok ? o.index : 0));
    expect(idx[1]).toBe(idx[0]! + 1);
    await c.host(l).read(g);
    expect(c.sm(l, g).data.get('a')).toBe('3');
    await converged(c, g, [1, 2, 3], l, 10_000);
    // A follower refuses with NOT_LEADER and a leader hint.
    const f = [1, 2, 3].find((i) => i !== l)!;
    const err = await put(c, g, f, [['x', 'y']]).catch((e: unknown) => e);
    expect(isTesseraError(err, 'NOT_LEADER')).toBe(true);
    expect((err as { detail: { leader: number } }).detail.leader).toBe(l);
    await expect(c.host(f).read(g)).rejects.toMatchObject({ code: 'NOT_LEADER' });
    expect(c.node(l).registry.expose()).toMatch(/tessera_host_entries_applied_total\{node="\d"\} [1-9]/);
  });

  it('directed mode: nobody campaigns until told; campaign(minTerm) elects that replica', async () => {
    const c = (cluster = await Cluster.start(3));
    const g = await c.addGroup(2, members(1, 2, 3), 'directed');
    await new Promise((r) => setTimeout(r, 600));
    expect([1, 2, 3].map((i) => c.host(i).status(g)!.role)).toEqual(['follower', 'follower', 'follower']);
    const roles: string[] = [];
    c.host(2).onSoftState((grp, ss) => grp === g && roles.push(ss.role));
    c.host(2).campaign(g, term(5));
    expect(await c.leader(g)).toBe(2);
    expect(c.host(2).status(g)!.term).toBeGreaterThanOrEqual(5);
    await waitFor(() => roles.includes('leader'), 5_000, 'the soft state listener to hear of it');
    allOk(await put(c, g, 2, [['k', 'v']]));
    await converged(c, g, [1, 2, 3], 2, 10_000);
    // Leadership transfer to node 3.
    c.host(2).transferLeadership(g, nodeId(3));
    await waitFor(() => c.host(3).status(g)?.role === 'leader', 5_000, 'transfer to 3');
    expect(await c.leader(g)).toBe(3);
    allOk(await put(c, g, 3, [['k2', 'v2']]));
    await converged(c, g, [1, 2, 3], 3, 10_000);
  });
  it('refuses snapshot frames out of sequence, for unknown groups, or with a bad final message', async () => {
    const c = (cluster = await Cluster.start(2));
    const g = await c.addGroup(1, members(1, 2), 'directed');
    const t = c.node(2).transport!;
    const send = (f: Parameters<typeof encodeSnapshotFrame>[0]) =>
      t.request(nodeId(1), HOST_SNAPSHOT_KIND, encodeSnapshotFrame(f));
    const base = { group: g, index: logIndex(10), bytes: new Uint8Array([1]) };
    await expect(send({ ...base, type: 'chunk', number: 1 })).rejects.toMatchObject({ code: 'BAD_REQUEST' });
    await expect(send({ ...base, group: groupId(99), type: 'chunk', number: 0 })).rejects.toMatchObject({
      code: 'GROUP_NOT_FOUND',
    });
    await send({ ...base, type: 'chunk', number: 0 });
    await expect(send({ ...base, type: 'chunk', number: 2 })).rejects.toMatchObject({ code: 'BAD_REQUEST' });
    await expect(send({ ...base, type: 'done', number: 1 })).rejects.toMatchObject({ code: 'BAD_REQUEST' });
    // The replica was not disturbed.
    expect(c.host(1).status(g)!.commit).toBe(0);
    expect(c.host(1).status(g)!.role).toBe('follower');
  });
});
