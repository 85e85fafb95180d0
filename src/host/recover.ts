/**
 * Starting a replica: a brand-new group, or one found on disk after a restart. RestoredState comes
 * from the log (hard state, the durable entries after the snapshot point), the descriptor (the
 * snapshot point) and the state machine (its durable applied index and highest seq).
 */
import { decodeEntry } from '../consensus/codec.js';
import { Replica } from '../consensus/replica.js';
import type { Entry, HardState, RestoredState } from '../consensus/types.js';
import { TesseraError } from '../lib/errors.js';
import type { GroupId, LogIndex, NodeId, Term } from '../lib/ids.js';
import { Prng } from '../lib/prng.js';
import type { Log } from '../log/log.js';
import { Sequencer } from '../sequencer/index.js';
import type { Descriptors, GroupDescriptor } from './descriptor.js';
import { HostedGroup } from './group.js';
import type { ReplicaTiming, StateMachineFactory } from './types.js';

export interface StartContext<R> {
  readonly nodeId: NodeId;
  readonly log: Log;
  readonly descriptors: Descriptors;
  readonly factory: StateMachineFactory<R>;
  readonly timing: ReplicaTiming;
  readonly seed: number;
}

const readBytesMax = 16 * 1024 * 1024;

/** Opens the group's state machine and rebuilds its replica from what is durable. */
export async function startGroup<R>(ctx: StartContext<R>, desc: GroupDescriptor): Promise<HostedGroup<R>> {
  const g = desc.group;
  const sm = await ctx.factory(g);
  try {
    const pos = await sm.appliedPosition();
    let d = desc;
    if (d.installing !== null) {
      // A crash during an install: the state machine is atomic, so it holds the old or the new one.
      d =
        pos.index >= d.installing.index
          ? { ...d, snapshot: d.installing, installing: null }
          : { ...d, installing: null };
      await ctx.descriptors.write(d);
    }
    const snap = d.snapshot;
    if (pos.index < snap.index) {
      throw new TesseraError(
        'CORRUPTION',
        `group ${g}: state machine at ${pos.index}, below the snapshot point ${snap.index}`,
      );
    }
    const entries = await restoreLog(ctx.log, g, snap.index, snap.term);
    const last = snap.index + entries.length;
    if (pos.index > last) {
      throw new TesseraError(
        'CORRUPTION',
        `group ${g}: state machine at ${pos.index}, beyond the log (${last})`,
      );
    }
    const hs = ctx.log.groupState(g)?.hardState;
    const hardState: HardState | undefined =
      hs === undefined
        ? undefined
        : { term: hs.term as Term, vote: hs.vote as NodeId, commit: hs.commit as LogIndex };
    const restored: RestoredState = {
      hardState,
      snapshot: snap.index > 0 ? snap : undefined,
      entries,
      appliedIndex: pos.index,
    };
    const replica = new Replica(
      {
        group: g,
        id: ctx.nodeId,
        initialMembership: snap.membership,
        electionMode: d.electionMode,
        sequencer: new Sequencer(ctx.nodeId, pos.seq),
        prng: new Prng((ctx.seed ^ Math.imul(g, 0x9e3779b1) ^ ctx.nodeId) >>> 0),
        ...ctx.timing,
      },
      restored,
    );
    const hg = new HostedGroup(g, replica, sm, d);
    hg.durableHard = hardState ?? null;
    return hg;
  } catch (e) {
    await sm.close();
    throw e;
  }
}

/** The durable entries after the snapshot point; marks the snapshot in the log if it lacks it. */
async function restoreLog(log: Log, g: GroupId, index: LogIndex, term: Term): Promise<Entry[]> {
  const gs = log.groupState(g);
  const holds =
    index === 0
      ? gs === undefined || gs.firstIndex <= 1
      : gs !== undefined &&
        gs.lastIndex >= index &&
        gs.firstIndex <= index + 1 &&
        log.term(g, index) === term;
  if (!holds) {
    if (index > 0) await log.append([{ kind: 'snapshot', group: g, term, index }]);
    return [];
  }
  if (gs === undefined) return [];
  // Releases are not logged: forget again what the snapshot point covers (old segments can go).
  if (index > 0 && gs.firstIndex <= index) await log.releaseUpTo(g, index);
  const out: Entry[] = [];
  let next = index + 1;
  while (next <= gs.lastIndex) {
    const batch = await log.readEntries(g, next as LogIndex, gs.lastIndex, readBytesMax);
    for (const r of batch) {
      const e = decodeEntry(r.payload);
      if (e.index !== r.index || e.term !== r.term) {
        throw new TesseraError('CORRUPTION', `group ${g}: log entry ${r.index} does not match its record`);
      }
      out.push(e);
    }
    next += batch.length;
  }
  return out;
}
