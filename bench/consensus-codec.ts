/**
 * Consensus codec throughput: encode / decode of one append carrying 1,000 entries of 64 bytes.
 *   npx tsx bench/consensus-codec.ts
 */
import { decodeMessage, encodeMessage } from '../src/consensus/codec.js';
import type { Message } from '../src/consensus/types.js';
const entries = Array.from({ length: 1000 }, (_, k) => ({
  index: 1 + k,
  term: 3,
  kind: 'command',
  seq: new Uint8Array(16),
  data: new Uint8Array(64),
}));
const m = {
  type: 'append',
  group: 1,
  from: 1,
  to: 2,
  term: 3,
  prevIndex: 0,
  prevTerm: 0,
  commit: 0,
  entries,
} as unknown as Message;
for (let i = 0; i < 200; i++) decodeMessage(encodeMessage(m));
let t = performance.now();
let n = 0;
while (performance.now() - t < 2000) {
  encodeMessage(m);
  n++;
}
const enc = (n * 1000) / ((performance.now() - t) / 1000);
const b = encodeMessage(m);
t = performance.now();
n = 0;
while (performance.now() - t < 2000) {
  decodeMessage(b);
  n++;
}
const dec = (n * 1000) / ((performance.now() - t) / 1000);
console.log(
  JSON.stringify({
    encodeEntriesPerSec: Math.round(enc),
    decodeEntriesPerSec: Math.round(dec),
    bytesPerEntry: b.length / 1000,
  }),
);
