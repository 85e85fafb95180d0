/**
 * Bounded in-flight requests, and a write whose fate can't be learned: a leader that lost its
 * followers holds a write uncommitted; a second request past the bound is refused at once with
 * TOO_MANY_REQUESTS; when the leader steps down the held write answers OUTCOME_UNKNOWN or NOT_LEADER.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { groupId, type NodeId, nodeId, shardId, tableId } from '../../src/lib/ids.js';
import { rejection } from '../support/rejection.js';
import { StorageGroup } from './group-harness.js';

const G = groupId(1);
const ids = [nodeId(16), nodeId(17), nodeId(18)];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('in-flight bound', () => {
  let group: StorageGroup | undefined;
  afterAll(async () => {
    await group?.close();
  });

  it('refuses past the bound; a write held by a leader without quorum ends without a guess', async () => {
    const g = await StorageGroup.start({
      group: G,
      ids,
      tmpPrefix: 'tessera-inflight-',
      node: {
        timing: { heartbeatIntervalMs: 50, electionTimeoutMs: 1000, leaseDriftMarginMs: 100 },
        inflightMax: 1,
      },
    });
    group = g;
    const leader = ids[0] as NodeId;
    await g.campaign(leader);
    while (g.node(leader).host.status(G)?.role !== 'leader') await sleep(20);
    await g.assignShard(leader, { shard: shardId(1), table: tableId(1), engine: 'lsm', catalogVersion: 1 });
    const put = (n: number) =>
      g.put(
        leader,
        shardId(1),
        new TextEncoder().encode(`k${n}`),
        new Uint8Array(10),
        { client: 3n, number: n },
        10_000,
      );
    await put(1); // the group works
    for (const id of ids.slice(1)) {
      await g.stopNode(id);
    }
    const held = rejection(put(2));
    await sleep(30);
    expect((await rejection(put(3))).code).toBe('TOO_MANY_REQUESTS');
    expect(['OUTCOME_UNKNOWN', 'NOT_LEADER']).toContain((await held).code);
  }, 30_000);
});
