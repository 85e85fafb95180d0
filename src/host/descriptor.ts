/**
 * Group descriptors, format version 1: `dir/groups/<group>.json`, one per hosted group, written
 * atomically (temp file, fsync, rename, fsync of the directory). They hold what the shared log
 * cannot: the election mode and the snapshot point with its membership and highest seq.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import type { ElectionMode, Membership, SnapshotMeta } from '../consensus/types.js';
import { fsFailure } from '../lib/disk.js';
import { TesseraError } from '../lib/errors.js';
import { type GroupId, groupId, logIndex, nodeId, term } from '../lib/ids.js';
import { seqFromHex, seqToHex, ZERO_SEQ } from '../sequencer/index.js';

export const DESCRIPTOR_VERSION = 1;

export interface GroupDescriptor {
  readonly group: GroupId;
  readonly electionMode: ElectionMode;
  /** The snapshot / compaction point (index 0 with the initial membership for a new group). */
  readonly snapshot: SnapshotMeta;
  /** Written before a snapshot install starts; the snapshot point once the install is durable. */
  readonly installing: SnapshotMeta | null;
}

interface MetaJson {
  index: number;
  term: number;
  voters: number[];
  learners: number[];
  highestSeq: string;
}

export function initialSnapshot(membership: Membership): SnapshotMeta {
  return { index: logIndex(0), term: term(0), membership, highestSeq: ZERO_SEQ };
}

function metaToJson(m: SnapshotMeta): MetaJson {
  return {
    index: m.index,
    term: m.term,
    voters: [...m.membership.voters],
    learners: [...m.membership.learners],
    highestSeq: seqToHex(m.highestSeq),
  };
}

function metaFromJson(j: MetaJson): SnapshotMeta {
  return {
    index: logIndex(j.index),
    term: term(j.term),
    membership: { voters: j.voters.map(nodeId), learners: j.learners.map(nodeId) },
    highestSeq: seqFromHex(j.highestSeq),
  };
}

function isMetaJson(j: unknown): j is MetaJson {
  if (typeof j !== 'object' || j === null) return false;
  const m = j as Record<string, unknown>;
  const ids = (v: unknown): boolean =>
    Array.isArray(v) && v.every((x) => Number.isInteger(x) && x > 0 && x <= 0xffff_ffff);
  return (
    Number.isSafeInteger(m.index) &&
    (m.index as number) >= 0 &&
    Number.isSafeInteger(m.term) &&
    (m.term as number) >= 0 &&
    ids(m.voters) &&
    ids(m.learners) &&
    typeof m.highestSeq === 'string'
  );
}

export class Descriptors {
  readonly dir: string;
  /** The last write or removal of each group's file: they run one at a time, in call order. */
  private readonly queued = new Map<GroupId, Promise<void>>();

  constructor(hostDir: string) {
    this.dir = path.join(hostDir, 'groups');
  }

  async init(): Promise<void> {
    await fs.mkdir(this.dir, { recursive: true });
  }

  private file(g: GroupId): string {
    return path.join(this.dir, `${g}.json`);
  }

  async list(): Promise<GroupId[]> {
    const names = await fs.readdir(this.dir);
    const out: GroupId[] = [];
    for (const n of names) {
      const m = /^(\d{1,10})\.json$/.exec(n);
      if (m) out.push(groupId(Number(m[1])));
    }
    return out.sort((a, b) => a - b);
  }

  async read(g: GroupId): Promise<GroupDescriptor | undefined> {
    let text: string;
    try {
      text = await fs.readFile(this.file(g), 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
    const bad = (why: string) => new TesseraError('CORRUPTION', `group descriptor ${g}: ${why}`);
    let j: Record<string, unknown>;
    try {
      j = JSON.parse(text) as Record<string, unknown>;
    } catch {
      throw bad('not JSON');
    }
    if (j.version !== DESCRIPTOR_VERSION) throw bad(`unknown version ${String(j.version)}`);
    if (j.group !== g) throw bad('group mismatch');
    if (j.electionMode !== 'self' && j.electionMode !== 'directed') throw bad('bad election mode');
    if (!isMetaJson(j.snapshot)) throw bad('bad snapshot');
    if (j.installing !== null && !isMetaJson(j.installing)) throw bad('bad installing');
    return {
      group: g,
      electionMode: j.electionMode,
      snapshot: metaFromJson(j.snapshot),
      installing: j.installing === null ? null : metaFromJson(j.installing as MetaJson),
    };
  }

  /**
   * Writes run one at a time per group, in call order (a checkpoint's compaction and a snapshot
   * install may overlap): they share the temp file, and the last call's content must win.
   */
  write(d: GroupDescriptor): Promise<void> {
    return this.serial(d.group, async () => {
      try {
        await this.writeNow(d);
      } catch (e) {
        throw fsFailure(e, `writing group descriptor ${d.group}`); // DISK_FULL, not a crash
      }
    });
  }

  remove(g: GroupId): Promise<void> {
    return this.serial(g, async () => {
      await fs.rm(this.file(g), { force: true });
      await this.syncDir();
    });
  }

  private async serial(g: GroupId, f: () => Promise<void>): Promise<void> {
    const p = (this.queued.get(g) ?? Promise.resolve()).then(f, f);
    this.queued.set(g, p);
    try {
      await p;
    } finally {
      if (this.queued.get(g) === p) this.queued.delete(g);
    }
  }

  private async writeNow(d: GroupDescriptor): Promise<void> {
    const body = JSON.stringify({
      version: DESCRIPTOR_VERSION,
      group: d.group,
      electionMode: d.electionMode,
      snapshot: metaToJson(d.snapshot),
      installing: d.installing === null ? null : metaToJson(d.installing),
    });
    const tmp = `${this.file(d.group)}.tmp`;
    const fh = await fs.open(tmp, 'w');
    try {
      await fh.writeFile(body);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await fs.rename(tmp, this.file(d.group));
    await this.syncDir();
  }

  private async syncDir(): Promise<void> {
    const fh = await fs.open(this.dir, 'r');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
  }
}
