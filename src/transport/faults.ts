/**
 * Fault switch for tests: per-link, asymmetric blocks. `block(a, b)` drops every application frame
 * (message, request, response) that node a sends to node b, checked by the sender before queueing
 * and by the receiver on arrival, so one switch shared by several in-process transports, or each
 * node's own switch driven remotely (the admin request below), cuts exactly the link a -> b.
 * Transport-level frames (handshake, ping) still flow: a blocked link looks like a network that
 * loses packets, not like a closed connection.
 *
 * Remote control (multi-process tests): a transport started with `allowFaultAdmin: true` answers the
 * request kind `faultAdminKind` from any authenticated member. Payload, version 1:
 *   op u8 (1 block, 2 unblock, 3 clear), from u32, to u32   (9 bytes; from/to ignored by clear)
 */
import { assert } from '../lib/assert.js';
import type { NodeId } from '../lib/ids.js';
import { nodeId as toNodeId } from '../lib/ids.js';

export const faultAdminKind = 0xff01;

export type FaultCommand = { op: 'block' | 'unblock'; from: NodeId; to: NodeId } | { op: 'clear' };

const opCodes = { block: 1, unblock: 2, clear: 3 } as const;

export class FaultSwitch {
  private readonly blocked = new Set<string>();

  block(from: NodeId, to: NodeId): void {
    this.blocked.add(`${from}>${to}`);
  }

  unblock(from: NodeId, to: NodeId): void {
    this.blocked.delete(`${from}>${to}`);
  }

  /** Blocks both directions between a and b. */
  partition(a: NodeId, b: NodeId): void {
    this.block(a, b);
    this.block(b, a);
  }

  clear(): void {
    this.blocked.clear();
  }

  isBlocked(from: NodeId, to: NodeId): boolean {
    return this.blocked.size > 0 && this.blocked.has(`${from}>${to}`);
  }

  /** The blocked links as [from, to] pairs. */
  links(): Array<[NodeId, NodeId]> {
    return [...this.blocked].map((s) => {
      const [a, b] = s.split('>');
      return [toNodeId(Number(a)), toNodeId(Number(b))];
    });
  }

  apply(cmd: FaultCommand): void {
    if (cmd.op === 'clear') {
      this.clear();
      return;
    }
    if (cmd.op === 'block') {
      this.block(cmd.from, cmd.to);
      return;
    }
    this.unblock(cmd.from, cmd.to);
  }
}

export function encodeFaultCommand(cmd: FaultCommand): Buffer {
  const b = Buffer.alloc(9);
  b.writeUInt8(opCodes[cmd.op], 0);
  if (cmd.op !== 'clear') {
    b.writeUInt32BE(cmd.from, 1);
    b.writeUInt32BE(cmd.to, 5);
  }
  return b;
}

/** Null when malformed. */
export function decodeFaultCommand(p: Uint8Array): FaultCommand | null {
  if (p.length !== 9) return null;
  const b = Buffer.from(p.buffer, p.byteOffset, p.byteLength);
  const op = b.readUInt8(0);
  if (op === opCodes.clear) return { op: 'clear' };
  if (op !== opCodes.block && op !== opCodes.unblock) return null;
  const from = toNodeId(b.readUInt32BE(1));
  const to = toNodeId(b.readUInt32BE(5));
  assert(from !== undefined && to !== undefined, 'decoded ids');
  return { op: op === opCodes.block ? 'block' : 'unblock', from, to };
}
