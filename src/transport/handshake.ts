/**
 * Handshake, version 1: mutual HMAC-SHA256 challenge-response over the cluster secret.
 *
 *   client -> server  HELLO     magic "TSRA", versionMin u16, versionMax u16, role u8, nodeId u32,
 *                               clientNonce (32 bytes)                                  (45 bytes)
 *   server -> client  HELLO_ACK version u16, role u8, nodeId u32, serverNonce (32),
 *                               serverProof (32)                                        (71 bytes)
 *   client -> server  AUTH      clientProof (32)
 *   server -> client  AUTH_OK   (empty)         or REJECT (UTF-8 reason), then close
 *
 * proof = HMAC-SHA256(secret, label | version u16 | clientNonce | serverNonce | clientRole u8 |
 *                     clientNodeId u32 | serverRole u8 | serverNodeId u32)
 * with label "tessera/v1/server" or "tessera/v1/client", so a proof can't be reflected back. Both
 * nonces are fresh per connection, so a recorded proof can't be replayed. No application frame is
 * accepted on a connection before AUTH_OK.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { assert } from '../lib/assert.js';
import type { NodeId } from '../lib/ids.js';
import { nodeId as toNodeId } from '../lib/ids.js';

export const handshakeVersion = 1;
export const handshakeVersionMin = 1;
const magic = 0x54535241; // "TSRA"
const nonceBytes = 32;
const proofBytes = 32;

export const roles = ['metadata', 'storage', 'request'] as const;
export type Role = (typeof roles)[number];

export interface PeerIdentity {
  nodeId: NodeId;
  role: Role;
}

export interface Hello extends PeerIdentity {
  versionMin: number;
  versionMax: number;
  nonce: Uint8Array;
}

export interface HelloAck extends PeerIdentity {
  version: number;
  nonce: Uint8Array;
  proof: Uint8Array;
}

function roleCode(role: Role): number {
  const i = roles.indexOf(role);
  assert(i >= 0, `unknown role ${role}`);
  return i + 1;
}

function roleFromCode(code: number): Role | null {
  return roles[code - 1] ?? null;
}

export function newNonce(): Uint8Array {
  return new Uint8Array(randomBytes(nonceBytes));
}

export function encodeHello(h: Hello): Buffer {
  assert(h.nonce.length === nonceBytes, 'nonce must be 32 bytes');
  const b = Buffer.alloc(13 + nonceBytes);
  b.writeUInt32BE(magic, 0);
  b.writeUInt16BE(h.versionMin, 4);
  b.writeUInt16BE(h.versionMax, 6);
  b.writeUInt8(roleCode(h.role), 8);
  b.writeUInt32BE(h.nodeId, 9);
  b.set(h.nonce, 13);
  return b;
}

/** Null when malformed (wrong size, magic or role). */
export function decodeHello(p: Uint8Array): Hello | null {
  if (p.length !== 13 + nonceBytes) return null;
  const b = Buffer.from(p.buffer, p.byteOffset, p.byteLength);
  if (b.readUInt32BE(0) !== magic) return null;
  const role = roleFromCode(b.readUInt8(8));
  if (role === null) return null;
  return {
    versionMin: b.readUInt16BE(4),
    versionMax: b.readUInt16BE(6),
    role,
    nodeId: toNodeId(b.readUInt32BE(9)),
    nonce: b.subarray(13),
  };
}

export function encodeHelloAck(h: HelloAck): Buffer {
  assert(h.nonce.length === nonceBytes && h.proof.length === proofBytes, 'bad nonce or proof size');
  const b = Buffer.alloc(7 + nonceBytes + proofBytes);
  b.writeUInt16BE(h.version, 0);
  b.writeUInt8(roleCode(h.role), 2);
  b.writeUInt32BE(h.nodeId, 3);
  b.set(h.nonce, 7);
  b.set(h.proof, 7 + nonceBytes);
  return b;
}

export function decodeHelloAck(p: Uint8Array): HelloAck | null {
  if (p.length !== 7 + nonceBytes + proofBytes) return null;
  const b = Buffer.from(p.buffer, p.byteOffset, p.byteLength);
  const role = roleFromCode(b.readUInt8(2));
  if (role === null) return null;
  return {
    version: b.readUInt16BE(0),
    role,
    nodeId: toNodeId(b.readUInt32BE(3)),
    nonce: b.subarray(7, 7 + nonceBytes),
    proof: b.subarray(7 + nonceBytes),
  };
}

/** Picks the highest version both sides speak, or null. */
export function negotiateVersion(h: Hello): number | null {
  const v = Math.min(h.versionMax, handshakeVersion);
  return v >= Math.max(h.versionMin, handshakeVersionMin) ? v : null;
}

export interface ProofInput {
  side: 'client' | 'server';
  version: number;
  clientNonce: Uint8Array;
  serverNonce: Uint8Array;
  client: PeerIdentity;
  server: PeerIdentity;
}

export function computeProof(secret: Uint8Array, p: ProofInput): Buffer {
  assert(secret.length > 0, 'empty cluster secret');
  const ids = Buffer.alloc(12);
  ids.writeUInt16BE(p.version, 0);
  ids.writeUInt8(roleCode(p.client.role), 2);
  ids.writeUInt32BE(p.client.nodeId, 3);
  ids.writeUInt8(roleCode(p.server.role), 7);
  ids.writeUInt32BE(p.server.nodeId, 8);
  return createHmac('sha256', secret)
    .update(`tessera/v${p.version}/${p.side}`)
    .update(p.clientNonce)
    .update(p.serverNonce)
    .update(ids)
    .digest();
}

export function proofMatches(expected: Buffer, got: Uint8Array): boolean {
  return got.length === expected.length && timingSafeEqual(expected, got);
}
