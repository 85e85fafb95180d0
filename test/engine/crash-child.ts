/**
 * Child process for crash.test.ts: applies batches forever, each writing 100 keys and a 'last'
 * key all equal to the batch's applied index, and prints each index once its applyBatch resolved.
 */
import { keyspaceId, openEngine } from '../../src/engine/index.js';
import { groupId, logIndex } from '../../src/lib/ids.js';
import { makeSeq } from '../../src/sequencer/seq.js';

const [kind, dir] = process.argv.slice(2) as ['btree' | 'lsm', string];
const e = await openEngine(kind, dir);
const start = (await e.getApplied(groupId(1))).index + 1;
const enc = (s: string) => new TextEncoder().encode(s);
for (let i = start; ; i++) {
  const s = makeSeq(BigInt(i), 0, 1);
  const value = enc(String(i).padEnd(200, '.'));
  const writes = Array.from({ length: 100 }, (_, j) => ({
    type: 'put' as const,
    keyspace: keyspaceId(1),
    key: enc(`k${(i * 100 + j) % 5000}`),
    value,
    seq: s,
  }));
  writes.push({ type: 'put', keyspace: keyspaceId(1), key: enc('last'), value, seq: s });
  await e.applyBatch(groupId(1), writes, logIndex(i), s);
  process.stdout.write(`${i}\n`);
}
