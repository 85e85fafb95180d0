/**
 * Key choosers for the YCSB-style workloads. `Zipfian` is YCSB's ZipfianGenerator (Gray et al.,
 * "Quickly generating billion-record synthetic databases", theta 0.99); `ScrambledZipfian` spreads
 * its hot ranks over the key space with FNV-1a, as YCSB's ScrambledZipfianGenerator does. The Go
 * load generator (bench/etcd/loadgen) implements the same formulas so both systems see the same skew.
 */
import { assert } from '../lib/assert.js';
import type { Prng } from '../lib/prng.js';

export const zipfianThetaDefault = 0.99;

export interface KeyChooser {
  /** A key index in [0, items). */
  next(prng: Prng): number;
}

export function zeta(n: number, theta: number): number {
  let sum = 0;
  for (let i = 1; i <= n; i++) sum += 1 / i ** theta;
  return sum;
}

export class Uniform implements KeyChooser {
  constructor(readonly items: number) {
    assert(Number.isSafeInteger(items) && items >= 1, `bad item count ${items}`);
  }

  next(prng: Prng): number {
    return Math.floor(prng.next() * this.items);
  }
}

export class Zipfian implements KeyChooser {
  readonly zetan: number;
  private readonly alpha: number;
  private readonly eta: number;
  private readonly half: number;

  constructor(
    readonly items: number,
    readonly theta = zipfianThetaDefault,
  ) {
    assert(Number.isSafeInteger(items) && items >= 2, `bad item count ${items}`);
    assert(theta > 0 && theta < 1, `bad theta ${theta}`);
    this.zetan = zeta(items, theta);
    this.alpha = 1 / (1 - theta);
    this.eta = (1 - (2 / items) ** (1 - theta)) / (1 - zeta(2, theta) / this.zetan);
    this.half = 1 + 0.5 ** theta;
  }

  /** Rank (0 = most popular) for a uniform u in [0, 1). */
  rank(u: number): number {
    const uz = u * this.zetan;
    if (uz < 1) return 0;
    if (uz < this.half) return 1;
    const r = Math.floor(this.items * (this.eta * u - this.eta + 1) ** this.alpha);
    return Math.min(r, this.items - 1);
  }

  next(prng: Prng): number {
    return this.rank(prng.next());
  }

  /** The exact probability of rank r (0-based) under the Zipf law the generator approximates. */
  probability(r: number): number {
    return 1 / (r + 1) ** this.theta / this.zetan;
  }
}

const fnvOffset = 0xcbf29ce484222325n;
const fnvPrime = 0x100000001b3n;
const u64Mask = 0xffffffffffffffffn;

/** FNV-1a over the 8 little-endian bytes of v, as YCSB's Utils.fnvhash64 and the Go loadgen. */
export function fnv1a64(v: number): bigint {
  let h = fnvOffset;
  let x = BigInt(v);
  for (let i = 0; i < 8; i++) {
    h ^= x & 0xffn;
    h = (h * fnvPrime) & u64Mask;
    x >>= 8n;
  }
  return h;
}

export class ScrambledZipfian implements KeyChooser {
  private readonly zipf: Zipfian;

  constructor(readonly items: number) {
    this.zipf = new Zipfian(items);
  }

  next(prng: Prng): number {
    return Number(fnv1a64(this.zipf.next(prng)) % BigInt(this.items));
  }
}

export type Distribution = 'uniform' | 'zipfian';

export function keyChooser(dist: Distribution, items: number): KeyChooser {
  return dist === 'uniform' ? new Uniform(items) : new ScrambledZipfian(items);
}

/** The key for index i, the same text as the Go loadgen: prefix + "user" + 10 digits. */
export function keyName(prefix: string, i: number): string {
  return `${prefix}user${String(i).padStart(10, '0')}`;
}
