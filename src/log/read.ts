/**
 * The log's read path: entries of one group by index, read in spans of one segment and checked
 * (header, CRC, group, index, term) on the way; either as LogEntry objects (readEntries) or as byte
 * ranges of the buffers read (readPayloads, replay's bulk path). See log.ts.
 */
import { TesseraError } from '../lib/errors.js';
import type { LogIndex, Term } from '../lib/ids.js';
import { entryEndAt, RECORD_HEADER_BYTES } from './format.js';
import type { GroupLog } from './group.js';
import type { LogIo } from './io.js';
import type { LogEntry, PayloadRun } from './types.js';

/** What a read needs of the log: its I/O, open segment files and record size limit. */
export interface SegmentReader {
  readonly io: LogIo;
  readonly fds: ReadonlyMap<number, number>;
  readonly recordBytesMax: number;
}

export async function readEntryRange(
  r: SegmentReader,
  g: GroupLog,
  lo: number,
  hi: number,
  bytesMax: number,
): Promise<LogEntry[]> {
  const out: LogEntry[] = [];
  await readSpans(r, g, lo, hi, bytesMax, (buf, base, i, j) => {
    for (let k = i; k <= j; k++) {
      const at = g.offsetOf(k) - base;
      const term = g.termOf(k);
      const end = checkedEnd(r, buf, at, g, k, term);
      out.push({
        index: k as LogIndex,
        term: term as Term,
        payload: buf.subarray(at + RECORD_HEADER_BYTES, end),
      });
    }
  });
  return out;
}

export async function readPayloadRuns(
  r: SegmentReader,
  g: GroupLog,
  lo: number,
  hi: number,
  bytesMax: number,
): Promise<PayloadRun[]> {
  const runs: PayloadRun[] = [];
  await readSpans(r, g, lo, hi, bytesMax, (buf, base, i, j) => {
    const starts = new Uint32Array(j - i + 1);
    const ends = new Uint32Array(j - i + 1);
    for (let k = i; k <= j; k++) {
      const at = g.offsetOf(k) - base;
      starts[k - i] = at + RECORD_HEADER_BYTES;
      ends[k - i] = checkedEnd(r, buf, at, g, k, g.termOf(k));
    }
    runs.push({ first: i as LogIndex, buf, starts, ends });
  });
  return runs;
}

function checkedEnd(
  r: SegmentReader,
  buf: Buffer,
  at: number,
  g: GroupLog,
  index: number,
  term: number,
): number {
  const end = entryEndAt(buf, at, r.recordBytesMax, g.group, index, term);
  if (end < 0) throw new TesseraError('CORRUPTION', `log entry ${g.group}/${index} failed its check on read`);
  return end;
}

/**
 * Reads entries lo..hi (at most bytesMax bytes, at least one) in spans of one segment and at most
 * a few MiB; `visit` gets each span's buffer, its file offset and its entries i..j.
 */
async function readSpans(
  r: SegmentReader,
  g: GroupLog,
  lo: number,
  hi: number,
  bytesMax: number,
  visit: (buf: Buffer, base: number, i: number, j: number) => void,
): Promise<void> {
  let total = 0;
  let i = lo;
  const spanMax = Math.max(4 * 1024 * 1024, r.recordBytesMax);
  while (i <= hi && (total < bytesMax || i === lo)) {
    const segment = g.segmentOf(i);
    const start = g.offsetOf(i);
    let j = i;
    let end = start + g.lengthOf(i);
    let spanBytes = g.lengthOf(i);
    while (j < hi) {
      const nextEnd = g.offsetOf(j + 1) + g.lengthOf(j + 1);
      if (g.segmentOf(j + 1) !== segment || nextEnd - start > spanMax) break;
      if (total + end - start >= bytesMax) break;
      j++;
      end = Math.max(end, nextEnd);
      spanBytes += g.lengthOf(j);
    }
    const buf = await r.io.read(r.fds.get(segment)!, end - start, start);
    visit(buf, start, i, j);
    total += spanBytes;
    i = j + 1;
  }
}
