/**
 * ClusterBackend: the RequestBackend of a real cluster. Items go to group leaders over the storage
 * RPC (router.ts) from an in-memory copy of the catalog (catalog-cache.ts); tables, tokens, the
 * cluster view, backup and restore go to the metadata manager (src/metadata/rpc.ts via MmClient).
 * Several request managers can run side by side: they share nothing but the catalog.
 */
import { compareBytes } from '../lib/bytes.js';
import { isTesseraError, TesseraError } from '../lib/errors.js';
import type { GroupId, NodeId, Seq } from '../lib/ids.js';
import { limits } from '../lib/limits.js';
import type { Logger } from '../lib/log.js';
import type { MmClient } from '../metadata/client.js';
import type { GroupWire, TableWire, TokenWire } from '../metadata/rpc.js';
import {
  decodeKvGetResult,
  decodeKvScanResult,
  decodeKvWriteResult,
  encodeKvDeleteAt,
  encodeKvGetAt,
  encodeKvPutAt,
  encodeKvScan,
  type RpcCondition,
} from '../storage/rpc.js';
import type { Transport } from '../transport/transport.js';
import type {
  ClusterGroup,
  ClusterView,
  Engine,
  Health,
  Item,
  RequestBackend,
  ScanItem,
  ScanPage,
  ScanRange,
  TableDescription,
  TableSummary,
  TokenRecord,
  WriteCondition,
  WriteOptions,
} from './backend.js';
import { type CachedTable, CatalogCache } from './catalog-cache.js';
import { withStats } from './cluster-stats.js';
import { RouteCounters, Router, rpcRequestId, shardFor } from './router.js';

export interface ClusterBackendOptions {
  transport: Transport;
  mm: MmClient;
  log: Logger;
  /** kv.* deadline (default limits.requestDeadlineMs). */
  deadlineMs?: number;
}

const toCondition = (c: WriteCondition): RpcCondition =>
  c.kind === 'none'
    ? { type: 'none' }
    : c.kind === 'ifNoneMatch'
      ? { type: 'ifNoneMatch' }
      : { type: 'ifMatch', seq: c.seq };

export const tokenIdText = (id: number): string => id.toString(16).padStart(16, '0');

/** TokenWire -> TokenRecord, converted once per cached wire record (verifyToken runs per request). */
const tokenRecords = new WeakMap<TokenWire, TokenRecord>();

function tokenRecord(t: TokenWire): TokenRecord {
  let r = tokenRecords.get(t);
  if (r === undefined) {
    r = convertToken(t);
    tokenRecords.set(t, r);
  }
  return r;
}

function convertToken(t: TokenWire): TokenRecord {
  return {
    id: tokenIdText(t.id),
    hash: t.hash,
    role: t.role,
    table: t.table,
    createdAt: new Date(t.createdAtMs).toISOString(),
  };
}

function describe(t: TableWire, shards: readonly TableWire['shards'][number][] = t.shards): TableDescription {
  return {
    name: t.name,
    engine: t.engine,
    shards: shards.map((s) => ({ start: s.start, end: s.end, group: s.group, epoch: s.epoch })),
  };
}

const group = (g: GroupWire): ClusterGroup => ({
  id: g.id,
  members: [...g.voters, ...g.learners],
  leader: g.leader === 0 ? null : g.leader,
  term: g.term,
});

export class ClusterBackend implements RequestBackend {
  readonly cache: CatalogCache;
  private readonly router: Router;
  private readonly mm: MmClient;
  private readonly log: Logger;
  /** sha256 of unknown tokens -> until when they are answered "unknown" without asking the MM. */
  private readonly tokenMisses = new Map<string, number>();

  constructor(opts: ClusterBackendOptions) {
    this.mm = opts.mm;
    this.log = opts.log;
    const t = opts.transport;
    this.cache = new CatalogCache({
      mm: opts.mm,
      setPeer: (id, a) => t.setPeer(id, a),
      removePeer: (id) => t.removePeer(id),
      log: opts.log,
    });
    this.router = new Router({
      transport: t,
      cache: this.cache,
      log: opts.log,
      counters: new RouteCounters(),
      ...(opts.deadlineMs === undefined ? {} : { deadlineMs: opts.deadlineMs }),
    });
  }

  start(): void {
    this.cache.start();
  }

  async close(): Promise<void> {
    await this.cache.stop();
  }

  /** An MM call that marks the MM reachable when it answers. */
  private async mmCall<R>(f: () => Promise<R>): Promise<R> {
    const r = await f();
    this.cache.markMmOk();
    return r;
  }

  // ---- tables

  async listTables(): Promise<TableSummary[]> {
    if (!this.cache.loaded) await this.cache.refresh();
    return this.cache.tableList().map((t) => ({ name: t.wire.name, engine: t.wire.engine }));
  }

  async createTable(name: string, engine: Engine): Promise<TableDescription> {
    const res = await this.mmCall(() => this.mm.call('createTable', { name, engine }));
    await this.cache.waitVersion(res.version).catch(() => undefined);
    return describe(res.table);
  }

  async describeTable(name: string): Promise<TableDescription> {
    const t = await this.router.table(name);
    return describe(t.wire, t.shards);
  }

  async dropTable(name: string): Promise<void> {
    const res = await this.mmCall(() => this.mm.call('dropTable', { name }));
    await this.cache.waitVersion(res.version).catch(() => undefined);
  }

  // ---- items

  async put(table: string, key: Uint8Array, value: Uint8Array, opts: WriteOptions): Promise<Seq> {
    const request = rpcRequestId(opts.requestId);
    const condition = toCondition(opts.condition);
    const out = await this.router.call('kvPut', table, key, (target) =>
      encodeKvPutAt(target, key, value, condition, request),
    );
    return decodeKvWriteResult(out).seq;
  }

  async get(table: string, key: Uint8Array): Promise<Item | null> {
    const out = await this.router.call('kvGet', table, key, (target) => encodeKvGetAt(target, key));
    const r = decodeKvGetResult(out);
    return r.value === null || r.seq === null ? null : { value: r.value, seq: r.seq };
  }

  async delete(table: string, key: Uint8Array, opts: WriteOptions): Promise<Seq> {
    const request = rpcRequestId(opts.requestId);
    const condition = toCondition(opts.condition);
    const out = await this.router.call('kvDelete', table, key, (target) =>
      encodeKvDeleteAt(target, key, condition, request),
    );
    return decodeKvWriteResult(out).seq;
  }

  /** Walks the shards from `range.start` in key order, one kv.scan per shard, until the page is full. */
  async scan(table: string, range: ScanRange): Promise<ScanPage> {
    const items: ScanItem[] = [];
    let bytes = 0;
    let cursor = range.start;
    for (let visited = 0; ; visited++) {
      const t: CachedTable = await this.router.table(table);
      const shard = shardFor(t, cursor);
      const page = decodeKvScanResult(
        await this.router.call('kvScan', table, cursor, (target) =>
          encodeKvScan({
            ...target,
            start: cursor,
            end: range.end,
            limit: range.limit - items.length,
            bytesMax: Math.max(1, range.bytesMax - bytes),
          }),
        ),
      );
      for (const it of page.items) {
        items.push(it);
        bytes += it.key.length + it.value.length;
      }
      const full = items.length >= range.limit || bytes >= range.bytesMax;
      if (page.next !== null) return { items, next: page.next };
      // This shard's part of the range is done: the next shard starts at its end.
      const done = shard.end.length === 0 || (range.end !== null && compareBytes(shard.end, range.end) >= 0);
      if (done) return { items, next: null };
      cursor = shard.end;
      if (full || (visited + 1 >= limits.rmScanShardsPerPageMax && items.length > 0))
        return { items, next: cursor };
    }
  }

  // ---- cluster, tokens, metadata

  async cluster(): Promise<ClusterView> {
    const c = await this.mmCall(() => this.mm.call('cluster', {}));
    const view: ClusterView = {
      metadata: { leader: c.metadata.leader === 0 ? null : c.metadata.leader, members: c.metadata.members },
      nodes: c.nodes
        .filter((n) => n.state !== 'removed')
        .map((n) => ({
          id: n.id,
          role: n.role,
          addr: n.addr,
          pid: n.pid,
          state: n.state === 'removed' ? 'down' : n.state,
          heartbeatAgeMs: n.heartbeatAgeMs,
        })),
      groups: c.groups.map(group),
      tables: c.tables.map((t) => describe(t)),
    };
    return withStats(view, c.stats);
  }

  async createToken(record: TokenRecord): Promise<TokenRecord> {
    const res = await this.mmCall(() =>
      this.mm.call('tokens', { op: 'create', hash: record.hash, role: record.role, table: record.table }),
    );
    if (res.token === undefined || res.token === null)
      throw new TesseraError('INTERNAL', 'the metadata manager did not answer the new token');
    this.cache.rememberToken(res.token);
    this.tokenMisses.delete(record.hash);
    return tokenRecord(res.token);
  }

  async listTokens(): Promise<TokenRecord[]> {
    const res = await this.mmCall(() => this.mm.call('tokens', { op: 'list' }));
    return (res.tokens ?? []).map(tokenRecord);
  }

  async revokeToken(id: string): Promise<void> {
    const n = Number.parseInt(id, 16);
    if (!/^[0-9a-f]{16}$/.test(id) || !Number.isSafeInteger(n) || n > 0xffff_ffff)
      throw new TesseraError('TOKEN_NOT_FOUND', `no token ${id}`);
    await this.mmCall(() => this.mm.call('tokens', { op: 'revoke', id: n }));
    this.cache.forgetToken(n);
  }

  /** The record when the in-memory catalog (which follows revocations) has it; else undefined. */
  cachedToken(hash: string): TokenRecord | undefined {
    const t = this.cache.tokenByHash(hash);
    return t === undefined ? undefined : tokenRecord(t);
  }

  /** From memory (the cache follows the catalog); a miss asks the MM (a token created elsewhere just now). */
  async verifyToken(hash: string): Promise<TokenRecord | null> {
    const t = this.cache.tokenByHash(hash);
    if (t !== undefined) return tokenRecord(t);
    if (!this.cache.loaded) return null;
    const now = Date.now();
    const missUntil = this.tokenMisses.get(hash);
    if (missUntil !== undefined && missUntil > now) return null;
    try {
      const res = await this.mmCall(() =>
        this.mm.call('tokens', { op: 'verify', hash }, limits.mmCallAttemptMs),
      );
      if (res.token === undefined || res.token === null) {
        // Unknown tokens are remembered briefly so that a flood of bad tokens can't load the MM.
        if (this.tokenMisses.size >= limits.tokenRecordsMax) this.tokenMisses.clear();
        this.tokenMisses.set(hash, now + limits.rmTokenMissCacheMs);
        return null;
      }
      this.cache.rememberToken(res.token);
      return tokenRecord(res.token);
    } catch (e) {
      if (!isTesseraError(e)) throw e;
      return null;
    }
  }

  async backupMetadata(): Promise<Uint8Array> {
    const res = await this.mmCall(() => this.mm.call('backup', {}));
    return res.bytes;
  }

  async restoreMetadata(backup: Uint8Array): Promise<void> {
    try {
      const res = await this.mmCall(() => this.mm.call('restore', { bytes: backup }));
      await this.cache.waitVersion(res.version).catch(() => undefined);
    } catch (e) {
      if (isTesseraError(e, 'CORRUPTION'))
        throw new TesseraError('BAD_REQUEST', `not a valid backup: ${e.message}`);
      throw e;
    }
  }

  async health(): Promise<Health> {
    if (!this.cache.loaded) return { ok: false, reason: 'catalog not loaded yet' };
    if (!this.cache.mmReachable()) return { ok: false, reason: 'metadata manager unreachable' };
    return { ok: true };
  }

  /** Groups whose leader this RM knows (for readiness checks). */
  groupsWithoutLeader(groups: readonly GroupId[]): GroupId[] {
    return groups.filter((g) => this.cache.leaderOf(g) === null);
  }

  leaderOf(g: GroupId): NodeId | null {
    return this.cache.leaderOf(g);
  }
}
