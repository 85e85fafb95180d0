/**
 * Consensus core throughput: 3 replicas in one process, no-op disk (persisted at once), messages
 * delivered in memory, batching on. Prints committed entries/s at the leader.
 *   npx tsx bench/consensus.ts [--seconds S] [--batch N] [--bytes B]
 */
import { Replica } from '../src/consensus/replica.js';
import type { Message, ReplicaConfig, SequencerLike } from '../src/consensus/types.js';
import { type GroupId, type LogIndex, type NodeId, nodeId, type Seq, term } from '../src/lib/ids.js';
import { Prng } from '../src/lib/prng.js';
import { Sequencer } from '../src/sequencer/sequencer.js';

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : def;
}

const seconds = arg('seconds', 3);
const batch = arg('batch', 1000);
const payloadBytes = arg('bytes', 64);
const ids = [1, 2, 3].map(nodeId);
/** --light-seq: a minimal sequencer (views into one buffer) to measure the core without makeSeq. */
const lightSeq = process.argv.includes('--light-seq');
class LightSequencer implements SequencerLike {
  private buf = new Uint8Array(0);
  private off = 0;
  private counter = 0;
  constructor(private readonly id: number) {}
  next(_wallNs: bigint): Seq {
    if (this.off + 16 > this.buf.length) {
      this.buf = new Uint8Array(16 * 4096);
      this.off = 0;
    }
    const s = this.buf.subarray(this.off, this.off + 16);
    this.off += 16;
    this.counter++;
    s[8] = this.counter >>> 24;
    s[9] = (this.counter >>> 16) & 255;
    s[10] = (this.counter >>> 8) & 255;
    s[11] = this.counter & 255;
    s[15] = this.id;
    return s as Seq;
  }
  observe(_seq: Seq): void {}
}
const prng = new Prng(1);
const replicas = new Map<NodeId, Replica>();
for (const id of ids) {
  const cfg: ReplicaConfig = {
    group: 1 as GroupId,
    id,
    initialMembership: { voters: ids, learners: [] },
    electionMode: 'directed',
    sequencer: lightSeq ? new LightSequencer(id) : new Sequencer(id),
    prng: prng.fork(),
    uncommittedMax: 100_000,
  };
  replicas.set(id, new Replica(cfg));
}
let mono = 0;
const wall = (): bigint => BigInt(Date.now()) * 1_000_000n;
for (const r of replicas.values()) r.tick(mono, wall());

let queue: Message[] = [];
let committedAtLeader = 0;
const leaderId = ids[0]!;

function drainAll(): void {
  for (let round = 0; round < 100; round++) {
    let any = false;
    for (const [id, r] of replicas) {
      if (!r.hasReady()) continue;
      any = true;
      const rd = r.ready();
      for (const m of rd.messages) queue.push(m);
      r.persisted(rd.number); // no-op disk
      for (const m of rd.messagesAfterPersist) queue.push(m);
      const last = rd.committed[rd.committed.length - 1];
      if (last !== undefined) {
        r.applied(last.index);
        if (id === leaderId) committedAtLeader += rd.committed.filter((e) => e.kind === 'command').length;
      }
    }
    const q = queue;
    queue = [];
    for (const m of q) replicas.get(m.to)!.step(m);
    if (!any && q.length === 0) return;
  }
}

const leader = replicas.get(leaderId)!;
leader.campaign(term(1));
drainAll();
if (leader.status().role !== 'leader') throw new Error('no leader');

const payload = new Uint8Array(payloadBytes);
const cmds = Array.from({ length: batch }, () => payload);
const start = performance.now();
let lastTick = start;
let proposed = 0;
while (performance.now() - start < seconds * 1000) {
  const res = leader.propose(cmds, wall());
  if (res.ok) proposed += batch;
  drainAll();
  const now = performance.now();
  if (now - lastTick >= 10) {
    mono += now - lastTick;
    lastTick = now;
    for (const r of replicas.values()) r.tick(mono, wall());
    // The state machine holds everything applied: keep the in-memory log short.
    for (const r of replicas.values()) {
      const st = r.status();
      if (st.applied - st.firstIndex > 50_000) r.compact((st.applied - 10_000) as LogIndex);
    }
  }
}
const elapsed = (performance.now() - start) / 1000;
const rate = Math.round(committedAtLeader / elapsed);
console.log(
  JSON.stringify({
    bench: 'consensus-core',
    sequencer: lightSeq ? 'light' : 'Sequencer',
    replicas: 3,
    batch,
    payloadBytes,
    seconds: Number(elapsed.toFixed(2)),
    proposed,
    committed: committedAtLeader,
    committedPerSec: rate,
  }),
);
