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
  RecordType,
  SEGMENT_HEADER_BYTES,
  scanEntryAt,
  segmentFileName,
  u64At,
} from './format.js';
import { GroupLog } from './group.js';
import type { LogIo } from './io.js';

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
  offset: number,
  length: number,
  segment: number,
): boolean {
  const g = groupLog(groups, buf.readUInt32BE(offset + 12));
  return g.applyEntry(u64At(buf, offset + 24), segment, offset, length, u64At(buf, offset + 16));
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

/** Scans one segment; returns where it stopped and why (undefined reason = clean end). */
function scanSegment(
  buf: Buffer,
  segment: number,
  groups: Map<number, GroupLog>,
  recordBytesMax: number,
): { end: number; reason: string | undefined; records: number } {
  const h = checkSegmentHeader(buf, segment);
  if (h !== 'ok') return { end: 0, reason: `segment header ${h}`, records: 0 };
  let offset = SEGMENT_HEADER_BYTES;
  let records = 0;
  for (;;) {
    const length = scanEntryAt(buf, offset, recordBytesMax);
    if (length > 0) {
      if (!applyEntryAt(groups, buf, offset, length, segment)) {
        return { end: offset, reason: 'record breaks the log order', records };
      }
      offset += length;
      records++;
      continue;
    }
    const d = decodeRecord(buf, offset, recordBytesMax);
    if (!d.ok) {
      if (d.reason === 'end') return { end: offset, reason: undefined, records };
      if (d.reason === 'unknown-type') {
        throw new TesseraError(
          'CORRUPTION',
          `log segment ${segment} offset ${offset}: ${d.detail} (written by a newer version?)`,
        );
      }
      return { end: offset, reason: d.detail, records };
    }
    if (!applyRecord(groups, d.record, segment)) {
      return { end: offset, reason: 'record breaks the log order', records };
    }
    offset += d.record.length;
    records++;
  }
}

export async function recoverLog(io: LogIo, dir: string, recordBytesMax: number): Promise<RecoveredLog> {
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
    const buf = await io.readFile(file);
    const scan = scanSegment(buf, segment, groups, recordBytesMax);
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
