/**
 * The storage node's RPC handlers (contract: rpc.ts, docs/storage.md). kv.* only from request
 * managers and only on the group's leader; reads through the host's linearizable read; writes
 * through propose, answered from the applied outcome. ctl.* only from metadata nodes.
 */
import type { ReplicaStatus } from '../consensus/types.js';
import { toHex } from '../lib/bytes.js';
import { TesseraError } from '../lib/errors.js';
import type { GroupId } from '../lib/ids.js';
import { type Command, encodeCommand, noRequest } from '../statemachine/command.js';
import type { PeerIdentity } from '../transport/index.js';
import { encodeCatalogEntry, type KvResult, type KvStateMachine, type ShardInfo } from './kv-sm.js';
import type { StorageNode } from './node.js';
import * as rpc from './rpc.js';
import { StorageKind } from './rpc.js';

const noopCommand = encodeCommand({ type: 'noop', request: noRequest });

function requireRole(from: PeerIdentity, role: 'request' | 'metadata'): void {
  if (from.role === role) return;
  if (role === 'request')
    throw new TesseraError(
      'BAD_REQUEST_MANAGER',
      `node ${from.nodeId} (${from.role}) is not a request manager`,
    );
  throw new TesseraError('FORBIDDEN', `node ${from.nodeId} (${from.role}) may not send control calls`);
}

/** NOT_LEADER with the leader's id, address and term. */
function notLeader(node: StorageNode, group: GroupId, s: ReplicaStatus | undefined): TesseraError {
  const leader = s?.leader ?? 0;
  const address = leader === node.id ? node.address : node.addresses.get(s?.leader ?? (0 as never));
  return new TesseraError('NOT_LEADER', `node ${node.id} is not the leader of group ${group}`, {
    leader,
    ...(address === undefined ? {} : { address }),
    term: s?.term ?? 0,
  });
}

/** Adds the leader's address to a NOT_LEADER error from the host. */
function withAddress(node: StorageNode, e: unknown): unknown {
  if (!(e instanceof TesseraError) || e.code !== 'NOT_LEADER') return e;
  const leader = Number(e.detail?.leader ?? 0);
  const address = node.addresses.get(leader as never);
  return address === undefined ? e : new TesseraError('NOT_LEADER', e.message, { ...e.detail, address });
}

function stateMachine(node: StorageNode, group: GroupId): KvStateMachine {
  const sm = node.host.stateMachine(group);
  if (sm === undefined)
    throw new TesseraError('GROUP_NOT_FOUND', `group ${group} is not hosted on node ${node.id}`);
  return sm as KvStateMachine;
}

function leaderOnly(node: StorageNode, group: GroupId): KvStateMachine {
  const sm = stateMachine(node, group);
  const s = node.host.status(group);
  if (s?.role !== 'leader') throw notLeader(node, group, s);
  return sm;
}

/** `p`, or TIMEOUT after `ms` (one promise and one timer: this runs per linearizable read). */
function withDeadline<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new TesseraError('TIMEOUT', `${what}: no answer within ${ms} ms`)),
      ms,
    );
    p.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(timer);
        reject(e);
      },
    );
  });
}

function checkShard(sm: KvStateMachine, t: rpc.ShardTarget): ShardInfo | undefined {
  const s = sm.shard(t.shard);
  if (s === undefined || s.epoch !== t.epoch) return undefined;
  return s;
}

/** The shard, at the request's epoch, owned by this group (after catching up on a miss). */
async function shardFor(
  node: StorageNode,
  sm: KvStateMachine,
  t: rpc.ShardTarget,
  read: boolean,
): Promise<ShardInfo> {
  if (checkShard(sm, t) === undefined && !read) {
    // The leader may not have applied the latest assignment yet: catch up once.
    await withDeadline(node.host.read(t.group), Math.max(1, t.deadlineMs), 'catch-up read').catch(
      () => undefined,
    );
  }
  return ownedShard(sm, t);
}

/** The shard at the request's epoch, or STALE_SHARD / TABLE_NOT_FOUND / BAD_REQUEST_MANAGER now. */
function ownedShard(sm: KvStateMachine, t: rpc.ShardTarget): ShardInfo {
  const s = checkShard(sm, t);
  if (s === undefined) {
    const reg = sm.registered(t.shard);
    if (reg !== undefined && sm.tableDropped(reg.table))
      throw new TesseraError('TABLE_NOT_FOUND', `table ${reg.table} of shard ${t.shard} was dropped`);
    const current = sm.shard(t.shard);
    throw new TesseraError(
      'STALE_SHARD',
      `shard ${t.shard} epoch ${t.epoch} is not owned by group ${t.group} at this epoch`,
      current === undefined ? {} : { epoch: current.epoch },
    );
  }
  if (t.catalogVersion < s.catalogVersion)
    throw new TesseraError(
      'BAD_REQUEST_MANAGER',
      `catalog version ${t.catalogVersion} predates the assignment of shard ${t.shard} (${s.catalogVersion})`,
    );
  return s;
}

/** Bounds kv.* in flight on the node. */
async function bounded(
  node: StorageNode,
  f: (p: Uint8Array) => Promise<Uint8Array>,
  p: Uint8Array,
): Promise<Uint8Array> {
  if (node.inflight >= node.inflightMax)
    throw new TesseraError(
      'TOO_MANY_REQUESTS',
      `storage node ${node.id}: ${node.inflight} requests in flight`,
    );
  node.inflight++;
  try {
    return await f(p);
  } finally {
    node.inflight--;
  }
}

async function write(
  node: StorageNode,
  r: rpc.KvPutRequest | rpc.KvDeleteRequest,
  put: boolean,
): Promise<Uint8Array> {
  const sm = leaderOnly(node, r.group);
  if (!node.diskOk) throw new TesseraError('DISK_FULL', `storage node ${node.id}: the disk is not writable`);
  const s = await shardFor(node, sm, r, false);
  const base = {
    request: r.request,
    table: s.table,
    engine: s.engine,
    keyspace: s.keyspace,
    key: r.key,
    condition: r.condition,
  };
  const command: Command = put
    ? { type: 'put', ...base, value: (r as rpc.KvPutRequest).value }
    : { type: 'delete', ...base };
  const [outcome] = await node.host.propose(r.group, [encodeCommand(command)]).catch((e: unknown) => {
    throw withAddress(node, e);
  });
  if (outcome === undefined) throw new TesseraError('INTERNAL', 'no outcome');
  if (!outcome.ok) throw withAddress(node, outcome.error);
  return answer(outcome.result);
}

function answer(result: KvResult): Uint8Array {
  if (result === undefined)
    throw new TesseraError('OUTCOME_UNKNOWN', 'the write was applied without an outcome');
  if (result.ok) return rpc.encodeKvWriteResult({ seq: result.seq });
  const detail = result.currentSeq === undefined ? {} : { currentSeq: toHex(result.currentSeq) };
  throw new TesseraError(result.error, messages[result.error], detail);
}

const messages = {
  CONDITION_FAILED: 'the condition did not hold; nothing was written',
  KEY_NOT_FOUND: 'the key does not exist',
  TABLE_NOT_FOUND: 'the table was dropped',
  OUTCOME_UNKNOWN: 'the first outcome of this request id was forgotten',
} as const;

/** Waits for host.read (lease or read index, checked when the read is served); NOT_LEADER with the address. */
async function readBarrier(node: StorageNode, t: rpc.ShardTarget): Promise<void> {
  try {
    await withDeadline(node.host.read(t.group), Math.max(1, t.deadlineMs), 'linearizable read');
  } catch (e) {
    throw withAddress(node, e);
  }
}

async function linearizable(node: StorageNode, t: rpc.ShardTarget): Promise<[KvStateMachine, ShardInfo]> {
  const sm = leaderOnly(node, t.group);
  await readBarrier(node, t);
  return [sm, ownedShard(sm, t)];
}

async function get(node: StorageNode, r: rpc.KvGetRequest): Promise<Uint8Array> {
  const sm = leaderOnly(node, r.group);
  await readBarrier(node, r);
  const s = ownedShard(sm, r);
  const rec = await sm.engineOf(s).get(s.keyspace, r.key);
  if (rec === undefined || rec.tombstone) return rpc.encodeKvGetResult({ value: null, seq: null });
  return rpc.encodeKvGetResult({ value: rec.value, seq: rec.seq });
}

const maxBytes = (a: Uint8Array, b: Uint8Array): Uint8Array => (Buffer.compare(a, b) >= 0 ? a : b);

const scanPageRows = 256;

/** The smallest key above `k`. */
function successor(k: Uint8Array): Uint8Array {
  const out = new Uint8Array(k.length + 1);
  out.set(k);
  return out;
}

async function scan(node: StorageNode, r: rpc.KvScanRequest): Promise<Uint8Array> {
  const [sm, s] = await linearizable(node, r);
  const start = maxBytes(r.start, s.start);
  let end: Uint8Array | undefined = r.end ?? undefined;
  if (s.end.length > 0 && (end === undefined || Buffer.compare(s.end, end) < 0)) end = s.end;
  if (end !== undefined && Buffer.compare(start, end) >= 0)
    return rpc.encodeKvScanResult({ items: [], next: null });
  // Pages of a few rows: large values never load more than about bytesMax + one page.
  const engine = sm.engineOf(s);
  const items: rpc.KvScanItem[] = [];
  let bytes = 0;
  let next: Uint8Array | null = null;
  let from = start;
  for (;;) {
    const page = Math.min(r.limit + 1 - items.length, scanPageRows);
    const rows = await engine.scan(s.keyspace, {
      start: from,
      ...(end === undefined ? {} : { end }),
      limit: page,
    });
    for (const row of rows) {
      if (items.length >= r.limit || (items.length > 0 && bytes >= r.bytesMax)) {
        next = row.key;
        break;
      }
      items.push({ key: row.key, value: row.value, seq: row.seq });
      bytes += row.key.length + row.value.length;
    }
    const last = rows[rows.length - 1];
    if (next !== null || rows.length < page || last === undefined) break;
    from = successor(last.key);
  }
  return rpc.encodeKvScanResult({ items, next });
}

async function check(node: StorageNode, group: GroupId): Promise<Uint8Array> {
  const t0 = performance.now();
  const diskOk = await node.probeDisk();
  leaderOnly(node, group);
  const [o] = await node.host.propose(group, [noopCommand]);
  if (o === undefined || !o.ok)
    throw withAddress(node, o?.error ?? new TesseraError('INTERNAL', 'no outcome'));
  return rpc.encodeCtlCheckResult({ index: o.index, diskOk, elapsedMs: Math.round(performance.now() - t0) });
}

async function propose(node: StorageNode, r: rpc.CtlPropose): Promise<Uint8Array> {
  stateMachine(node, r.group);
  const [o] = await node.host.propose(r.group, [encodeCatalogEntry(r.entry)]).catch((e: unknown) => {
    throw withAddress(node, e);
  });
  if (o === undefined || !o.ok)
    throw withAddress(node, o?.error ?? new TesseraError('INTERNAL', 'no outcome'));
  return rpc.encodeIndexResult({ index: o.index });
}

export function registerHandlers(node: StorageNode): void {
  const t = node.transport;
  const kv = (f: (p: Uint8Array) => Promise<Uint8Array>) => (from: PeerIdentity, p: Uint8Array) => {
    requireRole(from, 'request');
    return bounded(node, f, p);
  };
  t.onRequest(
    StorageKind.kvPut,
    kv((p) => write(node, rpc.decodeKvPut(p), true)),
  );
  t.onRequest(
    StorageKind.kvDelete,
    kv((p) => write(node, rpc.decodeKvDelete(p), false)),
  );
  t.onRequest(
    StorageKind.kvGet,
    kv((p) => get(node, rpc.decodeKvGet(p))),
  );
  t.onRequest(
    StorageKind.kvScan,
    kv((p) => scan(node, rpc.decodeKvScan(p))),
  );

  const ctl =
    (f: (p: Uint8Array) => Promise<Uint8Array> | Uint8Array) => async (from: PeerIdentity, p: Uint8Array) => {
      requireRole(from, 'metadata');
      return f(p);
    };
  t.onRequest(
    StorageKind.ctlCampaign,
    ctl((p) => {
      const r = rpc.decodeCtlCampaign(p);
      stateMachine(node, r.group);
      node.host.campaign(r.group, r.minTerm);
      return rpc.encodeEmpty();
    }),
  );
  t.onRequest(
    StorageKind.ctlMembership,
    ctl(async (p) => {
      const r = rpc.decodeCtlMembership(p);
      const index = await node.host.proposeMembership(r.group, r.change).catch((e: unknown) => {
        throw withAddress(node, e);
      });
      return rpc.encodeIndexResult({ index });
    }),
  );
  t.onRequest(
    StorageKind.ctlTransfer,
    ctl((p) => {
      const r = rpc.decodeCtlTransfer(p);
      node.host.transferLeadership(r.group, r.to);
      return rpc.encodeEmpty();
    }),
  );
  t.onRequest(
    StorageKind.ctlCheck,
    ctl((p) => check(node, rpc.decodeCtlGroup(p).group)),
  );
  t.onRequest(
    StorageKind.ctlPropose,
    ctl((p) => propose(node, rpc.decodeCtlPropose(p))),
  );
  t.onRequest(
    StorageKind.ctlHostGroup,
    ctl(async (p) => {
      const r = rpc.decodeCtlHostGroup(p);
      await node.hostGroup(r.group, r.membership, r.addresses, r.mode);
      return rpc.encodeEmpty();
    }),
  );
  t.onRequest(
    StorageKind.ctlDropGroup,
    ctl(async (p) => {
      await node.dropGroup(rpc.decodeCtlGroup(p).group);
      return rpc.encodeEmpty();
    }),
  );
  t.onRequest(StorageKind.ctlStatus, (from) => {
    if (from.role !== 'metadata' && from.role !== 'request') requireRole(from, 'metadata');
    return rpc.encodeCtlStatusResult({ node: node.id, diskOk: node.diskOk, replicas: node.replicas() });
  });
}
