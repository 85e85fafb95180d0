/** Test harness: N GroupHosts in one process, real logs in temp dirs, real TCP on 127.0.0.1. */
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Membership } from '../../src/consensus/types.js';
import { GroupHost } from '../../src/host/host.js';
import { MemoryStateMachine } from '../../src/host/memory-sm.js';
import type { GroupHostOptions } from '../../src/host/types.js';
import { type GroupId, groupId, type NodeId, nodeId } from '../../src/lib/ids.js';
import { createLogger } from '../../src/lib/log.js';
import { Registry } from '../../src/lib/metrics.js';
import { Transport } from '../../src/transport/index.js';
import { fastTiming } from '../support/timing.js';

const secret = new Uint8Array(randomBytes(32));
const quiet = { info: () => {}, warn: () => {} };

export const timing = fastTiming;

export interface HostNode {
  readonly id: NodeId;
  readonly dir: string;
  port: number;
  transport: Transport | undefined;
  host: GroupHost<string> | undefined;
  sms: Map<GroupId, MemoryStateMachine>;
  registry: Registry;
}

export type HostTweaks = Partial<
  Pick<GroupHostOptions<string>, 'checkpointEntries' | 'compactionMarginEntries'>
>;

export class Cluster {
  readonly nodes: HostNode[] = [];
  readonly root: string;

  private constructor(
    n: number,
    private readonly tweaks: HostTweaks,
  ) {
    this.root = mkdtempSync(join(tmpdir(), 'tessera-host-'));
    for (let i = 1; i <= n; i++) {
      const dir = join(this.root, `n${i}`);
      mkdirSync(join(dir, 'sm'), { recursive: true });
      this.nodes.push({
        id: nodeId(i),
        dir,
        port: 0,
        transport: undefined,
        host: undefined,
        sms: new Map(),
        registry: new Registry(),
      });
    }
  }

  static async start(n = 3, tweaks: HostTweaks = {}): Promise<Cluster> {
    const c = new Cluster(n, tweaks);
    for (const node of c.nodes) await c.startTransport(node);
    for (const node of c.nodes) c.connect(node);
    for (const node of c.nodes) await c.startHost(node);
    return c;
  }

  node(id: number): HostNode {
    return this.nodes[id - 1]!;
  }

  host(id: number): GroupHost<string> {
    const h = this.node(id).host;
    if (h === undefined) throw new Error(`node ${id} is down`);
    return h;
  }

  private async startTransport(node: HostNode): Promise<void> {
    node.transport = await Transport.start({
      self: { nodeId: node.id, role: 'storage' },
      secret,
      listen: { host: '127.0.0.1', port: node.port },
      log: quiet,
      limits: { reconnectBackoffMinMs: 10, reconnectBackoffMaxMs: 100 },
    });
    node.port = node.transport.address!.port;
  }

  private connect(node: HostNode): void {
    for (const other of this.nodes) {
      if (other.id !== node.id && other.port !== 0) {
        node.transport!.setPeer(other.id, { host: '127.0.0.1', port: other.port });
      }
    }
  }

  private async startHost(node: HostNode): Promise<void> {
    node.sms = new Map();
    node.host = await GroupHost.open<string>({
      nodeId: node.id,
      dir: node.dir,
      transport: node.transport!,
      stateMachines: async (g) => {
        const sm = await MemoryStateMachine.open(join(node.dir, 'sm', `${g}.json`), 256);
        node.sms.set(g, sm);
        return sm;
      },
      timing,
      tickIntervalMs: 10,
      seed: node.id * 7919,
      logger: createLogger('host', { level: 'error' }),
      metrics: node.registry,
      ...this.tweaks,
    });
  }

  /** Closes the node's host and transport (its data stays on disk). */
  async stop(id: number): Promise<void> {
    const node = this.node(id);
    await node.host?.close();
    await node.transport?.close();
    node.host = undefined;
    node.transport = undefined;
  }

  /** Reopens the node from its directory on the same port. */
  async restart(id: number): Promise<void> {
    const node = this.node(id);
    await this.startTransport(node);
    this.connect(node);
    await this.startHost(node);
  }

  async addGroup(
    g: number,
    membership: Membership,
    mode: 'self' | 'directed',
    on?: number[],
  ): Promise<GroupId> {
    const gid = groupId(g);
    for (const node of this.nodes) {
      if (on !== undefined && !on.includes(node.id)) continue;
      await node.host!.addGroup(gid, { membership, electionMode: mode });
    }
    return gid;
  }

  /** Waits until the up nodes agree on one leader of g; returns its id. */
  async leader(g: GroupId, timeoutMs = 10_000): Promise<number> {
    let found = 0;
    await waitFor(
      () => {
        const up = this.nodes.filter((n) => n.host?.status(g) !== undefined);
        const leaders = up.filter((n) => n.host!.status(g)!.role === 'leader');
        if (leaders.length !== 1) return false;
        const l = leaders[0]!;
        const term = l.host!.status(g)!.term;
        found = l.id;
        return up.every((n) => n.host!.status(g)!.leader === l.id && n.host!.status(g)!.term === term);
      },
      timeoutMs,
      `a leader of group ${g}`,
    );
    return found;
  }

  sm(id: number, g: GroupId): MemoryStateMachine {
    const sm = this.node(id).sms.get(g);
    if (sm === undefined) throw new Error(`no state machine of group ${g} on node ${id}`);
    return sm;
  }

  async close(): Promise<void> {
    for (const n of this.nodes) await this.stop(n.id);
    rmSync(this.root, { recursive: true, force: true });
  }
}

export async function waitFor(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

export const members = (...ids: number[]): Membership => ({ voters: ids.map(nodeId), learners: [] });
