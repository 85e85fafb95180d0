/**
 * Request de-duplication: per group, the recent request ids of each client with their first outcome,
 * so a retried request is answered from the table instead of being applied twice. Pure, bounded:
 * at most `idsPerClientMax` ids per client (the lowest numbers go first, and the client's floor
 * rises to them: a retry at or below the floor answers OUTCOME_UNKNOWN, never runs again) and at most
 * `clientsMax` clients (the least recently used goes first). An evicted client keeps only its floor,
 * raised to the highest number it used (at most `forgottenClientsMax` such clients, least recently
 * used beyond): a late retry of it answers OUTCOME_UNKNOWN instead of running a second time.
 *
 * Persistence: as group meta records of the engine instance that applied the command (`home`),
 * in the same atomic batch as its writes. `record` only changes the table in memory and marks what
 * changed; `takeEdits` turns the marks into meta writes, once per applied batch (a page of 64 ids
 * is written once per batch, not a record per request and a delete per eviction):
 *   'e' | client u64 | page u64    ->  1 | n u8 | n x (slot u8 | len u8 | outcome): the ids
 *                                      page * 64 + slot of this home (no ids: the record is deleted)
 *   'c' | client u64               ->  1 | floor u64 | last applied index u64
 *   outcome: 1 | kind u8 (0 ok, 1 CONDITION_FAILED, 2 KEY_NOT_FOUND, 3 TABLE_NOT_FOUND,
 *            4 OUTCOME_UNKNOWN) | seq 16?
 * Earlier versions wrote one record per id ('d' | client u64 | number u64 -> outcome): those are
 * still loaded, and deleted when their id is evicted.
 * Loading merges the records of every instance (union of ids, max of floors and indexes).
 */
import { assert } from '../lib/assert.js';
import { TesseraError } from '../lib/errors.js';
import type { LogIndex, Seq } from '../lib/ids.js';
import { limits } from '../lib/limits.js';
import type { EngineKind, MetaRecord, MetaWrite } from '../engine/types.js';
import type { RequestId } from './command.js';
import type { FailureCode, Outcome } from './decide.js';

/** A meta write and the engine instance it belongs to. */
export interface MetaEdit {
  readonly home: EngineKind;
  readonly write: MetaWrite;
}

interface Remembered {
  readonly outcome: Outcome;
  readonly home: EngineKind;
  /** Loaded from a per-id record of an earlier version: deleted when the id goes. */
  readonly legacy?: true;
}

interface ClientState {
  floor: number;
  lastIndex: number;
  readonly ids: Map<number, Remembered>;
  /** The numbers of `ids` as a binary min-heap: the lowest goes first in O(log n), not O(n). */
  heap: number[];
  readonly homes: Set<EngineKind>;
}

/** An evicted client: only its floor is kept (its 'c' record, without 'd' records). */
interface ForgottenClient {
  readonly floor: number;
  readonly lastIndex: number;
  readonly homes: ReadonlySet<EngineKind>;
}

function heapPush(h: number[], n: number): void {
  let i = h.length;
  h.push(n);
  while (i > 0) {
    const up = (i - 1) >> 1;
    if (h[up]! <= n) break;
    h[i] = h[up]!;
    i = up;
  }
  h[i] = n;
}

function heapPop(h: number[]): number {
  assert(h.length > 0, 'dedup heap empty');
  const top = h[0]!;
  const last = h.pop()!;
  const size = h.length;
  if (size === 0) return top;
  let i = 0;
  for (;;) {
    const l = 2 * i + 1;
    if (l >= size) break;
    const r = l + 1;
    const c = r < size && h[r]! < h[l]! ? r : l;
    if (h[c]! >= last) break;
    h[i] = h[c]!;
    i = c;
  }
  h[i] = last;
  return top;
}

const newClient = (): ClientState => ({ floor: 0, lastIndex: 0, ids: new Map(), heap: [], homes: new Set() });

export const dedupTagId = 0x64; // 'd' (earlier versions: one record per id)
export const dedupTagClient = 0x63; // 'c'
export const dedupTagPage = 0x65; // 'e'
const version = 1;
/** Ids per page record: numbers page * pageIds .. page * pageIds + pageIds - 1. */
const pageIds = 64;
const pageOf = (n: number): number => Math.floor(n / pageIds);
const failureCodes: readonly FailureCode[] = [
  'CONDITION_FAILED',
  'KEY_NOT_FOUND',
  'TABLE_NOT_FOUND',
  'OUTCOME_UNKNOWN',
];
const forgotten: Outcome = { ok: false, error: 'OUTCOME_UNKNOWN' };

function bad(what: string): never {
  throw new TesseraError('CORRUPTION', `dedup record: ${what}`);
}

export function encodeOutcome(o: Outcome): Uint8Array {
  const seq = o.ok ? o.seq : o.currentSeq;
  const out = new Uint8Array(2 + (seq === undefined ? 0 : 16));
  out[0] = version;
  out[1] = o.ok ? 0 : failureCodes.indexOf(o.error) + 1;
  if (seq !== undefined) out.set(seq, 2);
  return out;
}

export function decodeOutcome(b: Uint8Array): Outcome {
  if (b[0] !== version || (b.length !== 2 && b.length !== 18)) bad('outcome format');
  const kind = b[1] as number;
  const seq = b.length === 18 ? (b.slice(2) as Seq) : undefined;
  if (kind === 0) return seq === undefined ? bad('ok without seq') : { ok: true, seq };
  const error = failureCodes[kind - 1] ?? bad(`outcome kind ${kind}`);
  return seq === undefined ? { ok: false, error } : { ok: false, error, currentSeq: seq };
}

/** tag | client u64 | n u64: an id record (earlier versions) or a page record. */
function clientNumberKey(tag: number, client: bigint, n: number): Uint8Array {
  const k = new Uint8Array(17);
  const v = new DataView(k.buffer);
  k[0] = tag;
  v.setBigUint64(1, client);
  v.setBigUint64(9, BigInt(n));
  return k;
}

const idKey = (client: bigint, n: number): Uint8Array => clientNumberKey(dedupTagId, client, n);
const pageKey = (client: bigint, page: number): Uint8Array => clientNumberKey(dedupTagPage, client, page);

function clientKey(client: bigint): Uint8Array {
  const k = new Uint8Array(9);
  k[0] = dedupTagClient;
  new DataView(k.buffer).setBigUint64(1, client);
  return k;
}

/** The page's ids of one home (of any with `home` undefined) in slot order; undefined if none. */
function pageValue(
  c: ClientState | undefined,
  page: number,
  home: EngineKind | undefined,
): Uint8Array | undefined {
  if (c === undefined) return undefined;
  const slots: number[] = [];
  const outcomes: Uint8Array[] = [];
  let bytes = 2;
  for (let slot = 0; slot < pageIds; slot++) {
    const r = c.ids.get(page * pageIds + slot);
    if (r === undefined || (home !== undefined && r.home !== home)) continue;
    const o = encodeOutcome(r.outcome);
    slots.push(slot);
    outcomes.push(o);
    bytes += 2 + o.length;
  }
  if (slots.length === 0) return undefined;
  const out = new Uint8Array(bytes);
  out[0] = version;
  out[1] = slots.length;
  let at = 2;
  slots.forEach((slot, i) => {
    const o = outcomes[i] as Uint8Array;
    out[at] = slot;
    out[at + 1] = o.length;
    out.set(o, at + 2);
    at += 2 + o.length;
  });
  return out;
}

function clientValue(c: { floor: number; lastIndex: number }): Uint8Array {
  const out = new Uint8Array(17);
  const v = new DataView(out.buffer);
  out[0] = version;
  v.setBigUint64(1, BigInt(c.floor));
  v.setBigUint64(9, BigInt(c.lastIndex));
  return out;
}

/** What changed in one instance's records since its last takeEdits. */
interface Dirty {
  /** Per client, the pages to rewrite (or delete). */
  readonly pages: Map<bigint, Set<number>>;
  /** Clients whose 'c' record to rewrite (or delete). */
  readonly clients: Set<bigint>;
  /** Per-id records of an earlier version to delete. */
  readonly legacy: Uint8Array[];
}

export class DedupTable {
  private readonly clients = new Map<bigint, ClientState>();
  private readonly dirty = new Map<EngineKind, Dirty>();
  /** Evicted clients, least recently used first. */
  private readonly forgottenClients = new Map<bigint, ForgottenClient>();
  readonly idsPerClientMax: number;
  readonly clientsMax: number;
  readonly forgottenClientsMax: number;

  constructor(options: { idsPerClientMax?: number; clientsMax?: number; forgottenClientsMax?: number } = {}) {
    this.idsPerClientMax = options.idsPerClientMax ?? limits.requestIdsPerClientMax;
    this.clientsMax = options.clientsMax ?? limits.dedupClientsMax;
    this.forgottenClientsMax = options.forgottenClientsMax ?? limits.dedupForgottenClientsMax;
    assert(
      this.idsPerClientMax >= 1 && this.clientsMax >= 1 && this.forgottenClientsMax >= 0,
      'dedup bounds',
    );
  }

  get clientCount(): number {
    return this.clients.size;
  }

  get forgottenClientCount(): number {
    return this.forgottenClients.size;
  }

  /** The first outcome of a request already applied, OUTCOME_UNKNOWN if forgotten, else undefined. */
  lookup(req: RequestId): Outcome | undefined {
    if (req.client === 0n) return undefined;
    const c = this.clients.get(req.client);
    if (c === undefined) {
      const f = this.forgottenClients.get(req.client);
      return f !== undefined && req.number <= f.floor ? forgotten : undefined;
    }
    const seen = c.ids.get(req.number);
    if (seen !== undefined) return seen.outcome;
    return req.number <= c.floor ? forgotten : undefined;
  }

  /** Remembers a new request's outcome (in memory: takeEdits persists it). */
  record(req: RequestId, outcome: Outcome, index: LogIndex, home: EngineKind): void {
    if (req.client === 0n) return;
    assert(this.lookup(req) === undefined, 'request recorded twice');
    let c = this.clients.get(req.client);
    if (c === undefined) {
      c = newClient();
      const f = this.forgottenClients.get(req.client);
      if (f !== undefined) {
        // An evicted client is back: it keeps its floor.
        this.forgottenClients.delete(req.client);
        c.floor = f.floor;
        c.lastIndex = f.lastIndex;
        for (const h of f.homes) c.homes.add(h);
      }
    } else {
      this.clients.delete(req.client); // re-inserted below: Map order is least recently used first
    }
    this.clients.set(req.client, c);
    c.lastIndex = Math.max(c.lastIndex, index);
    c.ids.set(req.number, { outcome, home });
    heapPush(c.heap, req.number);
    this.markPage(home, req.client, req.number);
    if (c.ids.size > this.idsPerClientMax) this.evictOldest(req.client, c);
    c.homes.add(home);
    // Every instance the client used gets its record: the floor may have risen by an id kept in
    // another instance, and losing one instance's batch (a crash between them) must not lower it.
    this.markClient(req.client, c.homes);
    if (this.clients.size > this.clientsMax) this.evictClient();
  }

  /**
   * The meta writes that persist every change since the last call, for the instances `live` says
   * take writes now (the others keep theirs for a later call): a page record per changed page, a
   * client record per changed client, each with the table's state at the time of the call. The
   * caller writes them in the same batch as the writes of everything recorded so far.
   */
  takeEdits(live: (home: EngineKind) => boolean = () => true): MetaEdit[] {
    const edits: MetaEdit[] = [];
    for (const [home, d] of this.dirty) {
      if (!live(home)) continue;
      this.dirty.delete(home);
      for (const [client, pages] of d.pages) {
        const c = this.clients.get(client);
        for (const page of pages) {
          edits.push({ home, write: { key: pageKey(client, page), value: pageValue(c, page, home) } });
        }
      }
      for (const client of d.clients) {
        const state = this.clients.get(client) ?? this.forgottenClients.get(client);
        const value = state?.homes.has(home) ? clientValue(state) : undefined;
        edits.push({ home, write: { key: clientKey(client), value } });
      }
      for (const key of d.legacy) edits.push({ home, write: { key, value: undefined } });
    }
    return edits;
  }

  private dirtyOf(home: EngineKind): Dirty {
    let d = this.dirty.get(home);
    if (d === undefined) {
      d = { pages: new Map(), clients: new Set(), legacy: [] };
      this.dirty.set(home, d);
    }
    return d;
  }

  private markPage(home: EngineKind, client: bigint, n: number): void {
    const d = this.dirtyOf(home);
    let pages = d.pages.get(client);
    if (pages === undefined) {
      pages = new Set();
      d.pages.set(client, pages);
    }
    pages.add(pageOf(n));
  }

  /** The client's record changes in every instance it used. */
  private markClient(client: bigint, homes: ReadonlySet<EngineKind>): void {
    for (const h of homes) this.dirtyOf(h).clients.add(client);
  }

  /** An id leaves the table: its page (or its record of an earlier version) changes. */
  private forget(client: bigint, n: number, r: Remembered): void {
    this.markPage(r.home, client, n);
    if (r.legacy) this.dirtyOf(r.home).legacy.push(idKey(client, n));
  }

  /** The client's lowest id goes; its floor rises to it. */
  private evictOldest(client: bigint, c: ClientState): void {
    const oldest = heapPop(c.heap);
    const gone = c.ids.get(oldest) as Remembered;
    c.ids.delete(oldest);
    c.floor = Math.max(c.floor, oldest);
    this.forget(client, oldest, gone);
  }

  /** Evicts the least recently used client: its ids go, its floor rises to the highest of them. */
  private evictClient(): void {
    const [client, c] = this.clients.entries().next().value as [bigint, ClientState];
    this.clients.delete(client);
    let floor = c.floor;
    for (const [n, r] of c.ids) {
      floor = Math.max(floor, n);
      this.forget(client, n, r);
    }
    const f: ForgottenClient = { floor, lastIndex: c.lastIndex, homes: new Set(c.homes) };
    this.markClient(client, f.homes);
    this.forgottenClients.set(client, f);
    while (this.forgottenClients.size > this.forgottenClientsMax) this.dropForgotten();
  }

  private dropForgotten(): void {
    const [client, f] = this.forgottenClients.entries().next().value as [bigint, ForgottenClient];
    this.forgottenClients.delete(client);
    this.markClient(client, f.homes);
  }

  /** Merges the dedup records read from one instance's group meta (any other records are ignored). */
  load(home: EngineKind, records: readonly MetaRecord[]): void {
    for (const r of records) {
      if (r.key[0] === dedupTagClient && r.key.length === 9) this.loadClient(home, r);
      else if (r.key[0] === dedupTagPage && r.key.length === 17) this.loadPage(home, r);
      else if (r.key[0] === dedupTagId && r.key.length === 17) {
        const v = new DataView(r.key.buffer, r.key.byteOffset, r.key.byteLength);
        const c = this.client(v.getBigUint64(1));
        c.ids.set(Number(v.getBigUint64(9)), { outcome: decodeOutcome(r.value), home, legacy: true });
      }
    }
    // Least recently used first; then apply the bounds (a crash may have left extra records).
    // A client record without ids is an evicted client's floor.
    const sorted = [
      ...this.clients,
      ...[...this.forgottenClients].map(([k, f]) => [k, this.revive(f)] as const),
    ].sort((a, b) => a[1].lastIndex - b[1].lastIndex);
    this.clients.clear();
    this.forgottenClients.clear();
    for (const [k, c] of sorted) {
      if (c.ids.size > 0) this.clients.set(k, c);
      else this.forgottenClients.set(k, { floor: c.floor, lastIndex: c.lastIndex, homes: c.homes });
    }
    // What the bounds drop here is marked, so the next takeEdits deletes it from the instances.
    for (const [client, c] of this.clients) {
      c.heap = [];
      for (const n of c.ids.keys()) heapPush(c.heap, n);
      while (c.ids.size > this.idsPerClientMax) this.evictOldest(client, c);
    }
    while (this.clients.size > this.clientsMax) this.evictClient();
    while (this.forgottenClients.size > this.forgottenClientsMax) this.dropForgotten();
  }

  private revive(f: ForgottenClient): ClientState {
    const c = newClient();
    c.floor = f.floor;
    c.lastIndex = f.lastIndex;
    for (const h of f.homes) c.homes.add(h);
    return c;
  }

  private loadPage(home: EngineKind, r: MetaRecord): void {
    const kv = new DataView(r.key.buffer, r.key.byteOffset, r.key.byteLength);
    const client = kv.getBigUint64(1);
    const page = Number(kv.getBigUint64(9));
    const v = r.value;
    if (v[0] !== version || v.length < 2 || !Number.isSafeInteger(page * pageIds)) bad('page format');
    const c = this.client(client);
    const n = v[1] as number;
    let at = 2;
    for (let i = 0; i < n; i++) {
      if (at + 2 > v.length) bad('page truncated');
      const slot = v[at] as number;
      const len = v[at + 1] as number;
      if (slot >= pageIds || at + 2 + len > v.length) bad('page entry');
      c.ids.set(page * pageIds + slot, { outcome: decodeOutcome(v.subarray(at + 2, at + 2 + len)), home });
      at += 2 + len;
    }
    if (at !== v.length) bad('page trailing bytes');
    c.homes.add(home);
  }

  private loadClient(home: EngineKind, r: MetaRecord): void {
    if (r.value.length !== 17 || r.value[0] !== version) bad('client format');
    const kv = new DataView(r.key.buffer, r.key.byteOffset, r.key.byteLength);
    const vv = new DataView(r.value.buffer, r.value.byteOffset, r.value.byteLength);
    const c = this.client(kv.getBigUint64(1));
    c.floor = Math.max(c.floor, Number(vv.getBigUint64(1)));
    c.lastIndex = Math.max(c.lastIndex, Number(vv.getBigUint64(9)));
    c.homes.add(home);
  }

  private client(id: bigint): ClientState {
    let c = this.clients.get(id);
    if (c === undefined) {
      const f = this.forgottenClients.get(id);
      c = f === undefined ? newClient() : this.revive(f);
      this.forgottenClients.delete(id);
      this.clients.set(id, c);
    }
    return c;
  }

  /** All records, as they would be persisted (with every record in `home`): for in-memory snapshots. */
  toRecords(): MetaRecord[] {
    const out: MetaRecord[] = [];
    for (const [client, c] of this.clients) {
      out.push({ key: clientKey(client), value: clientValue(c) });
      const pages = new Set<number>();
      for (const n of c.ids.keys()) pages.add(pageOf(n));
      for (const page of pages) {
        out.push({ key: pageKey(client, page), value: pageValue(c, page, undefined) as Uint8Array });
      }
    }
    for (const [client, f] of this.forgottenClients)
      out.push({ key: clientKey(client), value: clientValue(f) });
    return out;
  }
}
