/**
 * The request manager's data path: send one kv.* call to the leader of the group that owns a key,
 * and retry it within limits.requestDeadlineMs, always with the SAME payload (so a write keeps its
 * request id and the group's dedup table answers a retry with the first outcome):
 * - NOT_LEADER with a hint: go to the hinted leader; without one: try the group's voters in turn.
 * - STALE_SHARD (or a shard the node does not have): refresh the catalog and re-route.
 * - peer down / refused: try another voter; lost answer (TIMEOUT, connection lost with the request
 *   in flight, storage OUTCOME_UNKNOWN): the write may have been delivered; retry the same id.
 * At the deadline: a write that may have been delivered is OUTCOME_UNKNOWN (504), never a guess;
 * otherwise UNAVAILABLE (503 + Retry-After) when the group has no reachable leader.
 */
import { createHash } from 'node:crypto';
import { isTesseraError, TesseraError } from '../lib/errors.js';
import type { GroupId, NodeId } from '../lib/ids.js';
import { nodeId, shardId } from '../lib/ids.js';
import { limits } from '../lib/limits.js';
import type { Logger } from '../lib/log.js';
import { type Counter, defaultRegistry } from '../lib/metrics.js';
import { type ShardTarget, StorageKind } from '../storage/rpc.js';
import type { Transport } from '../transport/transport.js';
import { type CachedTable, type CatalogCache, unavailable } from './catalog-cache.js';
import type { ShardWire } from '../metadata/rpc.js';
import { compareBytes } from '../lib/bytes.js';
import { assert } from '../lib/assert.js';

export type KvCall = 'kvPut' | 'kvGet' | 'kvDelete' | 'kvScan';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Client ids hashed recently (a sha256 per request was a visible share of the RM's CPU). */
const clientIdCache = new Map<string, bigint>();

/** The storage RPC's u64 client id for a RequestId's string client id (same string -> same id, on every RM). */
export function rpcClientId(clientId: string): bigint {
  const hit = clientIdCache.get(clientId);
  if (hit !== undefined) return hit;
  const h = createHash('sha256').update(clientId, 'utf8').digest();
  const r = h.readBigUInt64BE(0);
  const v = r === 0n ? 1n : r;
  if (clientIdCache.size >= limits.rmClientIdCacheMax) clientIdCache.clear();
  clientIdCache.set(clientId, v);
  return v;
}

/**
 * The storage RPC's request id of a RequestId: client = rpcClientId(clientId), number = n + 1 (the
 * group's dedup table treats numbers at or below a client's floor, 0 at first, as already forgotten,
 * and a client may send n = 0). Deterministic, so a retry through any RM carries the same id.
 */
export function rpcRequestId(id: { clientId: string; n: number }): { client: bigint; number: number } {
  return { client: rpcClientId(id.clientId), number: id.n + 1 };
}

/** The shard of a table whose [start, end) holds `key` (binary search over the sorted shards). */
export function shardFor(table: CachedTable, key: Uint8Array): ShardWire {
  const shards = table.shards;
  assert(shards.length > 0, `table ${table.wire.name} has no shards`);
  let lo = 0;
  let hi = shards.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >>> 1;
    if (compareBytes(shards[mid]!.start, key) <= 0) lo = mid;
    else hi = mid - 1;
  }
  return shards[lo]!;
}

/** Counters of the data path (on the default registry, so they show at /metrics). */
export class RouteCounters {
  private readonly calls: Counter;
  private readonly retries: Counter;
  constructor() {
    const reg = defaultRegistry;
    this.calls =
      (reg.get('tessera_rm_storage_calls_total') as Counter | undefined) ??
      reg.counter('tessera_rm_storage_calls_total', 'kv.* calls answered by group leaders.', ['kind']);
    this.retries =
      (reg.get('tessera_rm_storage_retries_total') as Counter | undefined) ??
      reg.counter('tessera_rm_storage_retries_total', 'kv.* attempts that failed, by error code.', ['code']);
  }
  ok(kind: string): void {
    this.calls.labels(kind).inc();
  }
  retry(code: string): void {
    this.retries.labels(code).inc();
  }
}

export interface RouterOptions {
  transport: Transport;
  cache: CatalogCache;
  log: Logger;
  counters?: RouteCounters;
  deadlineMs?: number;
  noLeaderWaitMs?: number;
}

interface Attempt {
  /** The write may have reached a leader (its outcome is unknown so far). */
  maybeDelivered: boolean;
  /** The last attempt learned a new leader hint: go there without waiting (bounded per call). */
  followHint: boolean;
  hintsFollowed: number;
  /** Voters already tried without a leader hint, per group (round robin). */
  probe: number;
  lastError: unknown;
}

const isWrite = (kind: KvCall): boolean => kind === 'kvPut' || kind === 'kvDelete';

const newAttempt = (): Attempt => ({
  maybeDelivered: false,
  followHint: false,
  hintsFollowed: 0,
  probe: 0,
  lastError: null,
});

export class Router {
  private readonly t: Transport;
  private readonly cache: CatalogCache;
  private readonly log: Logger;
  private readonly counters: RouteCounters | undefined;
  readonly deadlineMs: number;
  readonly noLeaderWaitMs: number;

  constructor(opts: RouterOptions) {
    this.t = opts.transport;
    this.cache = opts.cache;
    this.log = opts.log;
    this.counters = opts.counters;
    this.deadlineMs = opts.deadlineMs ?? limits.requestDeadlineMs;
    this.noLeaderWaitMs = Math.min(this.deadlineMs, opts.noLeaderWaitMs ?? limits.rmNoLeaderWaitMs);
  }

  /** The table from the cache, refreshing once on a miss; TABLE_NOT_FOUND if still absent. */
  async table(name: string): Promise<CachedTable> {
    let t = this.cache.table(name);
    if (t !== undefined) return t;
    if (!this.cache.loaded) throw unavailable('the request manager has not loaded the catalog yet');
    await this.cache.refresh().catch(() => undefined);
    t = this.cache.table(name);
    if (t === undefined) throw new TesseraError('TABLE_NOT_FOUND', `no table ${name}`);
    return t;
  }

  /**
   * Calls `kind` on the leader of the shard holding `key` of `tableName`. `encode` builds the
   * payload for a target; it must be deterministic except for the target (same request id).
   */
  call(
    kind: KvCall,
    tableName: string,
    key: Uint8Array,
    encode: (target: ShardTarget) => Uint8Array,
  ): Promise<Uint8Array> {
    const start = Date.now();
    // Fast path: table cached and the group's leader known; the retry loop only on a failure.
    const table = this.cache.table(tableName);
    if (table !== undefined) {
      const shard = shardFor(table, key);
      const leader = this.cache.leaderOf(shard.group);
      if (leader !== null && this.cache.hasAddress(leader)) {
        return this.send(leader, kind, shard, encode, this.deadlineMs).catch((e: unknown) => {
          const a = newAttempt();
          if (!this.absorb(e, shard.group, leader, isWrite(kind), a)) throw e;
          // As the loop does after a failed round 0: count a followed hint, go on without sleeping.
          if (a.followHint && a.hintsFollowed < limits.rmHintsFollowedMax) a.hintsFollowed++;
          a.followHint = false;
          return this.retry(kind, tableName, key, encode, start, a, 1);
        });
      }
    }
    return this.retry(kind, tableName, key, encode, start, newAttempt(), 0);
  }

  /** The routing loop of `call`, from round `first` (1 after a failed fast-path attempt). */
  private async retry(
    kind: KvCall,
    tableName: string,
    key: Uint8Array,
    encode: (target: ShardTarget) => Uint8Array,
    start: number,
    a: Attempt,
    first: number,
  ): Promise<Uint8Array> {
    const write = isWrite(kind);
    const end = start + this.deadlineMs;
    for (let round = first; ; round++) {
      const table = this.cache.table(tableName) ?? (await this.table(tableName));
      const shard = shardFor(table, key);
      const now = Date.now();
      const left = end - now;
      if (left <= 0) break;
      // No leader found for a while and nothing possibly delivered: answer 503 now, the client retries.
      if (!a.maybeDelivered && a.lastError !== null && now - start >= this.noLeaderWaitMs) break;
      const target = this.pickTarget(shard.group, a);
      if (target === null) {
        if (a.lastError === null) a.lastError = unavailable(`group ${shard.group} has no known leader`);
      } else {
        try {
          return await this.send(target, kind, shard, encode, left);
        } catch (e) {
          if (!this.absorb(e, shard.group, target, write, a)) throw e;
        }
      }
      // A fresh hint is followed at once (a new leader usually), a few times per call: hints can be
      // stale (a follower still names a dead leader until its stickiness ends). Otherwise back off.
      if (a.followHint && a.hintsFollowed < limits.rmHintsFollowedMax) {
        a.hintsFollowed++;
        a.followHint = false;
        continue;
      }
      a.followHint = false;
      if (round > 0 || target === null)
        await sleep(Math.min(limits.rmRetryBackoffMaxMs, 5 * 2 ** Math.min(round, 6), left));
    }
    throw this.giveUp(kind, tableName, write, a);
  }

  private send(
    target: NodeId,
    kind: KvCall,
    shard: ShardWire,
    encode: (target: ShardTarget) => Uint8Array,
    left: number,
  ): Promise<Uint8Array> {
    const payload = encode({
      group: shard.group,
      shard: shardId(shard.shard),
      epoch: shard.epoch,
      catalogVersion: Math.max(0, this.cache.version),
      deadlineMs: left,
    });
    const counters = this.counters;
    const out = this.t.request(target, StorageKind[kind], payload, { timeoutMs: left });
    return counters === undefined
      ? out
      : out.then((r) => {
          counters.ok(kind);
          return r;
        });
  }

  /** Leader hint, else the next voter; null when the group has none we can reach. */
  private pickTarget(group: GroupId, a: Attempt): NodeId | null {
    const leader = this.cache.leaderOf(group);
    if (leader !== null && this.cache.hasAddress(leader)) return leader;
    const voters = this.cache.votersOf(group).filter((v) => this.cache.hasAddress(v));
    if (voters.length === 0) return null;
    const v = voters[a.probe % voters.length]!;
    a.probe++;
    return v;
  }

  /** Handles a failed attempt; true = retry, false = answer the client with this error. */
  private absorb(e: unknown, group: GroupId, target: NodeId, write: boolean, a: Attempt): boolean {
    if (!isTesseraError(e)) return false;
    this.counters?.retry(e.code);
    switch (e.code) {
      case 'NOT_LEADER': {
        const leader = Number(e.detail?.leader ?? 0);
        const term = Number(e.detail?.term ?? 0);
        if (Number.isInteger(leader) && leader > 0 && leader !== target) {
          this.cache.learnLeader(group, nodeId(leader), Number.isFinite(term) ? term : 0);
          a.followHint = this.cache.leaderOf(group) === leader;
        } else this.cache.forgetLeader(group, target);
        a.lastError = unavailable(`group ${group} has no leader now`);
        return true;
      }
      case 'STALE_SHARD':
      case 'GROUP_NOT_FOUND':
      case 'BAD_REQUEST_MANAGER':
        // Our view of the shard is behind (or the node's is): refresh and re-route.
        void this.cache.refresh().catch(() => undefined);
        a.lastError = unavailable(`shard moved or catalog changing (${e.code})`);
        return true;
      case 'UNAVAILABLE':
      case 'TIMEOUT':
      case 'OUTCOME_UNKNOWN':
      case 'SEND_QUEUE_FULL':
      case 'TOO_MANY_REQUESTS': {
        const delivered = e.code === 'OUTCOME_UNKNOWN' || e.detail?.maybeDelivered === true;
        if (write && delivered) a.maybeDelivered = true;
        if (e.code === 'UNAVAILABLE') this.cache.forgetLeader(group, target);
        a.lastError = e;
        return true;
      }
      default:
        return false;
    }
  }

  private giveUp(kind: KvCall, table: string, write: boolean, a: Attempt): TesseraError {
    this.log.warn('request gave up at its deadline', {
      kind,
      table,
      maybeDelivered: a.maybeDelivered,
      last: isTesseraError(a.lastError) ? a.lastError.code : String(a.lastError),
    });
    if (write && a.maybeDelivered)
      return new TesseraError(
        'OUTCOME_UNKNOWN',
        'the write may or may not have been applied (no answer from the group); read the key to learn',
      );
    if (isTesseraError(a.lastError) && a.lastError.code === 'TIMEOUT' && !write) return a.lastError;
    const msg = isTesseraError(a.lastError) ? a.lastError.message : 'no leader answered in time';
    return unavailable(msg);
  }
}
