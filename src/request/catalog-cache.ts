/**
 * The request manager's in-memory copy of the routing catalog. It follows the metadata manager with
 * `mm.catalog` long-polls by version (each answer either carries the whole routing view or says
 * "unchanged"), keeps leader hints learned from storage nodes (so routing goes on while the MM is
 * down), and a copy of the token records (so token checks answer from memory).
 */
import { compareBytes } from '../lib/bytes.js';
import { isTesseraError, TesseraError } from '../lib/errors.js';
import type { GroupId, NodeId } from '../lib/ids.js';
import { limits } from '../lib/limits.js';
import type { Logger } from '../lib/log.js';
import { defaultRegistry, type Gauge } from '../lib/metrics.js';
import type { MmClient } from '../metadata/client.js';
import type { GroupWire, RoutingWire, ShardWire, TableWire, TokenWire } from '../metadata/rpc.js';
import type { PeerAddress } from '../transport/transport.js';

export interface CachedTable {
  readonly wire: TableWire;
  /** Sorted by start; they tile the key space. */
  readonly shards: readonly ShardWire[];
}

interface LeaderHint {
  leader: NodeId;
  term: number;
}

export interface CatalogCacheOptions {
  mm: MmClient;
  /** Called for each storage node address in the catalog (the transport connects to it). */
  setPeer: (id: NodeId, addr: PeerAddress) => void;
  /** Called for a storage node that left the catalog (or was removed). */
  removePeer?: (id: NodeId) => void;
  log: Logger;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export function parseAddress(addr: string): PeerAddress | null {
  const i = addr.lastIndexOf(':');
  if (i <= 0) return null;
  const port = Number(addr.slice(i + 1));
  if (!Number.isInteger(port) || port <= 0 || port > 65_535) return null;
  return { host: addr.slice(0, i), port };
}

export class CatalogCache {
  private readonly mm: MmClient;
  private readonly setPeer: (id: NodeId, addr: PeerAddress) => void;
  private readonly removePeer: (id: NodeId) => void;
  private readonly log: Logger;
  version = -1;
  private tables = new Map<string, CachedTable>();
  private groups = new Map<GroupId, GroupWire>();
  private addresses = new Map<NodeId, string>();
  private readonly hints = new Map<GroupId, LeaderHint>();
  private tokens = new Map<string, TokenWire>();
  private tokensVersion = -1;
  /** Wall time of the last answer from the MM (any call made through this cache). */
  private lastMmOkMs = 0;
  private stopped = false;
  private loop: Promise<void> | null = null;
  private refreshing: Promise<void> | null = null;

  constructor(opts: CatalogCacheOptions) {
    this.mm = opts.mm;
    this.setPeer = opts.setPeer;
    this.removePeer = opts.removePeer ?? (() => undefined);
    this.log = opts.log;
    this.registerMetrics();
  }

  /** Gauges sampled at scrape time: the catalog version held, groups with a leader hint, MM age. */
  private registerMetrics(): void {
    const gauge = (name: string, help: string, sample: () => number): void => {
      const g = (defaultRegistry.get(name) as Gauge | undefined) ?? defaultRegistry.gauge(name, help);
      g.onCollect(() => g.set(sample()));
    };
    gauge(
      'tessera_rm_catalog_version',
      'Catalog version held by this request manager (-1: none).',
      () => this.version,
    );
    gauge(
      'tessera_rm_leader_hints',
      'Groups whose leader this request manager knows.',
      () => this.hints.size,
    );
    gauge(
      'tessera_rm_mm_answer_age_seconds',
      'Seconds since the metadata manager last answered (-1: never).',
      () => (this.lastMmOkMs === 0 ? -1 : (Date.now() - this.lastMmOkMs) / 1000),
    );
  }

  get loaded(): boolean {
    return this.version >= 0;
  }

  /** Whether the MM answered within the last few long-poll rounds. */
  mmReachable(nowMs = Date.now()): boolean {
    return nowMs - this.lastMmOkMs <= limits.mmCatalogWaitMaxMs + limits.mmCallAttemptMs + 1_000;
  }

  /** Starts following the catalog (long-poll loop until stop()). */
  start(): void {
    if (this.loop !== null) return;
    this.loop = this.follow();
  }

  /** Stops following; an MM call in flight is not waited for beyond a moment (the MM may be gone). */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.loop === null) return;
    await Promise.race([this.loop.catch(() => undefined), sleep(200)]);
  }

  private async follow(): Promise<void> {
    let failures = 0;
    while (!this.stopped) {
      try {
        await this.poll(this.loaded ? limits.mmCatalogWaitMaxMs : 0);
        failures = 0;
      } catch (e) {
        if (!isTesseraError(e)) throw e;
        failures++;
        if (failures === 1 || failures % 20 === 0)
          this.log.warn('catalog follow failed', { code: e.code, error: e.message, failures });
        await sleep(Math.min(limits.mmRetryBackoffMaxMs, 50 * failures));
      }
    }
  }

  private async poll(waitMs: number): Promise<void> {
    const since = this.version;
    const res = await this.mm.call('catalog', { sinceVersion: Math.max(0, since), waitMs });
    this.lastMmOkMs = Date.now();
    if (res.view !== null && (res.version > this.version || !this.loaded))
      this.install(res.version, res.view);
    if (this.tokensVersion < this.version) await this.loadTokens();
  }

  /** Fetches the catalog now (one at a time; concurrent callers share it). */
  refresh(): Promise<void> {
    if (this.refreshing === null) {
      this.refreshing = this.poll(0).finally(() => {
        this.refreshing = null;
      });
    }
    return this.refreshing;
  }

  /** Refreshes until the cache holds at least `version` (or the deadline passes). */
  async waitVersion(version: number, deadlineMs = limits.requestDeadlineMs): Promise<void> {
    const end = Date.now() + deadlineMs;
    while (this.version < version && Date.now() < end) {
      await this.refresh();
      if (this.version < version) await sleep(20);
    }
  }

  private install(version: number, view: RoutingWire): void {
    const tables = new Map<string, CachedTable>();
    for (const t of view.tables) {
      const shards = [...t.shards].sort((a, b) => compareBytes(a.start, b.start));
      tables.set(t.name, { wire: t, shards });
    }
    const groups = new Map<GroupId, GroupWire>();
    for (const g of view.groups) {
      groups.set(g.id, g);
      const hint = this.hints.get(g.id);
      if (g.leader !== 0 && (hint === undefined || g.term >= hint.term))
        this.hints.set(g.id, { leader: g.leader, term: g.term });
    }
    const addresses = new Map<NodeId, string>();
    for (const n of view.nodes) {
      if (n.state === 'removed' || n.role !== 'storage') continue;
      addresses.set(n.id, n.address);
      if (this.addresses.get(n.id) !== n.address) {
        const a = parseAddress(n.address);
        if (a !== null) this.setPeer(n.id, a);
      }
    }
    for (const id of this.addresses.keys()) if (!addresses.has(id)) this.removePeer(id);
    this.tables = tables;
    this.groups = groups;
    this.addresses = addresses;
    this.version = version;
  }

  private async loadTokens(): Promise<void> {
    const version = this.version;
    const res = await this.mm.call('tokens', { op: 'list' });
    const tokens = new Map<string, TokenWire>();
    for (const t of res.tokens ?? []) tokens.set(t.hash, t);
    this.tokens = tokens;
    this.tokensVersion = version;
  }

  table(name: string): CachedTable | undefined {
    return this.tables.get(name);
  }

  /** Active tables sorted by name. */
  tableList(): CachedTable[] {
    return [...this.tables.values()].sort((a, b) => (a.wire.name < b.wire.name ? -1 : 1));
  }

  group(id: GroupId): GroupWire | undefined {
    return this.groups.get(id);
  }

  /** Where to send a group's requests: the leader hint, else null (unknown). */
  leaderOf(group: GroupId): NodeId | null {
    return this.hints.get(group)?.leader ?? null;
  }

  /** A storage node said `leader` leads `group` (a NOT_LEADER hint); 0/undefined clears it. */
  learnLeader(group: GroupId, leader: NodeId | null, term: number): void {
    const cur = this.hints.get(group);
    if (leader === null || (leader as number) === 0) {
      this.hints.delete(group);
      return;
    }
    if (cur === undefined || term >= cur.term) this.hints.set(group, { leader, term });
  }

  forgetLeader(group: GroupId, leader: NodeId): void {
    if (this.hints.get(group)?.leader === leader) this.hints.delete(group);
  }

  /** Voters of a group to try when the leader is unknown. */
  votersOf(group: GroupId): readonly NodeId[] {
    return this.groups.get(group)?.voters ?? [];
  }

  hasAddress(node: NodeId): boolean {
    return this.addresses.has(node);
  }

  tokenByHash(hash: string): TokenWire | undefined {
    return this.tokens.get(hash);
  }

  tokenList(): TokenWire[] {
    return [...this.tokens.values()];
  }

  rememberToken(t: TokenWire): void {
    this.tokens.set(t.hash, t);
  }

  forgetToken(id: number): void {
    for (const [h, t] of this.tokens) if (t.id === id) this.tokens.delete(h);
  }

  markMmOk(): void {
    this.lastMmOkMs = Date.now();
  }

  /** NOT_LEADER detail from a storage node: `{leader, term}` (leader 0 = unknown). */
  static hintOf(e: unknown): { leader: number; term: number } | null {
    if (!isTesseraError(e, 'NOT_LEADER')) return null;
    const leader = Number(e.detail?.leader ?? e.detail?.leaderHint ?? 0);
    const term = Number(e.detail?.term ?? 0);
    return Number.isInteger(leader) && leader > 0 ? { leader, term: Number.isFinite(term) ? term : 0 } : null;
  }
}

export function unavailable(message: string, retryAfterSeconds = limits.httpRetryAfterSeconds): TesseraError {
  return new TesseraError('UNAVAILABLE', message, { retryAfterSeconds });
}
