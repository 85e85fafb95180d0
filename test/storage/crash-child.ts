/**
 * Child process of crash.test.ts: opens the local store and writes continuously with 32 concurrent
 * writers until it is killed. Prints one line per acknowledged write (stdout to a pipe is
 * synchronous on Linux, so a printed line was acknowledged before the kill):
 *   P <table> <key> <seq hex> <value>   |   D <table> <key> <seq hex>
 */
import { isTesseraError } from '../../src/lib/errors.js';
import { Prng } from '../../src/lib/prng.js';
import { seqToHex } from '../../src/sequencer/index.js';
import { LocalStore } from '../../src/storage/local-store.js';

const [dir, roundArg, seedArg] = process.argv.slice(2);
const round = Number(roundArg);
const prng = new Prng(Number(seedArg));
const enc = new TextEncoder();

const store = await LocalStore.open(dir!, { checkpointEntries: 2000 });
const have = new Set(store.listTables().map((t) => t.name));
if (!have.has('b')) await store.createTable('b', 'btree');
if (!have.has('l')) await store.createTable('l', 'lsm');
process.stdout.write(`ready ${store.replayed}\n`);

let counter = 0;
async function writer(): Promise<void> {
  for (;;) {
    const table = prng.chance(0.5) ? 'b' : 'l';
    const key = `k${prng.int(0, 499)}`;
    if (prng.chance(0.15)) {
      try {
        const { seq } = await store.delete(table, enc.encode(key));
        process.stdout.write(`D ${table} ${key} ${seqToHex(seq)}\n`);
      } catch (e) {
        if (!isTesseraError(e, 'KEY_NOT_FOUND')) throw e;
      }
    } else {
      const value = `r${round}:${counter++}`;
      const { seq } = await store.put(table, enc.encode(key), enc.encode(value.padEnd(40, '.')));
      process.stdout.write(`P ${table} ${key} ${seqToHex(seq)} ${value}\n`);
    }
  }
}

await Promise.all(Array.from({ length: 32 }, writer)).catch((e) => {
  process.stderr.write(`crash-child: ${e}\n`);
  process.exit(1);
});
