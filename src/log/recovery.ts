/**
 * Recovery: scan the segments in order, rebuild every group's state, stop at the first torn or
 * corrupt record, cut the file there and drop every later segment. Never hands back a bad record.
 */
import path from 'node:path';
import { TesseraError } from '../lib/errors.js';
import {
  checkSegmentHeader,
  type DecodedRecord,
  decodeGroupState,
  decodeRecord,
  parseSegmentFileName,
  RECORD_HEADER_BYTES,
  RecordType,
  SEGMENT_HEADER_BYTES,
  scanEntryAt,
  segmentFileName,
  u64At,
} from './format.js';
import { GroupLog } from './group.js';
import type { LogIo } from './io.js';
import type { KeptEntries } from './retain.js';

/** Bytes of a segment read at a time by recovery's scan (the default; tests use tiny windows). */
export const scanWindowBytes = 4 * 1024 * 1024;

export interface RecoveredLog {
  groups: Map<number, GroupLog>;
  /** Surviving segments, oldest first; the last one is where appends continue. */
  segments: number[];
  /** Valid length of the last segment. */
  tailBytes: number;
  /** What recovery cut off, for logging and tests. */
  cut: { segment: number; offset: number; reason: string } | undefined;
  records: number;
}

/** Applies one valid record to the group states; false if it breaks the log's rules (corrupt). */
export function applyRecord(groups: Map<number, GroupLog>, r: DecodedRecord, segment: number): boolean {
  if (r.type === RecordType.GroupDrop) {
    groups.delete(r.group);
    return true;
  }
  const g = groupLog(groups, r.group);
  switch (r.type) {
    case RecordType.Entry:
      return g.applyEntry(r.index, segment, r.offset, r.length, r.term);
    case RecordType.HardState:
      if (r.payload.length !== 4) return false;
      g.applyHardState({ term: r.term, vote: r.payload.readUInt32BE(0), commit: r.index });
      return true;
    case RecordType.Snapshot:
      g.applySnapshot({ index: r.index, term: r.term });
      return true;
    case RecordType.GroupState: {
      const s = decodeGroupState(r.payload);
      if (!s) return false;
      g.applyGroupState(r.index, r.term, s.hard, s.snap);
      return true;
    }
  }
}

function groupLog(groups: Map<number, GroupLog>, group: number): GroupLog {
  let g = groups.get(group);
  if (!g) {
    g = new GroupLog(group);
    groups.set(group, g);
  }
  return g;
}

/** applyRecord for an Entry record checked by scanEntryAt (the same rule, no record object). */
function applyEntryAt(
  groups: Map<number, GroupLog>,
  buf: Buffer,
  at: number,
  fileOffset: number,
  length: number,
  segment: number,
): boolean {
  const g = groupLog(groups, buf.readUInt32BE(at + 12));
  return g.applyEntry(u64At(buf, at + 24), segment, fileOffset, length, u64At(buf, at + 16));
}

async function listSegments(io: LogIo, dir: string): Promise<number[]> {
  const names = await io.readdir(dir);
  const segs: number[] = [];
  for (const n of names) {
    const s = parseSegmentFileName(n);
    if (s !== undefined) segs.push(s);
  }
  return segs.sort((a, b) => a - b);
}

/** Where a segment's scan stopped and why (undefined reason = clean end), and the records it took. */
interface SegmentScan {
  end: number;
  reason: string | undefined;
  records: number;
}

/**
 * Scans the records of `buf` from `offset`; `base` is buf[0]'s file offset (the group index keeps
 * file offsets). Stops at the first record that is not whole and valid in `buf`: `at` is where
 * (in buf), `reason` why (undefined: the buffer ends there).
 */
function scanRecords(
  buf: Buffer,
  base: number,
  offset: number,
  segment: number,
  groups: Map<number, GroupLog>,
  recordBytesMax: number,
  keep: KeptEntries | undefined,
): { at: number; reason: string | undefined; records: number } {
  let records = 0;
  for (;;) {
    const length = scanEntryAt(buf, offset, recordBytesMax);
    if (length > 0) {
      if (!applyEntryAt(groups, buf, offset, base + offset, length, segment)) {
        return { at: offset, reason: 'record breaks the log order', records };
      }
      keep?.entry(
        buf.readUInt32BE(offset + 12),
        u64At(buf, offset + 24),
        buf,
        offset,
        segment,
        base + offset,
      );
      offset += length;
      records++;
      continue;
    }
    const d = decodeRecord(buf, offset, recordBytesMax);
    if (!d.ok) {
      if (d.reason === 'end') return { at: offset, reason: undefined, records };
      if (d.reason === 'unknown-type') {
        throw new TesseraError(
          'CORRUPTION',
          `log segment ${segment} offset ${base + offset}: ${d.detail} (written by a newer version?)`,
        );
      }
      return { at: offset, reason: d.detail, records };
    }
    if (!applyRecord(groups, { ...d.record, offset: base + offset }, segment)) {
      return { at: offset, reason: 'record breaks the log order', records };
    }
    offset += d.record.length;
    records++;
  }
}

/**
 * The bytes the record at `at` needs in `buf` to be judged, if it runs past the end of `buf` (a
 * header, or the length it declares, when that is a possible length); 0 when it is judged as is.
 */
function bytesWanted(buf: Buffer, at: number, recordBytesMax: number): number {
  const left = buf.length - at;
  if (left < RECORD_HEADER_BYTES) return RECORD_HEADER_BYTES;
  const length = buf.readUInt32BE(at + 4);
  return length > left && length <= recordBytesMax ? length : 0;
}

/**
 * Scans one segment file in windows of `windowBytes`, reading the next window (thread pool) while
 * this one is scanned. A record that straddles windows is copied alone into a buffer of its own
 * (the windows are not joined: that would copy every byte once more), scanned there, and the scan
 * goes on in the last window after it. Never holds more than two windows and a record, whatever
 * the segment's size.
 */
async function scanSegment(
  io: LogIo,
  file: string,
  segment: number,
  groups: Map<number, GroupLog>,
  recordBytesMax: number,
  windowBytes: number,
  keep: KeptEntries | undefined,
): Promise<SegmentScan> {
  const fd = await io.openForAppend(file, false);
  // The read in flight (the bytes after the last window read), and below, how many bytes it asked for.
  let next: Promise<Buffer> | undefined;
  try {
    let buf = await io.read(fd, windowBytes, 0);
    const h = checkSegmentHeader(buf, segment);
    if (h !== 'ok') return { end: 0, reason: `segment header ${h}`, records: 0 };
    let base = 0;
    let offset = SEGMENT_HEADER_BYTES;
    let records = 0;
    let asked = windowBytes;
    next = buf.length < asked ? undefined : io.read(fd, asked, asked);
    for (;;) {
      const scan = scanRecords(buf, base, offset, segment, groups, recordBytesMax, keep);
      records += scan.records;
      // A clean end (reason undefined) is only ever at the end of buf, which wants a header more.
      let want = bytesWanted(buf, scan.at, recordBytesMax);
      if (next === undefined || want === 0) {
        return { end: base + scan.at, reason: scan.reason, records };
      }
      // The record at scan.at runs into the next window: read on until its `want` bytes are here
      // (first its header, then the length the header declares; a record larger than a window
      // in one read), or the file ends (the record is then judged on what there is).
      const at = base + scan.at;
      const parts = [buf.subarray(scan.at)];
      let bytes = parts[0]!.length;
      let readTo = base + buf.length;
      let record: Buffer;
      for (;;) {
        while (bytes < want && next !== undefined) {
          const more: Buffer = await next;
          parts.push(more);
          bytes += more.length;
          readTo += more.length;
          const eof = more.length < asked;
          asked = Math.max(windowBytes, want - bytes);
          next = eof ? undefined : io.read(fd, asked, readTo);
        }
        record = Buffer.concat(parts, Math.min(want, bytes));
        const wanted = bytesWanted(record, 0, recordBytesMax);
        if (wanted === 0 || bytes < want) break;
        want = wanted;
      }
      const r = scanRecords(record, at, 0, segment, groups, recordBytesMax, keep);
      records += r.records;
      if (r.at < record.length) return { end: at + r.at, reason: r.reason, records };
      // On in the last window read, after the record.
      buf = parts[parts.length - 1]!;
      base = readTo - buf.length;
      offset = at + record.length - base;
    }
  } finally {
    await next?.catch(() => undefined); // a scan that stops early leaves a read in flight
    await io.close(fd);
  }
}

export async function recoverLog(
  io: LogIo,
  dir: string,
  recordBytesMax: number,
  windowBytes: number = scanWindowBytes,
  keep?: KeptEntries,
): Promise<RecoveredLog> {
  await io.mkdirp(dir);
  const all = await listSegments(io, dir);
  const groups = new Map<number, GroupLog>();
  const segments: number[] = [];
  let tailBytes = 0;
  let records = 0;
  let cut: RecoveredLog['cut'];
  for (let i = 0; i < all.length; i++) {
    const segment = all[i]!;
    const file = path.join(dir, segmentFileName(segment));
    const scan = await scanSegment(io, file, segment, groups, recordBytesMax, windowBytes, keep);
    records += scan.records;
    if (scan.reason === undefined) {
      segments.push(segment);
      tailBytes = scan.end;
      continue;
    }
    cut = { segment, offset: scan.end, reason: scan.reason };
    await cutAt(io, dir, segment, scan.end, all.slice(i + 1));
    if (scan.end > 0) {
      segments.push(segment);
      tailBytes = scan.end;
    }
    break;
  }
  return { groups, segments, tailBytes, cut, records };
}

/** Truncates `segment` at `offset` (deleting it if 0) and deletes the later segments. */
async function cutAt(
  io: LogIo,
  dir: string,
  segment: number,
  offset: number,
  later: number[],
): Promise<void> {
  for (const s of later.reverse()) await io.unlink(path.join(dir, segmentFileName(s)));
  const file = path.join(dir, segmentFileName(segment));
  if (offset === 0) {
    await io.unlink(file);
  } else {
    const fd = await io.openForAppend(file, false);
    try {
      await io.ftruncate(fd, offset);
      await io.fdatasync(fd);
    } finally {
      await io.close(fd);
    }
  }
  await io.fsyncDir(dir);
}
