/**
 * Tables dropped in a group, so that commands for them that are still in the log (replayed, or
 * proposed before the drop reached the request manager) write nothing. Table ids are never reused.
 * Persisted (version 1) as group meta records of the group's meta instance:
 *   't' | table u32  ->  1 | drop index u64
 */
import { TesseraError } from '../lib/errors.js';
import type { LogIndex, TableId } from '../lib/ids.js';
import { limits } from '../lib/limits.js';
import { assert } from '../lib/assert.js';
import type { MetaRecord, MetaWrite } from '../engine/types.js';

export const droppedTag = 0x74; // 't'

export class DroppedTables {
  private readonly dropped = new Map<TableId, number>();

  get size(): number {
    return this.dropped.size;
  }

  /** True if the table was dropped by an entry before `index`. */
  isDropped(table: TableId, index: LogIndex): boolean {
    const at = this.dropped.get(table);
    return at !== undefined && at < index;
  }

  record(table: TableId, index: LogIndex): MetaWrite {
    assert(this.dropped.size < limits.catalogTablesMax, 'too many dropped tables');
    const prev = this.dropped.get(table);
    this.dropped.set(table, prev === undefined ? index : Math.min(prev, index));
    const key = new Uint8Array(5);
    key[0] = droppedTag;
    new DataView(key.buffer).setUint32(1, table);
    const value = new Uint8Array(9);
    value[0] = 1;
    new DataView(value.buffer).setBigUint64(1, BigInt(this.dropped.get(table) as number));
    return { key, value };
  }

  load(records: readonly MetaRecord[]): void {
    for (const r of records) {
      if (r.key[0] !== droppedTag || r.key.length !== 5) continue;
      if (r.value.length !== 9 || r.value[0] !== 1)
        throw new TesseraError('CORRUPTION', 'dropped table record');
      const table = new DataView(r.key.buffer, r.key.byteOffset, 5).getUint32(1) as TableId;
      const index = Number(new DataView(r.value.buffer, r.value.byteOffset, 9).getBigUint64(1));
      const prev = this.dropped.get(table);
      this.dropped.set(table, prev === undefined ? index : Math.min(prev, index));
    }
  }

  toRecords(): MetaRecord[] {
    const out: MetaRecord[] = [];
    for (const [table, index] of this.dropped) {
      const w = new DroppedTables();
      const rec = w.record(table, index as LogIndex);
      out.push({ key: rec.key, value: rec.value as Uint8Array });
    }
    return out;
  }
}
