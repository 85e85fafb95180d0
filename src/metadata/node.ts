/**
 * One metadata manager node: the catalog group (3 or 5 MM nodes, self-electing, on a GroupHost),
 * the MM RPC (rpc.ts) answered by the leader (followers: NOT_LEADER + hint), and on the leader the
 * control loop (control-loop.ts). Catalog writes go through the group, so a minority side, which
 * cannot commit, refuses them; reads are linearizable (host.read: lease or read-index).
 */
import path from 'node:path';
import type { ReplicaTiming } from '../host/index.js';
import { GroupHost } from '../host/index.js';
import { assert } from '../lib/assert.js';
import { TesseraError } from '../lib/errors.js';
import { type GroupId, groupId, type NodeId, nodeId } from '../lib/ids.js';
import { limits } from '../lib/limits.js';
import { createLogger, type Logger } from '../lib/log.js';
import { defaultControlConfig } from '../control/types.js';
import type { ControlConfig } from '../control/types.js';
import type { PeerIdentity } from '../transport/handshake.js';
import { type PeerAddress, Transport } from '../transport/transport.js';
import type { Catalog } from './catalog.js';
import { type CatalogApplyResult, CatalogStateMachine } from './catalog-sm.js';
import { encodeCommand } from './command-codec.js';
import { ControlLoop } from './control-loop.js';
import { registerMmHandlers } from './handlers.js';
import { MmKind } from './rpc.js';
import { type StorageCtl, TransportStorageCtl } from './storage-ctl.js';
import type { CatalogCommand, CommandValues } from './types.js';

/** The MM group's id inside the MM nodes' own group host. */
export const mmGroup: GroupId = groupId(1);

export interface MetadataNodeOptions {
  /** 1..limits.mmNodeIdMax. */
  id: NodeId;
  dir: string;
  listen: PeerAddress;
  /** Every MM node (this one included): id -> address. */
  members: ReadonlyMap<NodeId, PeerAddress>;
  secret: Uint8Array;
  /** Groups to form from the free pool (the rest stay spares). */
  groupsTarget?: number;
  replicas?: number;
  control?: Partial<ControlConfig>;
  /** Replica timing of the MM group (tests shorten it). */
  timing?: ReplicaTiming;
  logger?: Logger;
  allowFaultAdmin?: boolean;
  /** Orders to storage nodes; default over the transport. */
  ctl?: (t: Transport, addressOf: (n: NodeId) => string | undefined) => StorageCtl;
}

export class MetadataNode {
  readonly id: NodeId;
  readonly transport: Transport;
  readonly host: GroupHost<CatalogApplyResult>;
  readonly control: ControlLoop;
  readonly members: ReadonlyMap<NodeId, PeerAddress>;
  readonly logger: Logger;
  private sm: CatalogStateMachine;
  private readonly timers: NodeJS.Timeout[] = [];
  private closed = false;

  private constructor(
    opts: MetadataNodeOptions,
    t: Transport,
    host: GroupHost<CatalogApplyResult>,
    sm: CatalogStateMachine,
    logger: Logger,
  ) {
    this.id = opts.id;
    this.transport = t;
    this.host = host;
    this.sm = sm;
    this.members = opts.members;
    this.logger = logger;
    const addressOf = (n: NodeId): string | undefined => this.catalog.node(n)?.address;
    const ctl = (opts.ctl ?? ((tt, a) => new TransportStorageCtl(tt, a)))(t, addressOf);
    const config = { ...defaultControlConfig, ...opts.control };
    this.control = new ControlLoop({
      catalog: () => this.catalog,
      change: (cmd) => this.change(cmd),
      ctl,
      config,
      groupsTarget: opts.groupsTarget ?? 2,
      replicas: opts.replicas ?? 3,
      logger,
      now: () => performance.now(),
    });
  }

  static async start(opts: MetadataNodeOptions): Promise<MetadataNode> {
    assert(opts.id >= 1 && opts.id <= limits.mmNodeIdMax, `MM node ids are 1..${limits.mmNodeIdMax}`);
    assert(opts.members.has(opts.id), 'the members include this node');
    for (const id of opts.members.keys()) assert(id >= 1 && id <= limits.mmNodeIdMax, `MM node id ${id}`);
    const logger = opts.logger ?? createLogger('metadata');
    const t = await Transport.start({
      self: { nodeId: opts.id, role: 'metadata' },
      secret: opts.secret,
      listen: opts.listen,
      allowFaultAdmin: opts.allowFaultAdmin ?? false,
      log: logger,
    });
    // Until the catalog group is up, MM calls answer UNAVAILABLE (callers retry), not BAD_REQUEST.
    for (const kind of Object.values(MmKind)) {
      t.onRequest(kind, () => {
        throw new TesseraError('UNAVAILABLE', `metadata node ${opts.id} is starting`);
      });
    }
    let host: GroupHost<CatalogApplyResult> | undefined;
    try {
      for (const [id, addr] of opts.members) if (id !== opts.id) t.setPeer(id, addr);
      const ckpt = path.join(opts.dir, 'catalog.ckpt');
      let opened: CatalogStateMachine | undefined;
      host = await GroupHost.open<CatalogApplyResult>({
        nodeId: opts.id,
        dir: path.join(opts.dir, 'host'),
        transport: t,
        stateMachines: async () => {
          opened = await CatalogStateMachine.open(ckpt);
          return opened;
        },
        checkpointEntries: limits.mmSnapshotEntries,
        compactionMarginEntries: Math.min(limits.hostCompactionMarginEntries, limits.mmSnapshotEntries),
        ...(opts.timing === undefined ? {} : { timing: opts.timing }),
        logger,
      });
      const voters = [...opts.members.keys()].sort((a, b) => a - b);
      await host.addGroup(mmGroup, { membership: { voters, learners: [] }, electionMode: 'self' });
      const sm = host.stateMachine(mmGroup) ?? opened;
      assert(sm instanceof CatalogStateMachine, 'catalog state machine');
      const node = new MetadataNode(opts, t, host, sm, logger);
      node.wire();
      return node;
    } catch (e) {
      await host?.close();
      await t.close();
      throw e;
    }
  }

  private wire(): void {
    registerMmHandlers(this);
    this.host.onSoftState((g, soft) => {
      if (g !== mmGroup) return;
      const leading = soft.role === 'leader';
      if (leading && !this.control.active) {
        this.logger.info('metadata leader', { node: this.id, term: soft.term });
        this.control.start(performance.now());
      } else if (!leading && this.control.active) {
        this.logger.info('metadata leadership lost', { node: this.id, term: soft.term, leader: soft.leader });
        this.control.stop();
      }
    });
    const every = limits.mmSnapshotIntervalMs;
    this.timers.push(
      setInterval(() => {
        const sm = this.stateMachine();
        if (sm.appliedIndex > sm.durableIndex) {
          this.host
            .checkpoint(mmGroup)
            .catch((e: unknown) => this.logger.warn('catalog checkpoint failed', { error: String(e) }));
        }
      }, every),
    );
  }

  /** The catalog state machine (it may be replaced by a snapshot install: always ask here). */
  stateMachine(): CatalogStateMachine {
    const sm = this.host.stateMachine(mmGroup);
    if (sm instanceof CatalogStateMachine) this.sm = sm;
    return this.sm;
  }

  get catalog(): Catalog {
    return this.stateMachine().catalog;
  }

  get isLeader(): boolean {
    return this.host.status(mmGroup)?.role === 'leader';
  }

  /** The MM leader as this node knows it (0 = unknown). */
  get leaderId(): NodeId {
    return this.host.status(mmGroup)?.leader ?? nodeId(0);
  }

  get address(): PeerAddress {
    const a = this.transport.address;
    assert(a !== null && a !== undefined, 'listening');
    return a;
  }

  /** Throws NOT_LEADER with the leader hint unless this node leads the MM group. */
  requireLeader(): void {
    if (this.closed) throw new TesseraError('UNAVAILABLE', 'metadata node is closing');
    if (this.isLeader) return;
    const leader = this.leaderId;
    const a = this.members.get(leader);
    throw new TesseraError('NOT_LEADER', `metadata node ${this.id} is not the leader`, {
      leader,
      leaderAddress: a === undefined ? null : `${a.host}:${a.port}`,
    });
  }

  /** Waits until a linearizable read of the catalog may be served. */
  async linearizable(): Promise<void> {
    this.requireLeader();
    await this.host.read(mmGroup);
  }

  /** Proposes a catalog command; resolves with its value once committed and applied here. */
  async change<T extends CatalogCommand['type']>(
    cmd: Extract<CatalogCommand, { type: T }>,
  ): Promise<CommandValues[T]> {
    this.requireLeader();
    const [o] = await this.host.propose(mmGroup, [encodeCommand(cmd)]);
    assert(o !== undefined, 'one outcome');
    if (!o.ok) throw o.error;
    const r = o.result;
    assert(r !== null && r.kind === 'command', 'a command entry answers a command result');
    if (!r.result.ok) throw new TesseraError(r.result.code, r.result.message);
    return r.result.value as CommandValues[T];
  }

  /** Proposes a raw entry (a backup to restore). */
  async proposeRaw(data: Uint8Array): Promise<CatalogApplyResult> {
    this.requireLeader();
    const [o] = await this.host.propose(mmGroup, [data]);
    assert(o !== undefined, 'one outcome');
    if (!o.ok) throw o.error;
    return o.result;
  }

  /** Whether `from` may call MM RPCs other than register. */
  isMember(from: PeerIdentity): boolean {
    return this.catalog.node(from.nodeId) !== undefined || this.members.has(from.nodeId);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.control.stop();
    for (const t of this.timers) clearInterval(t);
    await this.host.close();
    await this.transport.close();
  }
}
