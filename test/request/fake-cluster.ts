/**
 * An in-process fake of the cluster around a request manager, over real transports on loopback:
 * one metadata node (id 1) answering mm.catalog/tokens/createTable/... from a small routing view,
 * and storage nodes answering kv.* from in-memory maps, with knobs for faults (not the leader, no
 * answer, stale epoch, lost answer). Used by cluster-backend.test.ts.
 */
import { randomBytes } from 'node:crypto';
import { compareBytes, toHex } from '../../src/lib/bytes.js';
import { TesseraError } from '../../src/lib/errors.js';
import { type GroupId, groupId, type NodeId, nodeId, type Seq, type Term } from '../../src/lib/ids.js';
import { createLogger } from '../../src/lib/log.js';
import {
  decodeMmRequest,
  encodeMm,
  MmKind,
  type GroupWire,
  type RoutingWire,
  type TableWire,
  type TokenWire,
} from '../../src/metadata/rpc.js';
import {
  decodeKvDelete,
  decodeKvGet,
  decodeKvPut,
  decodeKvScan,
  encodeKvGetResult,
  encodeKvScanResult,
  encodeKvWriteResult,
  type ShardTarget,
  StorageKind,
} from '../../src/storage/rpc.js';
import { Transport } from '../../src/transport/transport.js';

export const defaultSecret = new Uint8Array(randomBytes(32));
export const quietLog = createLogger('test', { sink: () => undefined });

const limits = { reconnectBackoffMinMs: 10, reconnectBackoffMaxMs: 100, handshakeTimeoutMs: 2000 };

export interface StoredItem {
  value: Uint8Array;
  seq: Seq;
}

/** One fake storage node. */
export class FakeStorage {
  /** group -> is this node its leader? */
  leaderOf = new Set<number>();
  /** NOT_LEADER hint given when not the leader (0 = unknown). */
  hint = 0;
  /** Never answer kv.put (the request times out). */
  blackholeWrites = false;
  /** Apply the next N puts, then answer OUTCOME_UNKNOWN (the answer is "lost"). */
  loseAnswers = 0;
  /** Answer STALE_SHARD to any epoch below this. */
  epochMin = 0;
  readonly seen: { kind: string; target: ShardTarget; request?: string }[] = [];
  private counter = 0;

  constructor(
    readonly id: number,
    readonly t: Transport,
    readonly data: Map<string, StoredItem>,
    readonly dedup: Map<string, Seq>,
  ) {
    t.onRequest(StorageKind.kvPut, (from, p) => this.put(from.role, p));
    t.onRequest(StorageKind.kvGet, (_f, p) => {
      const r = decodeKvGet(p);
      this.check('get', r);
      const it = this.data.get(this.k(r.shard, r.key));
      return encodeKvGetResult(it === undefined ? { value: null, seq: null } : it);
    });
    t.onRequest(StorageKind.kvDelete, (_f, p) => {
      const r = decodeKvDelete(p);
      this.check('delete', r, `${r.request.client}:${r.request.number}`);
      const k = this.k(r.shard, r.key);
      if (!this.data.has(k)) throw new TesseraError('KEY_NOT_FOUND', 'absent');
      this.data.delete(k);
      return encodeKvWriteResult({ seq: this.nextSeq() });
    });
    t.onRequest(StorageKind.kvScan, (_f, p) => {
      const r = decodeKvScan(p);
      this.check('scan', r);
      const prefix = `${r.shard}/`;
      const keys = [...this.data.keys()]
        .filter((k) => k.startsWith(prefix))
        .map((k) => Buffer.from(k.slice(prefix.length), 'hex'))
        .filter((k) => compareBytes(k, r.start) >= 0 && (r.end === null || compareBytes(k, r.end) < 0))
        .sort(compareBytes);
      const page = keys.slice(0, r.limit);
      const items = page.map((key) => ({
        key: new Uint8Array(key),
        ...this.data.get(this.k(r.shard, key))!,
      }));
      const next = keys.length > r.limit ? new Uint8Array(keys[r.limit]!) : null;
      return encodeKvScanResult({ items, next });
    });
  }

  private k(shard: number, key: Uint8Array): string {
    return `${shard}/${toHex(key)}`;
  }

  private nextSeq(): Seq {
    const b = Buffer.alloc(16);
    b.writeBigUInt64BE(BigInt(Date.now()) * 1_000_000n + BigInt(++this.counter), 0);
    b.writeUInt32BE(this.id, 12);
    return new Uint8Array(b) as Seq;
  }

  private check(kind: string, target: ShardTarget, request?: string): void {
    this.seen.push({ kind, target, ...(request === undefined ? {} : { request }) });
    if (!this.leaderOf.has(target.group))
      throw new TesseraError('NOT_LEADER', 'not the leader', { leader: this.hint, term: 7 });
    if (target.epoch < this.epochMin)
      throw new TesseraError('STALE_SHARD', 'stale', { epoch: this.epochMin });
  }

  private put(role: string, p: Uint8Array): Uint8Array | Promise<Uint8Array> {
    if (role !== 'request') throw new TesseraError('BAD_REQUEST_MANAGER', 'not a request manager');
    const r = decodeKvPut(p);
    const id = `${r.request.client}:${r.request.number}`;
    this.check('put', r, id);
    if (this.blackholeWrites) return new Promise<Uint8Array>(() => undefined);
    const k = this.k(r.shard, r.key);
    let seq = this.dedup.get(id);
    if (seq === undefined) {
      const cur = this.data.get(k);
      if (r.condition.type === 'ifNoneMatch' && cur !== undefined)
        throw new TesseraError('CONDITION_FAILED', 'exists');
      if (r.condition.type === 'ifMatch' && (cur === undefined || toHex(cur.seq) !== toHex(r.condition.seq)))
        throw new TesseraError('CONDITION_FAILED', 'seq differs');
      seq = this.nextSeq();
      this.data.set(k, { value: new Uint8Array(r.value), seq });
      this.dedup.set(id, seq);
    }
    if (this.loseAnswers > 0) {
      this.loseAnswers--;
      throw new TesseraError('OUTCOME_UNKNOWN', 'leadership changed');
    }
    return encodeKvWriteResult({ seq });
  }
}

/** The fake MM: a routing view the test edits, and the calls the RM makes. */
export class FakeMm {
  version = 1;
  tables: TableWire[] = [];
  groups: GroupWire[] = [];
  nodes: RoutingWire['nodes'] = [];
  tokens: TokenWire[] = [];
  readonly calls: string[] = [];
  readonly registered = new Map<string, number>();

  constructor(readonly t: Transport) {
    const on = (kind: number, name: string, f: (p: Uint8Array) => object): void =>
      t.onRequest(kind, (_from, p) => {
        this.calls.push(name);
        return encodeMm(f(p));
      });
    on(MmKind.register, 'register', (p) => {
      const r = decodeMmRequest('register', p);
      let id = this.registered.get(r.nodeKey);
      if (id === undefined) {
        id = 30 + this.registered.size;
        this.registered.set(r.nodeKey, id);
      }
      return { node: id, created: true };
    });
    on(MmKind.catalog, 'catalog', (p) => {
      const r = decodeMmRequest('catalog', p);
      const view = r.sinceVersion < this.version || r.sinceVersion === 0 ? this.view() : null;
      return { version: this.version, view };
    });
    on(MmKind.tokens, 'tokens', (p) => {
      const r = decodeMmRequest('tokens', p);
      if (r.op === 'list') return { tokens: this.tokens };
      if (r.op === 'verify') return { token: this.tokens.find((t) => t.hash === r.hash) ?? null };
      if (r.op === 'revoke') {
        const before = this.tokens.length;
        this.tokens = this.tokens.filter((t) => t.id !== r.id);
        if (this.tokens.length === before) throw new TesseraError('TOKEN_NOT_FOUND', 'no such token');
        this.bump();
        return {};
      }
      const token = {
        id: this.tokens.length + 1,
        hash: r.hash,
        role: r.role,
        table: r.table,
        createdAtMs: 1,
      };
      this.tokens.push(token);
      this.bump();
      return { token };
    });
    on(MmKind.createTable, 'createTable', (p) => {
      const r = decodeMmRequest('createTable', p);
      if (this.tables.some((t) => t.name === r.name)) throw new TesseraError('TABLE_EXISTS', 'exists');
      const table: TableWire = {
        id: this.tables.length + 1,
        name: r.name,
        engine: r.engine,
        shards: [
          {
            shard: 100 + this.tables.length,
            start: new Uint8Array(),
            end: new Uint8Array(),
            epoch: 1,
            group: groupId(1),
          },
        ],
      };
      this.tables.push(table);
      this.bump();
      return { table, version: this.version };
    });
  }

  bump(): void {
    this.version++;
  }

  view(): RoutingWire {
    return { tables: this.tables, groups: this.groups, nodes: this.nodes };
  }

  group(id: number, voters: number[], leader: number): void {
    const g: GroupWire = {
      id: groupId(id),
      voters: voters.map((v) => nodeId(v)),
      learners: [],
      leader: nodeId(leader),
      term: 1 as Term,
    };
    this.groups = [...this.groups.filter((x) => x.id !== id), g];
  }
}

export class FakeCluster {
  constructor(readonly secret: Uint8Array = defaultSecret) {}
  readonly transports: Transport[] = [];
  readonly storage = new Map<number, FakeStorage>();
  mm!: FakeMm;
  readonly data = new Map<string, StoredItem>();
  readonly dedup = new Map<string, Seq>();

  async start(storageIds: number[]): Promise<void> {
    const mmT = await this.transport(1, 'metadata', true);
    this.mm = new FakeMm(mmT);
    for (const id of storageIds) {
      const t = await this.transport(id, 'storage', true);
      this.storage.set(id, new FakeStorage(id, t, this.data, this.dedup));
      const a = t.address;
      if (a === null) throw new Error('not listening');
      this.mm.nodes.push({ id: nodeId(id), role: 'storage', address: `${a.host}:${a.port}`, state: 'up' });
    }
  }

  async transport(id: number, role: 'metadata' | 'storage' | 'request', listen: boolean): Promise<Transport> {
    const t = await Transport.start({
      self: { nodeId: id as NodeId, role },
      secret: this.secret,
      ...(listen ? { listen: { host: '127.0.0.1', port: 0 } } : {}),
      log: { info: () => undefined, warn: () => undefined },
      limits,
    });
    this.transports.push(t);
    return t;
  }

  get mmAddress(): { host: string; port: number } {
    const a = this.mm.t.address;
    if (a === null) throw new Error('MM not listening');
    return a;
  }

  node(id: number): FakeStorage {
    const s = this.storage.get(id);
    if (s === undefined) throw new Error(`no storage ${id}`);
    return s;
  }

  async close(): Promise<void> {
    await Promise.all(this.transports.map((t) => t.close()));
  }
}

export const g1: GroupId = groupId(1);
