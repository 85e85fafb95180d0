/**
 * A tiny key-value state machine for tests and examples: a Map in memory, made durable only by
 * checkpoint() (a JSON file written atomically), so a restart replays the log from the checkpoint.
 * Command = UTF-8 `key=value`; the result of a command is the previous value ('' if none).
 */
import fs from 'node:fs/promises';
import type { Entry, SnapshotMeta } from '../consensus/types.js';
import { assert } from '../lib/assert.js';
import { TesseraError } from '../lib/errors.js';
import { type LogIndex, logIndex } from '../lib/ids.js';
import { seqFromHex, seqToHex, ZERO_SEQ } from '../sequencer/index.js';
import type { AppliedPosition, StateMachine } from './types.js';

const enc = new TextEncoder();
const dec = new TextDecoder();

export function memoryCommand(key: string, value: string): Uint8Array {
  assert(!key.includes('='), 'key must not contain =');
  return enc.encode(`${key}=${value}`);
}

export function decodeMemoryCommand(data: Uint8Array): [string, string] {
  const s = dec.decode(data);
  const k = s.indexOf('=');
  if (k < 0) throw new TesseraError('BAD_REQUEST', 'memory command without =');
  return [s.slice(0, k), s.slice(k + 1)];
}

interface FileState {
  version: 1;
  index: number;
  seq: string;
  data: [string, string][];
}

export class MemoryStateMachine implements StateMachine<string> {
  readonly data = new Map<string, string>();
  applied: AppliedPosition = { index: logIndex(0), seq: ZERO_SEQ };
  destroyed = false;
  /** Entries applied in this process (for tests). */
  appliedCount = 0;

  private constructor(
    private readonly file: string | undefined,
    private readonly chunkBytes: number,
  ) {}

  /** Opens the state machine, loading its last checkpoint from `file` if given. */
  static async open(file?: string, chunkBytes = 64 * 1024): Promise<MemoryStateMachine> {
    const sm = new MemoryStateMachine(file, chunkBytes);
    if (file !== undefined) {
      try {
        sm.load(JSON.parse(await fs.readFile(file, 'utf8')) as FileState);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      }
    }
    return sm;
  }

  private load(s: FileState): void {
    assert(s.version === 1, 'memory state machine file version');
    this.data.clear();
    for (const [k, v] of s.data) this.data.set(k, v);
    this.applied = { index: logIndex(s.index), seq: seqFromHex(s.seq) };
  }

  private dump(): FileState {
    return { version: 1, index: this.applied.index, seq: seqToHex(this.applied.seq), data: [...this.data] };
  }

  async appliedPosition(): Promise<AppliedPosition> {
    return this.applied;
  }

  async apply(entries: readonly Entry[]): Promise<readonly string[]> {
    const out: string[] = [];
    for (const e of entries) {
      if (e.index <= this.applied.index) {
        out.push('');
        continue;
      }
      assert(e.index === this.applied.index + 1, `memory sm: gap before ${e.index}`);
      let result = '';
      if (e.kind === 'command') {
        const [k, v] = decodeMemoryCommand(e.data);
        result = this.data.get(k) ?? '';
        this.data.set(k, v);
      }
      this.applied = { index: e.index, seq: e.seq };
      this.appliedCount++;
      out.push(result);
    }
    return out;
  }

  async checkpoint(): Promise<AppliedPosition> {
    const pos = this.applied;
    if (this.file !== undefined) await this.writeFile(this.dump());
    return pos;
  }

  async snapshot(meta: SnapshotMeta): Promise<AsyncIterable<Uint8Array>> {
    assert(meta.index === this.applied.index, `snapshot at ${meta.index}, applied ${this.applied.index}`);
    const pairs = [...this.data];
    const chunkBytes = this.chunkBytes;
    return (async function* () {
      let cur: [string, string][] = [];
      let bytes = 0;
      for (const p of pairs) {
        cur.push(p);
        bytes += p[0].length + p[1].length + 8;
        if (bytes >= chunkBytes) {
          yield enc.encode(JSON.stringify(cur));
          cur = [];
          bytes = 0;
        }
      }
      if (cur.length > 0) yield enc.encode(JSON.stringify(cur));
    })();
  }

  async install(meta: SnapshotMeta, chunks: AsyncIterable<Uint8Array>): Promise<void> {
    const data: [string, string][] = [];
    for await (const c of chunks) data.push(...(JSON.parse(dec.decode(c)) as [string, string][]));
    const s: FileState = { version: 1, index: meta.index, seq: seqToHex(meta.highestSeq), data };
    if (this.file !== undefined) await this.writeFile(s);
    this.load(s);
  }

  async close(): Promise<void> {}

  async destroy(): Promise<void> {
    this.destroyed = true;
    this.data.clear();
    this.applied = { index: 0 as LogIndex, seq: ZERO_SEQ };
    if (this.file !== undefined) await fs.rm(this.file, { force: true });
  }

  private async writeFile(s: FileState): Promise<void> {
    const file = this.file!;
    const tmp = `${file}.tmp`;
    const fh = await fs.open(tmp, 'w');
    try {
      await fh.writeFile(JSON.stringify(s));
      await fh.sync();
    } finally {
      await fh.close();
    }
    await fs.rename(tmp, file);
  }
}
