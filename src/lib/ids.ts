/**
 * Branded identifiers: a NodeId can't be passed where a GroupId is expected, even though both are
 * numbers at run time. Construct them only through these helpers, which check the range.
 */
import { assert } from './assert.js';

declare const brand: unique symbol;
export type Brand<T, B extends string> = T & { readonly [brand]: B };

/** 4-byte node id, assigned by the metadata manager, never reused. 0 is "none". */
export type NodeId = Brand<number, 'NodeId'>;
/** Replication group id. */
export type GroupId = Brand<number, 'GroupId'>;
/** Raft term (epoch); only grows. */
export type Term = Brand<number, 'Term'>;
/** Position in a group's log; 0 means "before the first entry". */
export type LogIndex = Brand<number, 'LogIndex'>;
/** Table id, assigned by the metadata manager, never reused. */
export type TableId = Brand<number, 'TableId'>;
/** Shard id, assigned by the metadata manager, never reused. */
export type ShardId = Brand<number, 'ShardId'>;
/** 16-byte sequence id (see src/sequencer). Compared as unsigned bytes. */
export type Seq = Brand<Uint8Array, 'Seq'>;

const u32Max = 0xffff_ffff;

function checkU32(n: number, what: string): void {
  assert(Number.isInteger(n) && n >= 0 && n <= u32Max, `${what} out of range: ${n}`);
}

function checkSafe(n: number, what: string): void {
  assert(Number.isSafeInteger(n) && n >= 0, `${what} out of range: ${n}`);
}

/** A constructor of branded ids that checks the range first. */
function branded<T extends number>(check: (n: number, what: string) => void, what: string): (n: number) => T {
  return (n) => {
    check(n, what);
    return n as T;
  };
}

export const nodeId = branded<NodeId>(checkU32, 'NodeId');
export const groupId = branded<GroupId>(checkU32, 'GroupId');
export const tableId = branded<TableId>(checkU32, 'TableId');
export const shardId = branded<ShardId>(checkU32, 'ShardId');
export const term = branded<Term>(checkSafe, 'Term');
export const logIndex = branded<LogIndex>(checkSafe, 'LogIndex');
