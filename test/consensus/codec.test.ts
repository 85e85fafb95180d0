import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  decodeEntry,
  decodeMembershipChange,
  decodeMessage,
  encodeEntry,
  encodeMembershipChange,
  encodeMessage,
  tryDecodeMessage,
} from '../../src/consensus/codec.js';
import type { Entry, Message } from '../../src/consensus/types.js';
import { isTesseraError } from '../../src/lib/errors.js';
import type { GroupId, LogIndex, NodeId, Seq, Term } from '../../src/lib/ids.js';
import { Prng } from '../../src/lib/prng.js';

const h = { group: 7 as GroupId, from: 1 as NodeId, to: 2 as NodeId, term: 9 as Term };
const seq = (n: number): Seq => {
  const s = new Uint8Array(16);
  s[7] = n;
  s[15] = 1;
  return s as Seq;
};
const entry = (index: number, kind: Entry['kind'], data: Uint8Array): Entry => ({
  index: index as LogIndex,
  term: 8 as Term,
  kind,
  seq: seq(index),
  data,
});

const samples: Message[] = [
  {
    ...h,
    type: 'append',
    prevIndex: 41 as LogIndex,
    prevTerm: 8 as Term,
    commit: 40 as LogIndex,
    entries: [
      entry(42, 'noop', new Uint8Array(0)),
      entry(43, 'command', new Uint8Array([1, 2, 3])),
      entry(44, 'config', encodeMembershipChange({ type: 'add-learner', node: 4 as NodeId })),
    ],
  },
  { ...h, type: 'append', prevIndex: 0 as LogIndex, prevTerm: 0 as Term, commit: 0 as LogIndex, entries: [] },
  { ...h, type: 'appendResp', reject: true, index: (2 ** 40) as LogIndex, hint: 3 as LogIndex },
  { ...h, type: 'heartbeat', commit: 12 as LogIndex, round: 77 },
  { ...h, type: 'heartbeatResp', round: Number.MAX_SAFE_INTEGER },
  { ...h, type: 'vote', pre: true, transfer: false, lastIndex: 5 as LogIndex, lastTerm: 4 as Term },
  { ...h, type: 'vote', pre: false, transfer: true, lastIndex: 5 as LogIndex, lastTerm: 4 as Term },
  { ...h, type: 'voteResp', pre: false, granted: true },
  {
    ...h,
    type: 'snapshot',
    meta: {
      index: 100 as LogIndex,
      term: 9 as Term,
      highestSeq: seq(3),
      membership: { voters: [1, 2, 3] as NodeId[], learners: [5] as NodeId[] },
    },
  },
  { ...h, type: 'timeoutNow' },
];

function expectCorruptionOrValid(bytes: Uint8Array): void {
  try {
    const m = decodeMessage(bytes);
    // A valid decode re-encodes to the same bytes (the format has one encoding).
    expect(encodeMessage(m)).toEqual(bytes);
  } catch (e) {
    if (!isTesseraError(e, 'CORRUPTION')) throw e;
  }
}

describe('consensus codec', () => {
  it('round-trips every message type', () => {
    for (const m of samples) {
      const bytes = encodeMessage(m);
      expect(bytes[0]).toBe(1);
      expect(decodeMessage(bytes)).toEqual(m);
    }
  });

  it('round-trips entries and membership changes', () => {
    const e = entry(5, 'command', new Uint8Array([9, 9]));
    expect(decodeEntry(encodeEntry(e))).toEqual(e);
    for (const type of ['add-learner', 'promote', 'remove'] as const) {
      expect(decodeMembershipChange(encodeMembershipChange({ type, node: 12 as NodeId }))).toEqual({
        type,
        node: 12,
      });
    }
  });

  it('rejects specific malformations with CORRUPTION', () => {
    const good = encodeMessage(samples[0]!);
    const bad = (mutate: (b: Uint8Array) => Uint8Array): void => {
      const r = tryDecodeMessage(mutate(good.slice()));
      expect(r.ok).toBe(false);
      if (!r.ok) expect(r.error.code).toBe('CORRUPTION');
    };
    const set =
      (...pairs: [number, number][]) =>
      (b: Uint8Array): Uint8Array => {
        for (const [i, v] of pairs) b[i] = v;
        return b;
      };
    bad(set([0, 2])); // version
    bad(set([1, 99])); // type
    bad((b) => b.subarray(0, b.length - 1)); // truncated
    bad((b) => new Uint8Array([...b, 0])); // trailing
    bad(set([6, 0], [7, 0], [8, 0], [9, 0])); // from = 0
    bad(set([14, 0xff])); // term beyond 2^53
    bad(set([22 + 28 + 7, 99])); // entries not contiguous
    expect(tryDecodeMessage(new Uint8Array(0)).ok).toBe(false);
  });

  it('fuzz: random garbage, truncations and bit flips never throw anything but CORRUPTION', () => {
    const prng = new Prng(42);
    const encoded = samples.map(encodeMessage);
    for (let i = 0; i < 3000; i++) {
      const kind = prng.int(0, 2);
      let bytes: Uint8Array;
      if (kind === 0) {
        bytes = new Uint8Array(prng.int(0, 200));
        for (let k = 0; k < bytes.length; k++) bytes[k] = prng.int(0, 255);
        if (bytes.length > 1 && prng.chance(0.5)) bytes[0] = 1;
      } else if (kind === 1) {
        const src = prng.pick(encoded);
        bytes = src.slice(0, prng.int(0, src.length));
      } else {
        bytes = prng.pick(encoded).slice();
        for (let f = prng.int(1, 4); f > 0; f--) bytes[prng.int(0, bytes.length - 1)]! ^= 1 << prng.int(0, 7);
      }
      expectCorruptionOrValid(bytes);
    }
  });
});

describe('consensus codec properties', () => {
  const u32 = fc.integer({ min: 1, max: 0xffff_ffff });
  const u53 = fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER });
  const termArb = fc.integer({ min: 1, max: 2 ** 40 });
  const seqArb = fc.uint8Array({ minLength: 16, maxLength: 16 }).map((b) => {
    b[0] = b[0]! & 0x7f;
    return b as Seq;
  });
  const header = fc.record({
    group: fc.integer({ min: 0, max: 0xffff_ffff }),
    from: u32,
    to: u32,
    term: termArb,
  });
  const appendArb = fc
    .tuple(
      header,
      u53,
      fc.array(fc.tuple(seqArb, fc.uint8Array({ maxLength: 64 }), fc.constantFrom('noop', 'command')), {
        maxLength: 8,
      }),
    )
    .map(([h, prev, es]) => {
      const prevIndex = Math.min(prev, Number.MAX_SAFE_INTEGER - 10);
      return {
        ...h,
        type: 'append',
        prevIndex,
        prevTerm: h.term,
        commit: prevIndex,
        entries: es.map(([s, data, kind], k) => ({
          index: prevIndex + 1 + k,
          term: h.term,
          kind,
          seq: s,
          data,
        })),
      } as unknown as Message;
    });
  const voteArb = fc
    .tuple(header, fc.boolean(), fc.boolean(), u53)
    .map(
      ([h, pre, transfer, lastIndex]) =>
        ({ ...h, type: 'vote', pre, transfer, lastIndex, lastTerm: h.term }) as unknown as Message,
    );
  const respArb = fc
    .tuple(header, fc.boolean(), u53, u53)
    .map(
      ([h, reject, index, hint]) => ({ ...h, type: 'appendResp', reject, index, hint }) as unknown as Message,
    );

  it('decode(encode(m)) == m for arbitrary appends, votes and append answers', () => {
    fc.assert(
      fc.property(fc.oneof(appendArb, voteArb, respArb), (m) => {
        expect(decodeMessage(encodeMessage(m))).toEqual(m);
      }),
      { numRuns: 300 },
    );
  });
});
