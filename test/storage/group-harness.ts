/**
 * Shared harness: storage nodes in this process hosting one replication group, driven by a fake
 * metadata manager (a transport with role 'metadata' sending ctl.*) and a fake request manager
 * (role 'request' sending kv.*). Used by test/storage/*.test.ts and bench/storage-node.ts.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm as removeDir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { EngineKind } from '../../src/engine/types.js';
import { type GroupId, type NodeId, nodeId, type ShardId, type TableId, term } from '../../src/lib/ids.js';
import { createLogger } from '../../src/lib/log.js';
import { StorageNode, type StorageNodeOptions } from '../../src/storage/node.js';
import * as rpc from '../../src/storage/rpc.js';
import { StorageKind } from '../../src/storage/rpc.js';
import { Transport } from '../../src/transport/index.js';
import { waitFor } from '../support/wait.js';

/** Options of every node, beyond the ones the harness sets (dir, listen, secret, mm, nodeId). */
export type GroupNodeOptions = Omit<StorageNodeOptions, 'dir' | 'listen' | 'secret' | 'mm' | 'nodeId'>;

export interface StorageGroupOptions {
  readonly group: GroupId;
  readonly ids: readonly NodeId[];
  /** Prefix of the temporary root directory (one sub-directory per node). */
  readonly tmpPrefix: string;
  readonly node?: GroupNodeOptions;
}

export class StorageGroup {
  readonly nodes = new Map<NodeId, StorageNode>();

  private constructor(
    readonly opts: StorageGroupOptions,
    readonly root: string,
    readonly secret: Uint8Array,
    /** Fake metadata manager (role 'metadata'). */
    readonly mm: Transport,
    /** Fake request manager (role 'request'). */
    readonly rm: Transport,
  ) {}

  /**
   * Starts the nodes and both transports, and orders every node to host the group (directed
   * mode: nobody campaigns until told). No leader yet: see campaign().
   */
  static async start(opts: StorageGroupOptions): Promise<StorageGroup> {
    const root = await mkdtemp(path.join(tmpdir(), opts.tmpPrefix));
    const secret = new Uint8Array(randomBytes(32));
    const mm = await Transport.start({ self: { nodeId: nodeId(1), role: 'metadata' }, secret });
    const rm = await Transport.start({ self: { nodeId: nodeId(40), role: 'request' }, secret });
    const g = new StorageGroup(opts, root, secret, mm, rm);
    for (const id of opts.ids) await g.startNode(id);
    const addresses = opts.ids.map((id) => ({ node: id, address: g.node(id).address }));
    for (const a of addresses) {
      const [host, port] = a.address.split(':');
      mm.setPeer(a.node, { host: host as string, port: Number(port) });
      rm.setPeer(a.node, { host: host as string, port: Number(port) });
    }
    const order = rpc.encodeCtlHostGroup({
      group: opts.group,
      membership: { voters: [...opts.ids], learners: [] },
      addresses,
      mode: 'directed',
    });
    for (const id of opts.ids) await g.ctl(id, StorageKind.ctlHostGroup, order);
    return g;
  }

  /** Starts (or restarts, e.g. on its old port) node `id` with the group's options. */
  async startNode(id: NodeId, port = 0): Promise<StorageNode> {
    const n = await StorageNode.start({
      logger: createLogger('storage', { level: 'error' }),
      ...this.opts.node,
      dir: path.join(this.root, `n${id}`),
      listen: { host: '127.0.0.1', port },
      secret: this.secret,
      mm: new Map(),
      nodeId: id,
    });
    this.nodes.set(id, n);
    return n;
  }

  /** Closes node `id` (if running) and forgets it; returns the port it listened on. */
  async stopNode(id: NodeId): Promise<number> {
    const n = this.node(id);
    const port = Number(n.address.split(':')[1]);
    await n.close();
    this.nodes.delete(id);
    return port;
  }

  node(id: NodeId): StorageNode {
    const n = this.nodes.get(id);
    if (n === undefined) throw new Error(`node ${id} is not running`);
    return n;
  }

  /** A ctl.* request from the fake metadata manager. */
  ctl(to: NodeId, kind: number, payload: Uint8Array): Promise<Uint8Array> {
    return this.mm.request(to, kind, payload, { timeoutMs: 5000 });
  }

  /** Orders `id` to campaign for the group. */
  async campaign(id: NodeId): Promise<void> {
    const payload = rpc.encodeCtlCampaign({ group: this.opts.group, minTerm: term(1) });
    await this.ctl(id, StorageKind.ctlCampaign, payload);
  }

  /** The running node that leads the group by its host's status, if any. */
  leader(): NodeId | undefined {
    for (const [id, n] of this.nodes) if (n.host.status(this.opts.group)?.role === 'leader') return id;
    return undefined;
  }

  /** Polls every 20 ms for a leader among the running nodes. */
  waitForLeader(timeoutMs = 15_000): Promise<NodeId> {
    return waitFor('a leader', () => this.leader(), timeoutMs);
  }

  /** Proposes an assignShard entry (whole key range, epoch 1) through `leader`. */
  async assignShard(
    leader: NodeId,
    shard: { shard: ShardId; table: TableId; engine: EngineKind; catalogVersion: number },
  ): Promise<void> {
    const entry = {
      type: 'assignShard' as const,
      ...shard,
      start: new Uint8Array(0),
      end: new Uint8Array(0),
      epoch: 1,
    };
    const payload = rpc.encodeCtlPropose({ group: this.opts.group, entry });
    rpc.decodeIndexResult(await this.ctl(leader, StorageKind.ctlPropose, payload));
  }

  /** kv.put from the fake request manager: epoch 1, catalog version 1, no condition, 5 s deadline. */
  put(
    to: NodeId,
    shard: ShardId,
    key: Uint8Array,
    value: Uint8Array,
    request: { client: bigint; number: number },
    timeoutMs?: number,
  ): Promise<Uint8Array> {
    const payload = rpc.encodeKvPut({
      group: this.opts.group,
      shard,
      epoch: 1,
      catalogVersion: 1,
      deadlineMs: 5000,
      key,
      value,
      condition: { type: 'none' },
      request,
    });
    return this.rm.request(to, StorageKind.kvPut, payload, { timeoutMs });
  }

  /** Closes the transports and the running nodes, then removes the root directory. */
  async close(): Promise<void> {
    await this.mm.close();
    await this.rm.close();
    for (const n of this.nodes.values()) await n.close();
    this.nodes.clear();
    await removeDir(this.root, { recursive: true, force: true });
  }
}
