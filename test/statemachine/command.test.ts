import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { keyspaceId } from '../../src/engine/types.js';
import { isTesseraError } from '../../src/lib/errors.js';
import { tableId } from '../../src/lib/ids.js';
import { makeSeq } from '../../src/sequencer/seq.js';
import {
  type Command,
  type Condition,
  decodeCommand,
  encodeCommand,
} from '../../src/statemachine/command.js';

const requestArb = fc.record({
  client: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
  number: fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
});
const conditionArb: fc.Arbitrary<Condition> = fc.oneof(
  fc.constant({ type: 'none' as const }),
  fc.constant({ type: 'ifNoneMatch' as const }),
  fc
    .bigInt({ min: 0n, max: (1n << 63n) - 1n })
    .map((t) => ({ type: 'ifMatch' as const, seq: makeSeq(t, 3, 4) })),
);
const base = {
  request: requestArb,
  table: fc.integer({ min: 0, max: 0xffff_ffff }).map(tableId),
  engine: fc.constantFrom('btree' as const, 'lsm' as const),
  keyspace: fc.integer({ min: 0, max: 0xffff_fffe }).map(keyspaceId),
  key: fc.uint8Array({ minLength: 1, maxLength: 1024 }),
  condition: conditionArb,
};
const commandArb: fc.Arbitrary<Command> = fc.oneof(
  fc.record({ type: fc.constant('put' as const), ...base, value: fc.uint8Array({ maxLength: 300 }) }),
  fc.record({ type: fc.constant('delete' as const), ...base }),
  fc.record({ type: fc.constant('noop' as const), request: requestArb }),
  fc.record({
    type: fc.constant('dropTable' as const),
    request: requestArb,
    table: base.table,
    shards: fc.array(fc.record({ engine: base.engine, keyspace: base.keyspace }), { maxLength: 5 }),
  }),
);

describe('command codec v1', () => {
  it('round-trips every command', () => {
    fc.assert(
      fc.property(commandArb, (c) => {
        expect(decodeCommand(encodeCommand(c))).toEqual(c);
      }),
      { numRuns: 300 },
    );
  });

  it('is compact: a put of a 16-byte key and 100-byte value costs 34 bytes of framing', () => {
    const c: Command = {
      type: 'put',
      request: { client: 1n, number: 1 },
      table: tableId(1),
      engine: 'lsm',
      keyspace: keyspaceId(1),
      key: new Uint8Array(16),
      value: new Uint8Array(100),
      condition: { type: 'none' },
    };
    expect(encodeCommand(c).length - 116).toBe(34);
  });

  it('refuses truncated, extended and unknown inputs with CORRUPTION', () => {
    fc.assert(
      fc.property(commandArb, fc.nat(), (c, cut) => {
        const bytes = encodeCommand(c);
        const refuses = (b: Uint8Array) => {
          try {
            decodeCommand(b);
            return false;
          } catch (e) {
            return isTesseraError(e, 'CORRUPTION');
          }
        };
        expect(refuses(bytes.subarray(0, cut % bytes.length))).toBe(true);
        expect(refuses(Uint8Array.of(...bytes, 0))).toBe(true);
        const v2 = Uint8Array.from(bytes);
        v2[0] = 2;
        expect(refuses(v2)).toBe(true);
        const t9 = Uint8Array.from(bytes);
        t9[1] = 9;
        expect(refuses(t9)).toBe(true);
      }),
      { numRuns: 200 },
    );
  });
});
