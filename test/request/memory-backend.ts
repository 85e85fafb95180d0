/**
 * An in-memory RequestBackend for tests (a fixture, not shipped): one process, tables as sorted
 * maps, seqs from a hybrid clock, exactly-once request ids, a fake cluster view, hashed tokens.
 */
import { bytesEqual, compareBytes } from '../../src/lib/bytes.js';
import { TesseraError } from '../../src/lib/errors.js';
import { groupId, nodeId, type Seq } from '../../src/lib/ids.js';
import type {
  ClusterView,
  Engine,
  Health,
  Item,
  RequestBackend,
  ScanPage,
  ScanRange,
  TableDescription,
  TableSummary,
  TokenRecord,
  WriteOptions,
} from '../../src/request/backend.js';

interface Table {
  engine: Engine;
  rows: Map<string, { key: Uint8Array; value: Uint8Array; seq: Seq }>;
}

const hexKey = (k: Uint8Array): string => Buffer.from(k).toString('hex');

export class MemoryBackend implements RequestBackend {
  readonly tables = new Map<string, Table>();
  readonly tokens = new Map<string, TokenRecord>();
  private lastNs = 0n;
  private counter = 0;
  private readonly outcomes = new Map<string, Seq | TesseraError>();
  healthState: Health = { ok: true };
  /** When set, every data call waits for it (to hold requests in flight). */
  gate: Promise<void> | null = null;
  /** Errors to throw from the next data calls, in order (e.g. UNAVAILABLE to test client retries). */
  failures: TesseraError[] = [];
  calls = 0;

  private async enter(): Promise<void> {
    this.calls++;
    if (this.gate !== null) await this.gate;
    const f = this.failures.shift();
    if (f !== undefined) throw f;
  }

  private nextSeq(): Seq {
    const now = BigInt(Date.now()) * 1_000_000n;
    this.lastNs = now > this.lastNs ? now : this.lastNs;
    this.counter = (this.counter + 1) >>> 0;
    const b = Buffer.alloc(16);
    b.writeBigUInt64BE(this.lastNs, 0);
    b.writeUInt32BE(this.counter, 8);
    b.writeUInt32BE(1, 12);
    return new Uint8Array(b) as Seq;
  }

  private table(name: string): Table {
    const t = this.tables.get(name);
    if (t === undefined) throw new TesseraError('TABLE_NOT_FOUND', `no table ${name}`);
    return t;
  }

  private describe(name: string, t: Table): TableDescription {
    const mid = new Uint8Array([0x6d]); // 'm': two shards, to make scans cross a shard bound
    return {
      name,
      engine: t.engine,
      shards: [
        { start: new Uint8Array(0), end: mid, group: groupId(1), epoch: 1 },
        { start: mid, end: new Uint8Array(0), group: groupId(2), epoch: 1 },
      ],
    };
  }

  async listTables(): Promise<TableSummary[]> {
    await this.enter();
    return [...this.tables.entries()]
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([name, t]) => ({ name, engine: t.engine }));
  }

  async createTable(name: string, engine: Engine): Promise<TableDescription> {
    await this.enter();
    if (this.tables.has(name)) throw new TesseraError('TABLE_EXISTS', `table ${name} exists`);
    const t: Table = { engine, rows: new Map() };
    this.tables.set(name, t);
    return this.describe(name, t);
  }

  async describeTable(name: string): Promise<TableDescription> {
    await this.enter();
    return this.describe(name, this.table(name));
  }

  async dropTable(name: string): Promise<void> {
    await this.enter();
    this.table(name);
    this.tables.delete(name);
  }

  /** Exactly-once: a retried request id gets the first outcome. */
  private once(opts: WriteOptions, write: () => Seq): Seq {
    const id = `${opts.requestId.clientId}:${opts.requestId.n}`;
    const prior = this.outcomes.get(id);
    if (prior instanceof TesseraError) throw prior;
    if (prior !== undefined) return prior;
    try {
      const seq = write();
      this.outcomes.set(id, seq);
      return seq;
    } catch (e) {
      if (e instanceof TesseraError) this.outcomes.set(id, e);
      throw e;
    }
  }

  private check(cur: Item | undefined, opts: WriteOptions): void {
    const c = opts.condition;
    if (c.kind === 'ifMatch' && (cur === undefined || !bytesEqual(cur.seq, c.seq)))
      throw new TesseraError('CONDITION_FAILED', 'If-Match did not hold');
    if (c.kind === 'ifNoneMatch' && cur !== undefined)
      throw new TesseraError('CONDITION_FAILED', 'the key exists');
  }

  async put(table: string, key: Uint8Array, value: Uint8Array, opts: WriteOptions): Promise<Seq> {
    await this.enter();
    const t = this.table(table);
    return this.once(opts, () => {
      this.check(t.rows.get(hexKey(key)), opts);
      const seq = this.nextSeq();
      t.rows.set(hexKey(key), { key: new Uint8Array(key), value: new Uint8Array(value), seq });
      return seq;
    });
  }

  async get(table: string, key: Uint8Array): Promise<Item | null> {
    await this.enter();
    const row = this.table(table).rows.get(hexKey(key));
    return row === undefined ? null : { value: row.value, seq: row.seq };
  }

  async delete(table: string, key: Uint8Array, opts: WriteOptions): Promise<Seq> {
    await this.enter();
    const t = this.table(table);
    return this.once(opts, () => {
      const cur = t.rows.get(hexKey(key));
      this.check(cur, opts);
      if (cur === undefined) throw new TesseraError('KEY_NOT_FOUND', 'no such key');
      t.rows.delete(hexKey(key));
      return this.nextSeq();
    });
  }

  async scan(table: string, range: ScanRange): Promise<ScanPage> {
    await this.enter();
    const rows = [...this.table(table).rows.values()]
      .filter(
        (r) =>
          compareBytes(r.key, range.start) >= 0 && (range.end === null || compareBytes(r.key, range.end) < 0),
      )
      .sort((a, b) => compareBytes(a.key, b.key));
    const items = rows.slice(0, range.limit).map((r) => ({ key: r.key, value: r.value, seq: r.seq }));
    const next = rows.length > range.limit ? (rows[range.limit]?.key ?? null) : null;
    return { items, next };
  }

  async cluster(): Promise<ClusterView> {
    await this.enter();
    const n = (i: number) => nodeId(i);
    return {
      metadata: { leader: n(2), members: [n(1), n(2), n(3)] },
      nodes: [
        ...[1, 2, 3].map((i) => ({
          id: n(i),
          role: 'metadata' as const,
          addr: `127.0.0.1:${7100 + i}`,
          pid: 1000 + i,
          state: 'up' as const,
          heartbeatAgeMs: 120,
        })),
        ...[11, 12, 13].map((i) => ({
          id: n(i),
          role: 'storage' as const,
          addr: `127.0.0.1:${7200 + i}`,
          pid: 2000 + i,
          state: 'up' as const,
          heartbeatAgeMs: 250,
        })),
        {
          id: n(14),
          role: 'storage',
          addr: '127.0.0.1:7214',
          pid: null,
          state: 'down',
          heartbeatAgeMs: 9000,
        },
        {
          id: n(15),
          role: 'storage',
          addr: '127.0.0.1:7215',
          pid: 2015,
          state: 'spare',
          heartbeatAgeMs: 300,
        },
      ],
      groups: [
        { id: groupId(1), members: [n(11), n(12), n(13)], leader: n(12), term: 7 },
        { id: groupId(2), members: [n(11), n(13), n(14)], leader: null, term: 3 },
      ],
      tables: [...this.tables.entries()].map(([name, t]) => this.describe(name, t)),
    };
  }

  async createToken(record: TokenRecord): Promise<void> {
    this.tokens.set(record.id, { ...record });
  }

  async listTokens(): Promise<TokenRecord[]> {
    return [...this.tokens.values()].map((t) => ({ ...t }));
  }

  async revokeToken(id: string): Promise<void> {
    if (!this.tokens.delete(id)) throw new TesseraError('TOKEN_NOT_FOUND', `no token ${id}`);
  }

  async verifyToken(hash: string): Promise<TokenRecord | null> {
    for (const t of this.tokens.values()) if (t.hash === hash) return { ...t };
    return null;
  }

  async backupMetadata(): Promise<Uint8Array> {
    const tables = [...this.tables.entries()].map(([name, t]) => ({ name, engine: t.engine }));
    return new Uint8Array(
      Buffer.from(JSON.stringify({ version: 1, tables, tokens: [...this.tokens.values()] })),
    );
  }

  async restoreMetadata(backup: Uint8Array): Promise<void> {
    let v: { version?: unknown; tables?: { name: string; engine: Engine }[]; tokens?: TokenRecord[] };
    try {
      v = JSON.parse(Buffer.from(backup).toString('utf8'));
    } catch {
      throw new TesseraError('BAD_REQUEST', 'not a metadata backup');
    }
    if (v.version !== 1 || !Array.isArray(v.tables) || !Array.isArray(v.tokens))
      throw new TesseraError('BAD_REQUEST', 'not a metadata backup (version 1)');
    this.tables.clear();
    for (const t of v.tables) this.tables.set(t.name, { engine: t.engine, rows: new Map() });
    this.tokens.clear();
    for (const t of v.tokens) this.tokens.set(t.id, t);
  }

  async health(): Promise<Health> {
    return this.healthState;
  }

  /** Everything stored, as comparable text: to check that a failed request changed nothing. */
  dump(): string {
    const tables = [...this.tables.entries()].map(([name, t]) => [
      name,
      t.engine,
      [...t.rows.values()].map((r) => [hexKey(r.key), hexKey(r.value), hexKey(r.seq)]).sort(),
    ]);
    return JSON.stringify({ tables, tokens: [...this.tokens.keys()].sort() });
  }
}
