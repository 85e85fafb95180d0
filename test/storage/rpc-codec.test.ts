/**
 * The kv.put / kv.delete payloads (src/storage/rpc.ts): the request manager's field-array encoders
 * decode to exactly the request given, and malformed payloads are BAD_REQUEST, never a crash.
 */
import { describe, expect, it } from 'vitest';
import { isTesseraError } from '../../src/lib/errors.js';
import { groupId, shardId } from '../../src/lib/ids.js';
import { makeSeq } from '../../src/sequencer/seq.js';
import {
  decodeKvDelete,
  decodeKvPut,
  encodeKvDelete,
  encodeKvDeleteAt,
  encodeKvPut,
  encodeKvPutAt,
  packPayload,
  type RpcCondition,
} from '../../src/storage/rpc.js';

const target = { group: groupId(7), shard: shardId(70), epoch: 3, catalogVersion: 41, deadlineMs: 2500 };
const request = { client: (1n << 63n) + 5n, number: 123_456 };
const conditions: RpcCondition[] = [
  { type: 'none' },
  { type: 'ifNoneMatch' },
  { type: 'ifMatch', seq: makeSeq(9n, 1, 2) },
];

describe('kv.put / kv.delete payloads', () => {
  it('round-trip every field, both encoders', () => {
    for (const condition of conditions) {
      const key = Uint8Array.of(0, 255, 1);
      const value = new Uint8Array(300).fill(7);
      const put = { ...target, key, value, condition, request };
      expect(decodeKvPut(encodeKvPutAt(target, key, value, condition, request))).toEqual(put);
      expect(decodeKvPut(encodeKvPut(put))).toEqual(put);
      const del = { ...target, key, condition, request };
      expect(decodeKvDelete(encodeKvDeleteAt(target, key, condition, request))).toEqual(del);
      expect(decodeKvDelete(encodeKvDelete(del))).toEqual(del);
    }
  });

  it('refuses malformed payloads with BAD_REQUEST', () => {
    const good = encodeKvPutAt(target, Uint8Array.of(1), Uint8Array.of(2), { type: 'none' }, request);
    const bad = [
      good.subarray(0, good.length - 3), // truncated
      packPayload([7, 70, 3, 41, 2500, new Uint8Array(0), Uint8Array.of(2), 0, request.client, 1]), // empty key
      packPayload([7, 70, 3, 41, 2500, Uint8Array.of(1), Uint8Array.of(2), 0, 0n, 1]), // client id 0
      packPayload([7, 70, 3, 41, 2500, Uint8Array.of(1)]), // fields missing
    ];
    for (const p of bad) {
      let err: unknown;
      try {
        decodeKvPut(p);
      } catch (e) {
        err = e;
      }
      expect(isTesseraError(err, 'BAD_REQUEST')).toBe(true);
    }
  });
});
