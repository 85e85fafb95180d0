import { describe, expect, it } from 'vitest';
import { crc32 } from '../../src/lib/bytes.js';
import { decodeRecord, encodeRecord, RecordType } from '../../src/log/format.js';

describe('log record header', () => {
  it('round-trips terms and indexes over 32 bits up to the largest safe integer', () => {
    for (const n of [0, 1, 0xffff_ffff, 0x1_0000_0000, 2 ** 40 + 5, Number.MAX_SAFE_INTEGER]) {
      const buf = encodeRecord({ type: RecordType.Entry, group: 7, term: n, index: n }, Buffer.from('p'));
      const d = decodeRecord(buf, 0, 1024);
      expect(d.ok && [d.record.term, d.record.index, d.record.group]).toEqual([n, n, 7]);
    }
  });

  it('refuses a u64 above the largest safe integer as corrupt', () => {
    const buf = encodeRecord({ type: RecordType.Entry, group: 1, term: 1, index: 1 }, Buffer.from('p'));
    buf.writeUInt32BE(0x0020_0000, 24); // index high half: 2^53
    buf.writeUInt32BE(0, 28);
    buf.writeUInt32BE(crc32(buf.subarray(4)), 0);
    const d = decodeRecord(buf, 0, 1024);
    expect(d.ok ? 'ok' : d.reason).toBe('corrupt');
  });
});
