import { expect } from 'vitest';
import type { ErrorCode } from '../../src/lib/errors.js';
import type { GroupId, NodeId } from '../../src/lib/ids.js';
import { Catalog } from '../../src/metadata/catalog.js';
import { checkInvariants } from '../../src/metadata/state.js';
import type { CatalogCommand, CommandResult, CommandType, CommandValues } from '../../src/metadata/types.js';

export const cap = { replicasMax: 100, diskBytes: 1e12 };

/** Applies a command that must succeed; returns its value. Checks the invariants after it. */
export function ok<T extends CommandType>(
  c: Catalog,
  cmd: Extract<CatalogCommand, { type: T }>,
): CommandValues[T] {
  const r = c.apply(cmd) as CommandResult<T>;
  if (!r.ok) throw new Error(`${cmd.type} failed: ${r.code} ${r.message}`);
  checkInvariants(c.state as never);
  return r.value;
}

/** Applies a command that must be refused with `code`, and checks it changed nothing. */
export function refused(c: Catalog, cmd: CatalogCommand, code: ErrorCode): void {
  const before = c.snapshot();
  const r = c.apply(cmd);
  expect(r.ok ? 'ok' : r.code).toBe(code);
  expect(Buffer.from(c.snapshot()).equals(Buffer.from(before))).toBe(true);
}

export function register(
  c: Catalog,
  key: string,
  role: 'storage' | 'metadata' | 'request' = 'storage',
): NodeId {
  return ok(c, {
    type: 'registerNode',
    nodeKey: key,
    address: `127.0.0.1:${key.length + 7000}`,
    role,
    capacity: cap,
    atMs: 1000,
  }).node;
}

/** A catalog with `nodes` storage nodes n1..nN and `groups` groups of 3 built from them in order. */
export function cluster(nodes: number, groups: number): { c: Catalog; nodes: NodeId[]; groups: GroupId[] } {
  const c = new Catalog();
  const ids: NodeId[] = [];
  for (let i = 1; i <= nodes; i++) ids.push(register(c, `n${i}`));
  const gids: GroupId[] = [];
  for (let g = 0; g < groups; g++) {
    gids.push(ok(c, { type: 'createGroup', members: ids.slice(g * 3, g * 3 + 3), atMs: 2000 }).group);
  }
  return { c, nodes: ids, groups: gids };
}
