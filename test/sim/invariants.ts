/**
 * Safety invariants checked as the simulation runs (after every step that could break them).
 * Each group has one checker that sees every replica's log writes, applies and role changes.
 * A broken invariant throws SimViolation, which ends the seed.
 */
import type { Entry } from '../../src/consensus/types.js';
import { crc32 } from '../../src/lib/bytes.js';
import type { GroupId, NodeId } from '../../src/lib/ids.js';
import { seqToHex } from '../../src/sequencer/index.js';
import type { ApplyResult, KvStateMachine } from './kv.js';

export class SimViolation extends Error {
  override name = 'SimViolation';
  constructor(
    readonly invariant: string,
    message: string,
  ) {
    super(`${invariant}: ${message}`);
  }
}

const textEncoder = new TextEncoder();

/** A compact identity of an entry: term, kind, seq and a checksum of the data. */
export function entryDigest(e: Entry): string {
  return `${e.term}/${e.kind}/${seqToHex(e.seq)}/${e.data.length}/${crc32(e.data)}`;
}

function stateDigest(sm: KvStateMachine): string {
  const text = sm.digest();
  return `${text.length}/${crc32(textEncoder.encode(text))}`;
}

/** The written log of one replica as the checker sees it (mirrors the core's log). */
export interface LogView {
  readonly node: NodeId;
  readonly snapIndex: number;
  readonly snapTerm: number;
  readonly snapSeq: string;
  /** Entries after the snapshot point, contiguous. */
  readonly entries: readonly Entry[];
}

function termAt(log: LogView, index: number): number | undefined {
  if (index === log.snapIndex) return log.snapTerm;
  return log.entries[index - log.snapIndex - 1]?.term;
}

export class GroupChecker {
  private readonly leaders = new Map<number, NodeId>();
  private readonly byIndexTerm = new Map<string, { digest: string; prevTerm: number | undefined }>();
  /**
   * Applied (hence committed) entries. `termBound`: the applier's term when it applied the entry;
   * the entry was committed in a term <= it, so every leader of a higher term must hold it.
   */
  private readonly committed = new Map<number, { term: number; digest: string; termBound: number }>();
  private readonly stateAt = new Map<number, { digest: string; node: NodeId }>();
  private readonly writesApplied = new Map<string, number>();
  private readonly tombstones = new Map<string, { index: number; seq: string }>();
  committedMax = 0;
  checks = 0;

  /**
   * `durableOn(index, term)`: how many voters hold that entry durably (in their synced log or under
   * their synced snapshot); `quorum`: a majority of voters.
   */
  constructor(
    readonly group: GroupId,
    private readonly durableOn: (index: number, term: number) => number,
    private readonly quorum: number,
  ) {}

  private fail(invariant: string, message: string): never {
    throw new SimViolation(invariant, `group ${this.group}: ${message}`);
  }

  /**
   * At most one leader per term; a new leader holds every entry committed in an earlier term
   * (a late leader of a stale term need not: it cannot commit anything).
   */
  onLeader(node: NodeId, term: number, log: LogView): void {
    this.checks++;
    const had = this.leaders.get(term);
    if (had !== undefined && had !== node)
      this.fail('one-leader-per-term', `nodes ${had} and ${node} lead term ${term}`);
    this.leaders.set(term, node);
    for (const [index, c] of this.committed) {
      if (index <= log.snapIndex || c.termBound >= term) continue;
      const t = termAt(log, index);
      if (t !== c.term) {
        this.fail(
          'committed-entry-lost',
          `new leader ${node} (term ${term}) has ${t === undefined ? 'no entry' : `term ${t}`} at committed index ${index} (term ${c.term})`,
        );
      }
    }
  }

  /**
   * Entries written to `log` (before they are added to it) starting at entries[0].index: checks
   * that no committed entry is overwritten, log matching, and increasing seqs.
   */
  onAppend(log: LogView, entries: readonly Entry[]): void {
    this.checks++;
    const first = entries[0];
    if (first === undefined) return;
    for (const old of log.entries) {
      if (old.index < first.index) continue;
      const c = this.committed.get(old.index);
      const repl = entries[old.index - first.index];
      if (c !== undefined && c.term === old.term && (repl === undefined || repl.term !== old.term)) {
        this.fail(
          'committed-entry-lost',
          `node ${log.node} overwrites committed index ${old.index} (term ${old.term})`,
        );
      }
    }
    let prevTerm = termAt(log, first.index - 1);
    let prevSeq = first.index - 1 === log.snapIndex ? log.snapSeq : seqHexAt(log, first.index - 1);
    for (const e of entries) {
      const seq = seqToHex(e.seq);
      if (prevSeq !== undefined && seq <= prevSeq) {
        this.fail(
          'seq-order',
          `node ${log.node}: entry ${e.index} (term ${e.term}) has seq ${seq} <= previous ${prevSeq}`,
        );
      }
      const key = `${e.index}:${e.term}`;
      const digest = entryDigest(e);
      const known = this.byIndexTerm.get(key);
      if (known === undefined) this.byIndexTerm.set(key, { digest, prevTerm });
      else {
        if (known.digest !== digest)
          this.fail('log-matching', `two different entries at index ${e.index} term ${e.term}`);
        if (known.prevTerm !== undefined && prevTerm !== undefined && known.prevTerm !== prevTerm) {
          this.fail(
            'log-matching',
            `entry ${e.index} term ${e.term} follows term ${prevTerm} on node ${log.node}, ${known.prevTerm} elsewhere`,
          );
        }
      }
      prevTerm = e.term;
      prevSeq = seq;
    }
  }

  /** An entry applied by a replica: committed entries never change; a request id writes once. */
  onApply(node: NodeId, nodeTerm: number, e: Entry, res: ApplyResult): void {
    this.checks++;
    const digest = entryDigest(e);
    const c = this.committed.get(e.index);
    if (c === undefined) {
      this.committed.set(e.index, { term: e.term, digest, termBound: nodeTerm });
      // Committed means durable on a majority: only then may anyone apply it (or answer a client).
      const copies = this.durableOn(e.index, e.term);
      if (copies < this.quorum) {
        this.fail(
          'commit-not-durable',
          `entry ${e.index} (term ${e.term}) applied by node ${node} is durable on ${copies} of the voters, quorum ${this.quorum}`,
        );
      }
      if (e.index > this.committedMax) this.committedMax = e.index;
    } else if (c.digest !== digest) {
      this.fail(
        'committed-entry-changed',
        `node ${node} applied ${digest} at index ${e.index}, others ${c.digest}`,
      );
    } else if (nodeTerm < c.termBound) c.termBound = nodeTerm;
    const cmd = res.command;
    if (cmd === null || !res.wrote) return;
    const id = `${cmd.client}:${cmd.req}`;
    const at = this.writesApplied.get(id);
    if (at === undefined) this.writesApplied.set(id, e.index);
    else if (at !== e.index) {
      this.fail(
        'retry-applied-twice',
        `request ${id} (${cmd.op} ${cmd.key}) wrote at index ${at} and again at ${e.index}`,
      );
    }
    if (cmd.op === 'delete') this.tombstones.set(cmd.key, { index: e.index, seq: seqToHex(e.seq) });
  }

  /** A replica at term `term` stepped an append of an older term: it must not take its entries. */
  onStaleAppend(node: NodeId, term: number, msgTerm: number, from: NodeId, entries: number): void {
    this.checks++;
    if (entries > 0) {
      this.fail(
        'stale-term-append',
        `node ${node} at term ${term} accepted ${entries} entries from node ${from}'s term ${msgTerm} append`,
      );
    }
  }

  /** A linearizable read sees every entry committed (applied anywhere) before it arrived. */
  onRead(node: NodeId, term: number, via: string, applied: number, committedBefore: number): void {
    this.checks++;
    if (applied < committedBefore) {
      this.fail(
        'stale-read',
        `node ${node} (term ${term}) served a ${via} read at applied index ${applied}; index ${committedBefore} was committed before the read arrived`,
      );
    }
  }

  /**
   * After a batch of applies: no deleted key came back. With `full` (every `stateCheckEvery`-th
   * index, snapshot installs, restarts): equal state at equal applied index.
   */
  onState(node: NodeId, sm: KvStateMachine, full: boolean): void {
    this.checks++;
    if (full) {
      const digest = stateDigest(sm);
      const known = this.stateAt.get(sm.appliedIndex);
      if (known === undefined) this.stateAt.set(sm.appliedIndex, { digest, node });
      else if (known.digest !== digest) {
        this.fail(
          'equal-state',
          `nodes ${known.node} and ${node} differ at applied index ${sm.appliedIndex}`,
        );
      }
    }
    for (const [key, t] of this.tombstones) {
      if (t.index > sm.appliedIndex) continue;
      const cell = sm.cell(key);
      if (cell !== undefined && cell.value !== null && cell.seq < t.seq) {
        this.fail(
          'deleted-key-back',
          `node ${node}: key ${key} deleted at seq ${t.seq} shows seq ${cell.seq}`,
        );
      }
    }
  }
}

function seqHexAt(log: LogView, index: number): string | undefined {
  const e = log.entries[index - log.snapIndex - 1];
  return e === undefined ? undefined : seqToHex(e.seq);
}
