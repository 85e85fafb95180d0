/**
 * Metadata manager nodes: 3 MM nodes in one process over real disks and TCP. Leader election,
 * replication of catalog changes, NOT_LEADER hints, a leader stop, restart from disk (checkpoint
 * file + log replay), backup/restore, registration ids.
 */
import { createHash } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { isTesseraError, type TesseraError } from '../../src/lib/errors.js';
import { limits } from '../../src/lib/limits.js';
import type { MmClient } from '../../src/metadata/client.js';
import { mmGroup } from '../../src/metadata/node.js';
import { decodeMmResponse, encodeMm, MmKind } from '../../src/metadata/rpc.js';
import { MmCluster, waitFor } from './mm-harness.js';
import { rejection } from '../support/rejection.js';

const sha = (s: string): string => createHash('sha256').update(s).digest('hex');

/** Registers a request-role node under `nodeKey` (no capacity). */
const registerRequest = (mm: MmClient, nodeKey: string, address = 'h:1') =>
  mm.call('register', {
    role: 'request',
    nodeKey,
    address,
    pid: 1,
    capacity: { replicasMax: 0, diskBytes: 0 },
  });

let cluster: MmCluster | undefined;
afterEach(async () => {
  await cluster?.close();
  cluster = undefined;
});

describe('metadata nodes', () => {
  it('elect one leader; catalog changes replicate to every node; followers answer NOT_LEADER with a hint', async () => {
    cluster = await MmCluster.start(3);
    const leader = await cluster.leader();
    const { mm, t } = await cluster.registeredClient();
    const created = await mm.call('tokens', { op: 'create', hash: sha('s1'), role: 'admin', table: null });
    expect(created.token).toMatchObject({ hash: sha('s1'), role: 'admin', table: null });
    const v = leader.catalog.version;
    for (const n of cluster.nodes.values()) {
      await waitFor(`node ${n.id} at version ${v}`, () => n.catalog.version === v);
      expect(n.catalog.tokenByHash(sha('s1'))?.admin).toBe(true);
    }
    const leaders = [...cluster.nodes.values()].filter((n) => n.isLeader);
    expect(leaders).toHaveLength(1);

    const follower = [...cluster.nodes.values()].find((n) => !n.isLeader);
    expect(follower).toBeDefined();
    const err = await rejection(t.request(follower!.id, MmKind.cluster, encodeMm({}), { timeoutMs: 2000 }));
    expect(err.code).toBe('NOT_LEADER');
    expect(err.detail?.leader).toBe(leader.id);
    expect(err.detail?.leaderAddress).toBe(`127.0.0.1:${cluster.members.get(leader.id)!.port}`);

    const view = await mm.call('cluster', {});
    expect(view.metadata).toEqual({ leader: leader.id, members: [1, 2, 3] });
    expect(view.nodes.filter((n) => n.role === 'metadata').map((n) => n.state)).toEqual(['up', 'up', 'up']);
  });

  it('registration: ids from 16, stable per key, never reused; provisional ids may only register', async () => {
    cluster = await MmCluster.start(3);
    await cluster.leader();
    const { mm } = await cluster.client();
    const reg = (key: string) => registerRequest(mm, key, '127.0.0.1:9');
    const a = await reg('key-a');
    const b = await reg('key-b');
    expect(a).toEqual({ node: limits.mmNodeIdMax + 1, created: true });
    expect(b).toEqual({ node: limits.mmNodeIdMax + 2, created: true });
    expect(await reg('key-a')).toEqual({ node: a.node, created: false });

    const err = await rejection(mm.call('cluster', {}));
    expect(err.code).toBe('FORBIDDEN');
    const bad = await rejection(mm.call('catalog', { sinceVersion: 0, waitMs: 0 }));
    expect(bad.code).toBe('FORBIDDEN');

    // A registered node may re-register only its own key.
    const { mm: asA } = await cluster.client(a.node);
    const stolen = await rejection(registerRequest(asA, 'key-b', 'x:1'));
    expect(stolen.code).toBe('FORBIDDEN');
  });

  it('a stopped leader is replaced; the new leader has the same catalog and takes writes', async () => {
    cluster = await MmCluster.start(3);
    const first = await cluster.leader();
    const { mm } = await cluster.registeredClient();
    for (let i = 0; i < 5; i++)
      await mm.call('tokens', { op: 'create', hash: sha(`t${i}`), role: 'read-only', table: null });
    const before = first.catalog.snapshot();
    await cluster.stopNode(first.id);
    const second = await cluster.leader();
    expect(second.id).not.toBe(first.id);
    await waitFor('same catalog', () => Buffer.from(second.catalog.snapshot()).equals(Buffer.from(before)));
    const more = await mm.call('tokens', {
      op: 'create',
      hash: sha('after'),
      role: 'read-write',
      table: 'T',
    });
    expect(more.token?.role).toBe('read-write');
    const listed = await mm.call('tokens', { op: 'list' });
    expect(listed.tokens?.map((t) => t.hash)).toEqual([
      ...[0, 1, 2, 3, 4].map((i) => sha(`t${i}`)),
      sha('after'),
    ]);
  });

  it('restarts from disk: checkpoint file plus log replay give the same catalog', async () => {
    cluster = await MmCluster.start(3);
    const leader = await cluster.leader();
    const { mm } = await cluster.registeredClient('the-client');
    for (let i = 0; i < 3; i++)
      await mm.call('tokens', { op: 'create', hash: sha(`a${i}`), role: 'read-only', table: null });
    // A durable checkpoint on every node, then more entries that only the log holds.
    for (const n of cluster.nodes.values()) await n.host.checkpoint(mmGroup);
    for (let i = 0; i < 3; i++)
      await mm.call('tokens', { op: 'create', hash: sha(`b${i}`), role: 'read-only', table: null });
    await waitFor('replicated', () =>
      [...cluster!.nodes.values()].every((n) => n.catalog.version === leader.catalog.version),
    );
    const snap = Buffer.from(leader.catalog.snapshot());
    const durable = [...cluster.nodes.values()].map((n) => n.stateMachine().durableIndex);
    expect(durable.every((d) => d > 0)).toBe(true);
    for (const id of [...cluster.nodes.keys()]) await cluster.stopNode(id);
    for (const id of cluster.members.keys()) await cluster.startNode(id);
    await cluster.leader();
    for (const n of cluster.nodes.values()) {
      await waitFor(`node ${n.id} replayed`, () => Buffer.from(n.catalog.snapshot()).equals(snap));
    }
    // The client's id survived: it is still a member.
    const again = await mm.call('tokens', { op: 'verify', hash: sha('b2') });
    expect(again.token?.hash).toBe(sha('b2'));
  });

  it('backup and restore round trip; a restore never lowers the version nor reuses ids', async () => {
    cluster = await MmCluster.start(3);
    await cluster.leader();
    const { mm, t } = await cluster.registeredClient('c1');
    await mm.call('tokens', { op: 'create', hash: sha('kept'), role: 'admin', table: null });
    const backup = await mm.call('backup', {});
    await mm.call('tokens', { op: 'create', hash: sha('lost'), role: 'read-only', table: null });
    const later = await registerRequest(mm, 'registered-after-backup').catch((e: unknown) => e);
    // Registered nodes may not register other keys: use a fresh provisional client.
    expect(isTesseraError(later, 'FORBIDDEN')).toBe(true);
    const prov = await cluster.client();
    const late = await registerRequest(prov.mm, 'late');
    const versionBefore = (await mm.call('catalog', { sinceVersion: 0, waitMs: 0 })).version;

    const restored = await mm.call('restore', { bytes: backup.bytes });
    expect(restored.version).toBeGreaterThan(versionBefore);
    const tokens = await mm.call('tokens', { op: 'list' });
    expect(tokens.tokens?.map((x) => x.hash)).toEqual([sha('kept')]);
    // The node registered after the backup is gone from the catalog, but its id is not reused.
    const fresh = await registerRequest(prov.mm, 'fresh');
    expect(fresh.node).toBeGreaterThan(late.node);
    // A long poll sees the restore as a newer version.
    const cat = await mm.call('catalog', { sinceVersion: versionBefore, waitMs: 0 });
    expect(cat.view).not.toBeNull();

    const garbage = new Uint8Array(backup.bytes);
    garbage[50] = (garbage[50] ?? 0) ^ 0xff;
    const bad = await rejection(mm.call('restore', { bytes: garbage }));
    expect(bad.code).toBe('BAD_REQUEST');
    // Raw decode path: the response of a backup is msgpack v1.
    const raw = await t.request((await cluster.leader()).id, MmKind.backup, encodeMm({}), {
      timeoutMs: 2000,
    });
    expect(decodeMmResponse('backup', raw).bytes.length).toBeGreaterThan(40);
  });

  it('the catalog long poll answers when the version moves, or unchanged after its wait', async () => {
    cluster = await MmCluster.start(3);
    await cluster.leader();
    const { mm } = await cluster.registeredClient();
    const first = await mm.call('catalog', { sinceVersion: 0, waitMs: 0 });
    expect(first.view?.nodes.some((n) => n.role === 'request')).toBe(true);
    const idle = await mm.call('catalog', { sinceVersion: first.version, waitMs: 100 });
    expect(idle).toEqual({ version: first.version, view: null });
    const waiting = mm.call('catalog', { sinceVersion: first.version, waitMs: 1000 });
    await new Promise((r) => setTimeout(r, 50));
    await mm.call('tokens', { op: 'create', hash: sha('x'), role: 'read-only', table: null });
    const moved = await waiting;
    expect(moved.version).toBe(first.version + 1);
    expect(moved.view).not.toBeNull();
  });

  it('a minority MM side refuses catalog changes', async () => {
    cluster = await MmCluster.start(3);
    const leader = await cluster.leader();
    const { mm } = await cluster.registeredClient();
    await mm.call('tokens', { op: 'create', hash: sha('x'), role: 'read-only', table: null });
    for (const id of [...cluster.nodes.keys()]) if (id !== leader.id) await cluster.stopNode(id);
    const err = await rejection(
      leader
        .change({ type: 'createToken', secretHash: sha('y'), readOnly: true, table: null, atMs: 1 })
        .then(() => undefined),
    ).catch((e: unknown) => e as TesseraError);
    expect(['NOT_LEADER', 'OUTCOME_UNKNOWN', 'UNAVAILABLE']).toContain(err.code);
    expect(leader.catalog.tokenByHash(sha('y'))).toBeUndefined();
  });
});
