/**
 * Binary framing between cluster members, format version 1.
 *
 * Every frame is a 16-byte header followed by the payload:
 *
 *   offset size field
 *   0      4    payload length (u32 BE), not counting the header
 *   4      1    frame type (FrameType)
 *   5      1    flags (reserved, 0 in version 1; ignored on receipt)
 *   6      2    kind (u16 BE): the application message / RPC kind; 0xff00-0xffff belong to the transport
 *   8      4    id (u32 BE): request correlation id (0 for one-way messages)
 *   12     4    CRC-32 (zlib) of header bytes 0..12 followed by the payload
 *
 * Ownership: a decoded payload is a view (`subarray`) into the socket's read chunk whenever the whole
 * frame arrived in one chunk (zero copy), or a buffer of its own when the frame spanned chunks. The
 * receiver may keep it (Node never reuses a read chunk), but a small view pins the whole chunk: copy
 * it (lib/bytes copyBytes) before keeping it for long. Payloads handed to the sender are not copied
 * when large (see connection.ts), so the caller must not modify them after the send call.
 */
import { assert } from '../lib/assert.js';
import { crc32 } from '../lib/bytes.js';
import { TesseraError } from '../lib/errors.js';

export const frameHeaderBytes = 16;
export const frameKindTransportMin = 0xff00;

export const FrameType = {
  hello: 1,
  helloAck: 2,
  auth: 3,
  authOk: 4,
  reject: 5,
  message: 16,
  request: 17,
  response: 18,
  errorResponse: 19,
  ping: 20,
  pong: 21,
} as const;
export type FrameTypeName = keyof typeof FrameType;
export type FrameTypeCode = (typeof FrameType)[FrameTypeName];

const knownTypes: ReadonlySet<number> = new Set(Object.values(FrameType));

export interface Frame {
  type: FrameTypeCode;
  flags: number;
  kind: number;
  id: number;
  /** Aliases the read buffer when possible (see the file comment). */
  payload: Uint8Array;
}

function checkFields(type: number, flags: number, kind: number, id: number): void {
  assert(knownTypes.has(type), `unknown frame type ${type}`);
  assert(Number.isInteger(flags) && flags >= 0 && flags <= 0xff, `bad flags ${flags}`);
  assert(Number.isInteger(kind) && kind >= 0 && kind <= 0xffff, `bad kind ${kind}`);
  assert(Number.isInteger(id) && id >= 0 && id <= 0xffff_ffff, `bad id ${id}`);
}

/** Writes the 16-byte header for `payload` at `target[offset..offset+16)`, CRC included. */
export function writeFrameHeader(
  target: Buffer,
  offset: number,
  type: FrameTypeCode,
  flags: number,
  kind: number,
  id: number,
  payload: Uint8Array,
): void {
  checkFields(type, flags, kind, id);
  assert(offset + frameHeaderBytes <= target.length, 'header does not fit');
  target.writeUInt32BE(payload.length, offset);
  target.writeUInt8(type, offset + 4);
  target.writeUInt8(flags, offset + 5);
  target.writeUInt16BE(kind, offset + 6);
  target.writeUInt32BE(id, offset + 8);
  const crc = crc32(payload, crc32(target.subarray(offset, offset + 12)));
  target.writeUInt32BE(crc >>> 0, offset + 12);
}

/** One frame as a single new buffer (header + a copy of the payload). For handshakes and tests. */
export function encodeFrame(frame: Omit<Frame, 'flags'> & { flags?: number }): Buffer {
  const out = Buffer.allocUnsafe(frameHeaderBytes + frame.payload.length);
  writeFrameHeader(out, 0, frame.type, frame.flags ?? 0, frame.kind, frame.id, frame.payload);
  out.set(frame.payload, frameHeaderBytes);
  return out;
}

/**
 * Incremental decoder: push socket chunks in any split, get whole frames out in order. Throws a
 * TesseraError (FRAME_TOO_LARGE or CORRUPTION) on an oversized, unknown-type or bad-CRC frame; the
 * decoder is then unusable and the caller closes the connection.
 */
export class FrameDecoder {
  private readonly header = Buffer.alloc(frameHeaderBytes);
  private headerFilled = 0;
  private body: Buffer | null = null;
  private bodyFilled = 0;
  private failed = false;
  payloadBytesMax: number;

  constructor(
    payloadBytesMax: number,
    private readonly onFrame: (frame: Frame) => void,
  ) {
    assert(payloadBytesMax >= 0, 'payloadBytesMax must be >= 0');
    this.payloadBytesMax = payloadBytesMax;
  }

  push(chunk: Buffer): void {
    assert(!this.failed, 'push after a decode error');
    let pos = 0;
    while (pos < chunk.length) {
      if (this.headerFilled < frameHeaderBytes) {
        const take = Math.min(frameHeaderBytes - this.headerFilled, chunk.length - pos);
        // Fast path: a whole frame inside this chunk is delivered as a view, without copies.
        if (this.headerFilled === 0 && take === frameHeaderBytes) {
          const length = this.checkHeader(chunk.subarray(pos, pos + frameHeaderBytes));
          if (chunk.length - pos - frameHeaderBytes >= length) {
            const start = pos + frameHeaderBytes;
            this.finish(chunk.subarray(pos, start), chunk.subarray(start, start + length));
            pos = start + length;
            continue;
          }
        }
        chunk.copy(this.header, this.headerFilled, pos, pos + take);
        this.headerFilled += take;
        pos += take;
        if (this.headerFilled < frameHeaderBytes) return;
        const length = this.checkHeader(this.header);
        this.body = Buffer.allocUnsafe(length);
        this.bodyFilled = 0;
      }
      const body = this.body;
      assert(body !== null, 'body must exist after the header');
      const take = Math.min(body.length - this.bodyFilled, chunk.length - pos);
      chunk.copy(body, this.bodyFilled, pos, pos + take);
      this.bodyFilled += take;
      pos += take;
      if (this.bodyFilled === body.length) {
        this.body = null;
        this.headerFilled = 0;
        this.bodyFilled = 0;
        this.finish(this.header, body);
      }
    }
  }

  /** Bytes of a partial frame held (0 at a frame boundary). */
  get bufferedBytes(): number {
    return this.headerFilled + this.bodyFilled;
  }

  private checkHeader(header: Buffer): number {
    const length = header.readUInt32BE(0);
    const type = header.readUInt8(4);
    if (length > this.payloadBytesMax) {
      this.failed = true;
      throw new TesseraError('FRAME_TOO_LARGE', `frame payload of ${length} bytes > ${this.payloadBytesMax}`);
    }
    if (!knownTypes.has(type)) {
      this.failed = true;
      throw new TesseraError('CORRUPTION', `unknown frame type ${type}`);
    }
    return length;
  }

  private finish(header: Buffer, payload: Buffer): void {
    const crc = crc32(payload, crc32(header.subarray(0, 12))) >>> 0;
    if (crc !== header.readUInt32BE(12)) {
      this.failed = true;
      throw new TesseraError('CORRUPTION', 'frame CRC mismatch');
    }
    this.onFrame({
      type: header.readUInt8(4) as FrameTypeCode,
      flags: header.readUInt8(5),
      kind: header.readUInt16BE(6),
      id: header.readUInt32BE(8),
      payload,
    });
  }
}
