/** The `--mm` / `--peers` flag of the role commands: `1=127.0.0.1:7001,2=...` -> MM node id -> address. */
import { nodeId, type NodeId } from '../lib/ids.js';
import { limits } from '../lib/limits.js';
import { parseAddress } from '../request/catalog-cache.js';
import type { PeerAddress } from '../transport/index.js';
import { UsageError } from './args.js';

export function parseMembers(s: string): Map<NodeId, PeerAddress> {
  const out = new Map<NodeId, PeerAddress>();
  for (const part of s.split(',')) {
    const m = /^(\d+)=(.+)$/.exec(part.trim());
    const addr = m?.[2] === undefined ? null : parseAddress(m[2]);
    const id = Number(m?.[1]);
    if (m === null || addr === null || !Number.isInteger(id) || id < 1 || id > limits.mmNodeIdMax)
      throw new UsageError(`bad --mm entry ${part} (expected ID=HOST:PORT, ID 1..${limits.mmNodeIdMax})`);
    out.set(nodeId(id), addr);
  }
  if (out.size === 0) throw new UsageError('--mm needs at least one member');
  return out;
}
