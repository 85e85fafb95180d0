import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isTesseraError } from '../../src/lib/errors.js';
import {
  encodeFrame,
  type Frame,
  FrameDecoder,
  FrameType,
  frameHeaderBytes,
  writeFrameHeader,
} from '../../src/transport/frame.js';

const types = Object.values(FrameType);

const frameArb = fc.record({
  type: fc.constantFrom(...types),
  kind: fc.integer({ min: 0, max: 0xffff }),
  id: fc.integer({ min: 0, max: 0xffff_ffff }),
  payload: fc.uint8Array({ maxLength: 300 }),
});

function decodeAll(chunks: Buffer[], max = 1 << 20): Frame[] {
  const out: Frame[] = [];
  const d = new FrameDecoder(max, (f) => out.push({ ...f, payload: Buffer.from(f.payload) }));
  for (const c of chunks) d.push(c);
  expect(d.bufferedBytes).toBe(0);
  return out;
}

function norm(fs: Array<Omit<Frame, 'flags'>>): unknown[] {
  return fs.map((f) => ({
    type: f.type,
    kind: f.kind,
    id: f.id,
    payload: Buffer.from(f.payload).toString('hex'),
  }));
}

describe('frame codec v1', () => {
  it('round-trips any sequence of frames, split at every byte boundary', () => {
    fc.assert(
      fc.property(fc.array(frameArb, { minLength: 1, maxLength: 4 }), (frames) => {
        const stream = Buffer.concat(frames.map((f) => encodeFrame(f)));
        const want = norm(frames);
        expect(norm(decodeAll([stream]))).toEqual(want);
        for (let i = 0; i <= stream.length; i++) {
          expect(norm(decodeAll([stream.subarray(0, i), stream.subarray(i)]))).toEqual(want);
        }
      }),
      { numRuns: 60 },
    );
  });

  it('decodes a stream fed one byte at a time', () => {
    const frames = [
      { type: FrameType.request, kind: 7, id: 1, payload: Buffer.from('hello') },
      { type: FrameType.message, kind: 9, id: 0, payload: Buffer.alloc(0) },
      { type: FrameType.response, kind: 7, id: 1, payload: Buffer.alloc(1000, 0xab) },
    ];
    const stream = Buffer.concat(frames.map((f) => encodeFrame(f)));
    const chunks = [...stream].map((b) => Buffer.from([b]));
    expect(norm(decodeAll(chunks))).toEqual(norm(frames));
  });

  it('delivers a frame that arrived whole as a view of the read chunk (zero copy)', () => {
    const chunk = encodeFrame({ type: FrameType.message, kind: 1, id: 0, payload: Buffer.from('abc') });
    let got: Frame | null = null;
    new FrameDecoder(100, (f) => (got = f)).push(chunk);
    expect(got).not.toBeNull();
    const payload = (got as unknown as Frame).payload;
    expect(payload.buffer).toBe(chunk.buffer);
    expect(payload.byteOffset).toBe(chunk.byteOffset + frameHeaderBytes);
  });

  it('refuses an oversized frame from its header alone', () => {
    const h = Buffer.alloc(frameHeaderBytes);
    writeFrameHeader(h, 0, FrameType.message, 0, 1, 0, Buffer.alloc(0));
    h.writeUInt32BE(1_000_000, 0);
    const d = new FrameDecoder(1000, () => expect.unreachable());
    expect(() => d.push(h)).toThrowError(expect.objectContaining({ code: 'FRAME_TOO_LARGE' }));
  });

  it('refuses a frame whose payload, header or type was altered', () => {
    const good = encodeFrame({ type: FrameType.message, kind: 1, id: 5, payload: Buffer.from('payload') });
    for (let i = 0; i < good.length; i++) {
      if (i < 4) continue; // the length field: a changed length is a different (incomplete) frame
      const bad = Buffer.from(good);
      bad[i] = (bad[i] as number) ^ 0x10;
      let error: unknown = null;
      try {
        new FrameDecoder(100, () => expect.unreachable(`byte ${i} altered but accepted`)).push(bad);
      } catch (e) {
        error = e;
      }
      expect(isTesseraError(error, 'CORRUPTION')).toBe(true);
    }
  });
});
