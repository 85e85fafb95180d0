/**
 * Child of fatal.test.ts: opens a btree engine, starts a batch of argv[4] writes (few: lmdb-js's
 * asynchronous transaction, whose callback runs on this thread; 64+: its write thread) and throws
 * argv[5] ms later, while the batch is being written. argv[2]: the dir; argv[3]: 'handler' to
 * install dieOnUncaught first.
 */
import { openEngine } from '../../src/engine/index.js';
import type { KeyspaceId } from '../../src/engine/types.js';
import { groupId, type LogIndex } from '../../src/lib/ids.js';
import { dieOnUncaught } from '../../src/lib/fatal.js';
import { makeSeq } from '../../src/sequencer/seq.js';

const [dir, mode] = process.argv.slice(2);
if (mode === 'handler') dieOnUncaught('fatal-test');
const engine = await openEngine('btree', dir!);
const writes = Array.from({ length: Number(process.argv[4] ?? 3) }, (_, i) => ({
  type: 'put' as const,
  keyspace: 1 as KeyspaceId,
  key: new TextEncoder().encode(`k${i}`),
  value: new Uint8Array(100),
  seq: makeSeq(1n, i, 1),
}));
process.stdout.write('ready\n');
const delay = Number(process.argv[5] ?? 0);
setTimeout(() => {
  void engine.applyBatch(groupId(1), writes, 1 as LogIndex, makeSeq(1n, 9999, 1), [], { ordered: true });
  setTimeout(() => {
    throw new Error('boom while the batch is being written');
  }, delay);
}, 50);
