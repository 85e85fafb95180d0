/**
 * Binary codec of the consensus messages, version 1 (pure: Uint8Array / DataView, no Buffer).
 * Layout (big-endian): `u8 version | u8 type | u32 group | u32 from | u32 to | u64 term | body`.
 * Decoding validates everything and throws TesseraError('CORRUPTION') on malformed input, never
 * anything else. Decoded `data` fields are views into the input (no copy); seqs are copied.
 * See docs/consensus.md for the bodies.
 */
import { TesseraError } from '../lib/errors.js';
import type { GroupId, LogIndex, NodeId, Seq, Term } from '../lib/ids.js';
import { limits } from '../lib/limits.js';
import type { Entry, EntryKind, Membership, MembershipChange, Message, SnapshotMeta } from './types.js';

export const CODEC_VERSION = 1;
const HEADER_BYTES = 1 + 1 + 4 + 4 + 4 + 8;
const ENTRY_HEADER_BYTES = 8 + 8 + 1 + 16 + 4;
const SEQ_BYTES = 16;
const MEMBERS_MAX = 255;
const TWO32 = 0x1_0000_0000;

const typeCodes = {
  append: 1,
  appendResp: 2,
  heartbeat: 3,
  heartbeatResp: 4,
  vote: 5,
  voteResp: 6,
  snapshot: 7,
  timeoutNow: 8,
} as const satisfies Record<Message['type'], number>;
const typeNames = Object.fromEntries(Object.entries(typeCodes).map(([k, v]) => [v, k])) as Record<
  number,
  Message['type']
>;
const kindCodes: Record<EntryKind, number> = { noop: 1, command: 2, config: 3 };
const kindNames: Record<number, EntryKind> = { 1: 'noop', 2: 'command', 3: 'config' };

function corrupt(why: string): TesseraError {
  return new TesseraError('CORRUPTION', `bad consensus message: ${why}`);
}

// ---------------------------------------------------------------------------------------------
// Writer

class Writer {
  readonly buf: Uint8Array;
  private readonly v: DataView;
  o = 0;
  constructor(size: number) {
    this.buf = new Uint8Array(size);
    this.v = new DataView(this.buf.buffer);
  }
  u8(n: number): void {
    this.v.setUint8(this.o, n);
    this.o += 1;
  }
  u16(n: number): void {
    this.v.setUint16(this.o, n);
    this.o += 2;
  }
  u32(n: number): void {
    this.v.setUint32(this.o, n);
    this.o += 4;
  }
  u64(n: number): void {
    this.v.setUint32(this.o, Math.floor(n / TWO32));
    this.v.setUint32(this.o + 4, n >>> 0);
    this.o += 8;
  }
  bytes(b: Uint8Array): void {
    this.buf.set(b, this.o);
    this.o += b.length;
  }
}

// ---------------------------------------------------------------------------------------------
// Reader (every read is bounds-checked)

class Reader {
  private readonly v: DataView;
  o = 0;
  constructor(readonly buf: Uint8Array) {
    this.v = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }
  private need(n: number): void {
    if (this.o + n > this.buf.length) throw corrupt('truncated');
  }
  u8(): number {
    this.need(1);
    return this.v.getUint8(this.o++);
  }
  u16(): number {
    this.need(2);
    const n = this.v.getUint16(this.o);
    this.o += 2;
    return n;
  }
  u32(): number {
    this.need(4);
    const n = this.v.getUint32(this.o);
    this.o += 4;
    return n;
  }
  u64(): number {
    this.need(8);
    const hi = this.v.getUint32(this.o);
    const lo = this.v.getUint32(this.o + 4);
    this.o += 8;
    if (hi > 0x1f_ffff) throw corrupt('u64 beyond 2^53');
    return hi * TWO32 + lo;
  }
  view(n: number): Uint8Array {
    this.need(n);
    const b = this.buf.subarray(this.o, this.o + n);
    this.o += n;
    return b;
  }
  copy(n: number): Uint8Array {
    this.need(n);
    const b = this.buf.slice(this.o, this.o + n);
    this.o += n;
    return b;
  }
  end(): void {
    if (this.o !== this.buf.length) throw corrupt('trailing bytes');
  }
}

// ---------------------------------------------------------------------------------------------
// Sizes

function membershipBytes(m: Membership): number {
  return 2 + 4 * m.voters.length + 2 + 4 * m.learners.length;
}

function entriesBytes(entries: readonly Entry[]): number {
  let n = 0;
  for (const e of entries) n += ENTRY_HEADER_BYTES + e.data.length;
  return n;
}

function bodyBytes(m: Message): number {
  switch (m.type) {
    case 'append':
      return 8 + 8 + 8 + 4 + entriesBytes(m.entries);
    case 'appendResp':
      return 1 + 8 + 8;
    case 'heartbeat':
      return 8 + 8;
    case 'heartbeatResp':
      return 8;
    case 'vote':
      return 1 + 8 + 8;
    case 'voteResp':
      return 1;
    case 'snapshot':
      return 8 + 8 + SEQ_BYTES + membershipBytes(m.meta.membership);
    case 'timeoutNow':
      return 0;
  }
}

// ---------------------------------------------------------------------------------------------
// Encode

function writeEntry(w: Writer, e: Entry): void {
  w.u64(e.index);
  w.u64(e.term);
  w.u8(kindCodes[e.kind]);
  w.bytes(e.seq);
  w.u32(e.data.length);
  w.bytes(e.data);
}

function writeMembership(w: Writer, m: Membership): void {
  w.u16(m.voters.length);
  for (const id of m.voters) w.u32(id);
  w.u16(m.learners.length);
  for (const id of m.learners) w.u32(id);
}

function writeBody(w: Writer, m: Message): void {
  switch (m.type) {
    case 'append':
      w.u64(m.prevIndex);
      w.u64(m.prevTerm);
      w.u64(m.commit);
      w.u32(m.entries.length);
      for (const e of m.entries) writeEntry(w, e);
      return;
    case 'appendResp':
      w.u8(m.reject ? 1 : 0);
      w.u64(m.index);
      w.u64(m.hint);
      return;
    case 'heartbeat':
      w.u64(m.commit);
      w.u64(m.round);
      return;
    case 'heartbeatResp':
      w.u64(m.round);
      return;
    case 'vote':
      w.u8((m.pre ? 1 : 0) | (m.transfer ? 2 : 0));
      w.u64(m.lastIndex);
      w.u64(m.lastTerm);
      return;
    case 'voteResp':
      w.u8((m.pre ? 1 : 0) | (m.granted ? 2 : 0));
      return;
    case 'snapshot':
      w.u64(m.meta.index);
      w.u64(m.meta.term);
      w.bytes(m.meta.highestSeq);
      writeMembership(w, m.meta.membership);
      return;
    case 'timeoutNow':
      return;
  }
}

/** Encode one message (one allocation, sized exactly; the append batch is copied once). */
export function encodeMessage(m: Message): Uint8Array {
  const w = new Writer(HEADER_BYTES + bodyBytes(m));
  w.u8(CODEC_VERSION);
  w.u8(typeCodes[m.type]);
  w.u32(m.group);
  w.u32(m.from);
  w.u32(m.to);
  w.u64(m.term);
  writeBody(w, m);
  return w.buf;
}

// ---------------------------------------------------------------------------------------------
// Decode

function readSeq(r: Reader): Seq {
  const s = r.copy(SEQ_BYTES);
  if ((s[0]! & 0x80) !== 0) throw corrupt('seq top bit set');
  return s as Seq;
}

function readEntry(r: Reader, expectedIndex: number, maxTerm: number): Entry {
  const index = r.u64();
  const term = r.u64();
  if (index !== expectedIndex) throw corrupt('entries not contiguous');
  if (term > maxTerm || term === 0) throw corrupt('entry term out of range');
  const kind = kindNames[r.u8()];
  if (kind === undefined) throw corrupt('unknown entry kind');
  const seq = readSeq(r);
  const len = r.u32();
  if (len > limits.consensusEntryBytesMax) throw corrupt('entry too large');
  const data = r.view(len);
  if (kind === 'config') decodeMembershipChange(data);
  return { index: index as LogIndex, term: term as Term, kind, seq, data };
}

function readNodeList(r: Reader, seen: Set<number>): NodeId[] {
  const n = r.u16();
  if (n > MEMBERS_MAX) throw corrupt('too many members');
  const out: NodeId[] = [];
  for (let k = 0; k < n; k++) {
    const id = r.u32();
    if (id === 0 || seen.has(id)) throw corrupt('bad or duplicate member id');
    seen.add(id);
    out.push(id as NodeId);
  }
  return out;
}

function readMembership(r: Reader): Membership {
  const seen = new Set<number>();
  const voters = readNodeList(r, seen);
  const learners = readNodeList(r, seen);
  if (voters.length === 0) throw corrupt('membership without voters');
  return { voters, learners };
}

function readSnapshotMeta(r: Reader, maxTerm: number): SnapshotMeta {
  const index = r.u64();
  const term = r.u64();
  if (term > maxTerm) throw corrupt('snapshot term above the message term');
  const highestSeq = readSeq(r);
  const membership = readMembership(r);
  return { index: index as LogIndex, term: term as Term, highestSeq, membership };
}

function readBody(r: Reader, type: Message['type'], h: Header): Message {
  switch (type) {
    case 'append': {
      const prevIndex = r.u64();
      const prevTerm = r.u64();
      const commit = r.u64();
      const n = r.u32();
      if (prevTerm > h.term) throw corrupt('prevTerm above the message term');
      if (n > (r.buf.length - r.o) / ENTRY_HEADER_BYTES) throw corrupt('entry count beyond the message');
      const entries: Entry[] = new Array(n);
      for (let k = 0; k < n; k++) entries[k] = readEntry(r, prevIndex + 1 + k, h.term);
      return {
        ...h,
        type,
        prevIndex: prevIndex as LogIndex,
        prevTerm: prevTerm as Term,
        commit: commit as LogIndex,
        entries,
      };
    }
    case 'appendResp': {
      const reject = r.u8();
      if (reject > 1) throw corrupt('bad reject flag');
      return { ...h, type, reject: reject === 1, index: r.u64() as LogIndex, hint: r.u64() as LogIndex };
    }
    case 'heartbeat':
      return { ...h, type, commit: r.u64() as LogIndex, round: r.u64() };
    case 'heartbeatResp':
      return { ...h, type, round: r.u64() };
    case 'vote': {
      const f = r.u8();
      if (f > 3) throw corrupt('bad vote flags');
      const lastIndex = r.u64() as LogIndex;
      const lastTerm = r.u64() as Term;
      if (lastTerm > h.term) throw corrupt('lastTerm above the message term');
      return { ...h, type, pre: (f & 1) !== 0, transfer: (f & 2) !== 0, lastIndex, lastTerm };
    }
    case 'voteResp': {
      const f = r.u8();
      if (f > 3) throw corrupt('bad voteResp flags');
      return { ...h, type, pre: (f & 1) !== 0, granted: (f & 2) !== 0 };
    }
    case 'snapshot':
      return { ...h, type, meta: readSnapshotMeta(r, h.term) };
    case 'timeoutNow':
      return { ...h, type };
  }
}

interface Header {
  readonly group: GroupId;
  readonly from: NodeId;
  readonly to: NodeId;
  readonly term: Term;
}

/** Decode one message; throws TesseraError('CORRUPTION') on anything malformed. */
export function decodeMessage(bytes: Uint8Array): Message {
  if (!(bytes instanceof Uint8Array)) throw corrupt('not bytes');
  if (bytes.length > limits.frameBytesMax) throw corrupt('message too large');
  const r = new Reader(bytes);
  const version = r.u8();
  if (version !== CODEC_VERSION) throw corrupt(`unknown version ${version}`);
  const type = typeNames[r.u8()];
  if (type === undefined) throw corrupt('unknown message type');
  const group = r.u32() as GroupId;
  const from = r.u32() as NodeId;
  const to = r.u32() as NodeId;
  const term = r.u64() as Term;
  if (from === 0 || to === 0) throw corrupt('node id 0');
  const m = readBody(r, type, { group, from, to, term });
  r.end();
  return m;
}

/** Decode without throwing: the message, or the CORRUPTION error. */
export function tryDecodeMessage(
  bytes: Uint8Array,
): { ok: true; message: Message } | { ok: false; error: TesseraError } {
  try {
    return { ok: true, message: decodeMessage(bytes) };
  } catch (e) {
    if (e instanceof TesseraError) return { ok: false, error: e };
    return { ok: false, error: corrupt(String(e)) };
  }
}

// ---------------------------------------------------------------------------------------------
// Entries alone (for a log that stores them) and membership changes (the data of config entries)

export function encodeEntry(e: Entry): Uint8Array {
  const w = new Writer(1 + ENTRY_HEADER_BYTES + e.data.length);
  w.u8(CODEC_VERSION);
  writeEntry(w, e);
  return w.buf;
}

export function decodeEntry(bytes: Uint8Array): Entry {
  const r = new Reader(bytes);
  if (r.u8() !== CODEC_VERSION) throw corrupt('unknown entry version');
  const save = r.o;
  const index = r.u64();
  r.o = save;
  const e = readEntry(r, index, Number.MAX_SAFE_INTEGER);
  r.end();
  return e;
}

const changeCodes: Record<MembershipChange['type'], number> = { 'add-learner': 1, promote: 2, remove: 3 };
const changeNames: Record<number, MembershipChange['type']> = { 1: 'add-learner', 2: 'promote', 3: 'remove' };

export function encodeMembershipChange(c: MembershipChange): Uint8Array {
  const w = new Writer(6);
  w.u8(CODEC_VERSION);
  w.u8(changeCodes[c.type]);
  w.u32(c.node);
  return w.buf;
}

export function decodeMembershipChange(bytes: Uint8Array): MembershipChange {
  const r = new Reader(bytes);
  if (r.u8() !== CODEC_VERSION) throw corrupt('unknown membership change version');
  const type = changeNames[r.u8()];
  if (type === undefined) throw corrupt('unknown membership change');
  const node = r.u32();
  if (node === 0) throw corrupt('membership change of node 0');
  r.end();
  return { type, node: node as NodeId };
}
