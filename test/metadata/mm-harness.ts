/** Test harness: N metadata nodes in one process, real disks in a temp dir, real TCP on 127.0.0.1. */
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type NodeId, nodeId } from '../../src/lib/ids.js';
import { createLogger } from '../../src/lib/log.js';
import { MmClient } from '../../src/metadata/client.js';
import { MetadataNode, type MetadataNodeOptions } from '../../src/metadata/node.js';
import { provisionalNodeId } from '../../src/metadata/rpc.js';
import type { PeerAddress } from '../../src/transport/index.js';
import { Transport } from '../../src/transport/index.js';
import { fastTiming } from '../support/timing.js';
import { waitFor } from '../support/wait.js';

export const timing = fastTiming;

export const quiet = createLogger('metadata', { level: 'error' });
const quietTransport = { info: () => {}, warn: () => {} };

import { freePort } from '../support/net.js';

export { freePort };

export { waitFor };

export class MmCluster {
  readonly root = mkdtempSync(join(tmpdir(), 'tessera-mm-'));
  readonly secret = new Uint8Array(randomBytes(32));
  readonly members = new Map<NodeId, PeerAddress>();
  readonly nodes = new Map<NodeId, MetadataNode>();
  private readonly clients: Transport[] = [];

  private constructor(private readonly extra: Partial<MetadataNodeOptions>) {}

  static async start(n: number, extra: Partial<MetadataNodeOptions> = {}): Promise<MmCluster> {
    const c = new MmCluster(extra);
    for (let i = 1; i <= n; i++) c.members.set(nodeId(i), { host: '127.0.0.1', port: await freePort() });
    await Promise.all([...c.members.keys()].map((id) => c.startNode(id)));
    return c;
  }

  async startNode(id: NodeId): Promise<MetadataNode> {
    const dir = join(this.root, `mm${id}`);
    mkdirSync(dir, { recursive: true });
    const node = await MetadataNode.start({
      id,
      dir,
      listen: this.members.get(id) as PeerAddress,
      members: this.members,
      secret: this.secret,
      timing,
      logger: quiet,
      ...this.extra,
    });
    this.nodes.set(id, node);
    return node;
  }

  async stopNode(id: NodeId): Promise<void> {
    const n = this.nodes.get(id);
    this.nodes.delete(id);
    await n?.close();
  }

  async leader(ms = 10_000): Promise<MetadataNode> {
    return waitFor('an MM leader', () => [...this.nodes.values()].find((n) => n.isLeader), ms);
  }

  /** A client transport with the given identity (provisional by default) and an MmClient on it. */
  async client(
    id: NodeId = provisionalNodeId,
    role: 'request' | 'storage' = 'request',
  ): Promise<{ t: Transport; mm: MmClient }> {
    const t = await Transport.start({ self: { nodeId: id, role }, secret: this.secret, log: quietTransport });
    this.clients.push(t);
    return { t, mm: new MmClient({ transport: t, members: this.members, deadlineMs: 8_000 }) };
  }

  /** Registers a request-role client and returns an MmClient under its id. */
  async registeredClient(
    key = `client-${randomBytes(4).toString('hex')}`,
  ): Promise<{ id: NodeId; mm: MmClient; t: Transport }> {
    const p = await this.client();
    const r = await p.mm.call('register', {
      role: 'request',
      nodeKey: key,
      address: '127.0.0.1:1',
      pid: process.pid,
      capacity: { replicasMax: 0, diskBytes: 0 },
    });
    const c = await this.client(r.node);
    return { id: r.node, ...c };
  }

  async close(): Promise<void> {
    for (const t of this.clients) await t.close();
    for (const id of [...this.nodes.keys()]) await this.stopNode(id);
    rmSync(this.root, { recursive: true, force: true });
  }
}
