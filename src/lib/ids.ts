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

export const nodeId = (n: number): NodeId => {
  checkU32(n, 'NodeId');
  return n as NodeId;
};
export const groupId = (n: number): GroupId => {
  checkU32(n, 'GroupId');
  return n as GroupId;
};
export const tableId = (n: number): TableId => {
  checkU32(n, 'TableId');
  return n as TableId;
};
export const shardId = (n: number): ShardId => {
  checkU32(n, 'ShardId');
  return n as ShardId;
};
export const term = (n: number): Term => {
  checkSafe(n, 'Term');
  return n as Term;
};
export const logIndex = (n: number): LogIndex => {
  checkSafe(n, 'LogIndex');
  return n as LogIndex;
};
