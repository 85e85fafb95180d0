/**
 * The storage node: a GroupHost over the key-value state machine and the node's two engine
 * instances, the request RPC (kv.*) and control RPC (ctl.*) (node-rpc.ts), registration with the
 * metadata manager (node id kept in DIR/node.json, never reused) and heartbeats whose answers say
 * which groups to host. See docs/storage.md.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { open, rm } from 'node:fs/promises';
import path from 'node:path';
import type { ElectionMode, Membership } from '../consensus/types.js';
import { type Engine, type EngineKind, openEngine } from '../engine/index.js';
import { GroupHost, type ReplicaTiming } from '../host/index.js';
import { freeBytes } from '../lib/disk.js';
import { runAll } from '../lib/run-all.js';
import { isTesseraError, TesseraError } from '../lib/errors.js';
import type { GroupId, NodeId } from '../lib/ids.js';
import { nodeId as toNodeId } from '../lib/ids.js';
import { limits } from '../lib/limits.js';
import { loadNodeFile, saveNodeFile } from '../lib/node-file.js';
import { createLogger, type Logger } from '../lib/log.js';
import { MmClient } from '../metadata/client.js';
import { type Assignment, provisionalNodeId } from '../metadata/rpc.js';
import { type PeerAddress, Transport } from '../transport/index.js';
import { type KvResult, KvStateMachine } from './kv-sm.js';
import { heartbeatMetrics } from './heartbeat-metrics.js';
import { registerHandlers } from './node-rpc.js';
import type { MemberAddress, ReplicaReport } from './rpc.js';

export interface StorageNodeOptions {
  readonly dir: string;
  readonly listen: PeerAddress;
  /** Address other members use (default: the listen address). */
  readonly advertise?: string;
  readonly secret: Uint8Array;
  /** MM nodes (fixed ids). Empty: no registration nor heartbeats (tests drive ctl.* directly). */
  readonly mm: ReadonlyMap<NodeId, PeerAddress>;
  /** Use this id instead of registering (tests without an MM). */
  readonly nodeId?: NodeId;
  readonly heartbeatIntervalMs?: number;
  readonly timing?: ReplicaTiming;
  readonly tickIntervalMs?: number;
  /** Host checkpoint / compaction tuning (tests force snapshots with small values). */
  readonly checkpointEntries?: number;
  readonly compactionMarginEntries?: number;
  readonly allowFaultAdmin?: boolean;
  readonly logger?: Logger;
  /** Replaces the disk write probe (tests: simulate a full disk). */
  readonly diskProbe?: () => Promise<boolean>;
  /** Bound on kv.* requests in flight on this node (limits.storageInflightMax). */
  readonly inflightMax?: number;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const fmt = (a: PeerAddress): string => `${a.host}:${a.port}`;

export function parseAddress(s: string): PeerAddress | null {
  const m = /^(.+):(\d{1,5})$/.exec(s);
  if (m === null) return null;
  const port = Number(m[2]);
  return port > 65535 ? null : { host: m[1] as string, port };
}

/** DIR/peers.json, version 1: {"version":1,"peers":[{"node":N,"address":"host:port"}]}. */
function loadPeers(dir: string): MemberAddress[] {
  const file = path.join(dir, 'peers.json');
  if (!existsSync(file)) return [];
  const j = JSON.parse(readFileSync(file, 'utf8')) as { version: number; peers: MemberAddress[] };
  if (j.version !== 1 || !Array.isArray(j.peers))
    throw new TesseraError('CORRUPTION', `${file}: not format v1`);
  return j.peers.map((p) => ({ node: toNodeId(p.node), address: String(p.address) }));
}

/** Best effort: the file only speeds up a restart (a full disk must not stop the node). */
function savePeers(dir: string, addresses: ReadonlyMap<NodeId, string>, log: Logger): void {
  const file = path.join(dir, 'peers.json');
  const peers = [...addresses].map(([node, address]) => ({ node, address }));
  try {
    writeFileSync(`${file}.tmp`, `${JSON.stringify({ version: 1, peers })}\n`);
    renameSync(`${file}.tmp`, file);
  } catch (e) {
    log.warn('could not save peers.json', { error: (e as Error).message });
  }
}

export class StorageNode {
  readonly log: Logger;
  /** Node id -> "host:port" of every member of the groups hosted here. */
  readonly addresses = new Map<NodeId, string>();
  diskOk = true;
  /** kv.* requests in flight. */
  inflight = 0;
  readonly inflightMax: number;
  private mmClient: MmClient | null = null;
  private readonly missing = new Map<GroupId, number>();
  /** The highest catalog version seen in a heartbeat answer (older answers are ignored). */
  private catalogVersionSeen = 0;
  /** The catalog version of the first answer that listed each hosted group. */
  private readonly assignedAtVersion = new Map<GroupId, number>();
  private heartbeatLoop: Promise<void> | null = null;
  private probeTimer: NodeJS.Timeout | null = null;
  private closed = false;
  private stopWaiters: (() => void)[] = [];
  private readonly recoverWaiters: (() => void)[] = [];

  private constructor(
    readonly id: NodeId,
    readonly address: string,
    readonly transport: Transport,
    readonly host: GroupHost<KvResult>,
    readonly engines: ReadonlyMap<EngineKind, Engine>,
    private readonly opts: StorageNodeOptions,
    log: Logger,
  ) {
    this.log = log;
    this.inflightMax = opts.inflightMax ?? limits.storageInflightMax;
  }

  static async start(opts: StorageNodeOptions): Promise<StorageNode> {
    mkdirSync(opts.dir, { recursive: true });
    const log = opts.logger ?? createLogger('storage');
    const address = opts.advertise ?? fmt(opts.listen);
    const id = opts.nodeId ?? (await register(opts, address, log));
    const transport = await Transport.start({
      self: { nodeId: id, role: 'storage' },
      secret: opts.secret,
      listen: opts.listen,
      allowFaultAdmin: opts.allowFaultAdmin ?? false,
      log,
      // kv.* handlers come after the engines and the log replay: UNAVAILABLE until then, never
      // BAD_REQUEST (a request manager probing a restarted node would pass that to a client).
      starting: true,
    });
    const engines = new Map<EngineKind, Engine>();
    let host: GroupHost<KvResult> | undefined;
    try {
      for (const kind of ['btree', 'lsm'] as const)
        engines.set(kind, await openEngine(kind, path.join(opts.dir, 'engines', kind)));
      host = await GroupHost.open<KvResult>({
        nodeId: id,
        dir: path.join(opts.dir, 'host'),
        transport,
        stateMachines: (g) => KvStateMachine.open(g, engines),
        logger: log,
        ...(opts.timing === undefined ? {} : { timing: opts.timing }),
        ...(opts.tickIntervalMs === undefined ? {} : { tickIntervalMs: opts.tickIntervalMs }),
        ...(opts.checkpointEntries === undefined ? {} : { checkpointEntries: opts.checkpointEntries }),
        ...(opts.compactionMarginEntries === undefined
          ? {}
          : { compactionMarginEntries: opts.compactionMarginEntries }),
      });
    } catch (e) {
      for (const en of engines.values()) await en.close();
      await transport.close();
      throw e;
    }
    const bound = transport.address;
    const node = new StorageNode(
      id,
      opts.advertise ?? (bound ? fmt(bound) : address),
      transport,
      host,
      engines,
      opts,
      log,
    );
    registerHandlers(node);
    transport.ready();
    // Peers known before a restart: the groups can talk before the MM answers (or while it is down).
    node.learnAddresses(loadPeers(opts.dir), false);
    await node.probeDisk();
    const interval = opts.heartbeatIntervalMs ?? limits.heartbeatIntervalMs;
    node.probeTimer = setInterval(() => void node.probeDisk(), interval);
    node.probeTimer.unref();
    if (opts.mm.size > 0) {
      node.mmClient = new MmClient({ transport, members: opts.mm });
      node.heartbeatLoop = node.heartbeats();
    }
    log.info('storage node started', { node: id, address: node.address, groups: host.groups() });
    return node;
  }

  /** Hosts a group (idempotent) and learns its members' addresses. */
  async hostGroup(
    group: GroupId,
    membership: Membership,
    addresses: readonly MemberAddress[],
    mode: ElectionMode,
  ): Promise<void> {
    this.learnAddresses(addresses);
    this.missing.delete(group);
    await this.host.addGroup(group, { membership, electionMode: mode });
  }

  /** Gives the transport the members' addresses; new ones are kept in DIR/peers.json. */
  learnAddresses(addresses: readonly MemberAddress[], persist = true): void {
    let changed = false;
    for (const a of addresses) {
      if (a.node === this.id || this.addresses.get(a.node) === a.address) continue;
      const addr = parseAddress(a.address);
      if (addr === null) continue;
      this.addresses.set(a.node, a.address);
      this.transport.setPeer(a.node, addr);
      changed = true;
    }
    if (changed && persist) savePeers(this.opts.dir, this.addresses, this.log);
  }

  async dropGroup(group: GroupId): Promise<void> {
    await this.host.removeGroup(group);
  }

  /** The per-replica part of heartbeats and ctl.status. */
  replicas(): ReplicaReport[] {
    const out: ReplicaReport[] = [];
    for (const g of this.host.groups()) {
      const s = this.host.status(g);
      if (s === undefined) continue;
      out.push({
        group: g,
        term: s.term,
        role: s.role,
        leader: s.leader,
        lastIndex: s.lastIndex,
        lastTerm: s.lastTerm,
        commit: s.commit,
        applied: s.applied,
      });
    }
    return out;
  }

  /**
   * Disk write probe: a small file written and fsynced in DIR. Sets `diskOk`, false also once an
   * index engine has failed a write (it takes none until the node restarts): the node then reports
   * an unhealthy disk, so the control plane moves its replicas and leadership away.
   */
  async probeDisk(): Promise<boolean> {
    const was = this.diskOk;
    const probed = await (this.opts.diskProbe ?? (() => this.writeProbe()))();
    const failed = [...this.engines.values()].find((e) => e.failure() !== undefined);
    this.diskOk = probed && failed === undefined;
    if (probed && failed !== undefined && this.recoverWaiters.length > 0) {
      // Only a reopen brings a failed engine back (its log replays what it lacks): once the disk
      // takes writes again, with room to spare, the node asks its process to restart.
      if ((await freeBytes(this.opts.dir)) >= limits.diskFullFreeBytesMax) {
        this.log.warn('the disk is writable again: restarting to reopen the failed index engine', {
          engine: failed.kind,
        });
        for (const resolve of this.recoverWaiters.splice(0)) resolve();
      }
    }
    if (was !== this.diskOk) {
      if (this.diskOk) this.log.warn('disk writable again');
      else if (!probed) this.log.warn('disk probe failed: refusing writes');
      else {
        const why = failed?.failure();
        this.log.error('index engine failed: refusing writes until a restart', {
          engine: failed?.kind,
          error: why instanceof Error ? why.message : String(why),
        });
      }
    }
    return this.diskOk;
  }

  private async writeProbe(): Promise<boolean> {
    const file = path.join(this.opts.dir, 'probe.tmp');
    try {
      const fh = await open(file, 'w');
      try {
        await fh.writeFile(randomBytes(64));
        await fh.sync();
      } finally {
        await fh.close();
      }
      await rm(file, { force: true });
      return true;
    } catch (e) {
      this.log.debug('disk probe failed', { error: (e as Error).message });
      return false;
    }
  }

  private async heartbeats(): Promise<void> {
    let interval = this.opts.heartbeatIntervalMs ?? limits.heartbeatIntervalMs;
    while (!this.closed) {
      const started = Date.now();
      try {
        const res = await (this.mmClient as MmClient).call(
          'heartbeat',
          {
            node: this.id,
            pid: process.pid,
            address: this.address,
            diskOk: this.diskOk,
            replicas: this.replicas(),
            metrics: heartbeatMetrics(this.id),
          },
          Math.max(interval * 2, 1000),
        );
        if (this.closed) break;
        if (res.state === 'removed') {
          this.log.error('this node was removed from the cluster; stopping', { node: this.id });
          saveNodeFile(this.opts.dir, { ...loadNodeFile(this.opts.dir), removed: true });
          for (const w of this.stopWaiters) w();
          break;
        }
        if (res.heartbeatIntervalMs > 0 && this.opts.heartbeatIntervalMs === undefined)
          interval = res.heartbeatIntervalMs;
        await this.applyAssignments(res.assignments, res.catalogVersion);
      } catch (e) {
        if (this.closed) break;
        if (!isTesseraError(e)) throw e;
        this.log.debug('heartbeat failed', { code: e.code });
      }
      await sleep(Math.max(0, interval - (Date.now() - started)));
    }
  }

  /**
   * Hosts every assigned group; drops a hosted group absent from two answers in a row. An answer
   * from a catalog older than one already seen (a deposed MM leader's stale view) is ignored, and a
   * group is only judged absent by a catalog newer than the one that assigned it: a stale view must
   * never delete a live replica's data.
   */
  async applyAssignments(assignments: readonly Assignment[], catalogVersion: number): Promise<void> {
    if (catalogVersion < this.catalogVersionSeen) {
      this.log.warn('ignoring assignments from an older catalog', {
        version: catalogVersion,
        seen: this.catalogVersionSeen,
      });
      return;
    }
    this.catalogVersionSeen = catalogVersion;
    const assigned = new Set<GroupId>();
    for (const a of assignments) {
      assigned.add(a.group);
      if (!this.assignedAtVersion.has(a.group)) this.assignedAtVersion.set(a.group, catalogVersion);
      try {
        await this.hostGroup(a.group, a.membership, a.addresses, a.mode);
      } catch (e) {
        if (!isTesseraError(e)) throw e;
        this.log.warn('could not host group', { group: a.group, code: e.code });
      }
    }
    for (const g of this.host.groups()) {
      if (assigned.has(g)) continue;
      if (catalogVersion <= (this.assignedAtVersion.get(g) ?? 0)) continue;
      const n = (this.missing.get(g) ?? 0) + 1;
      this.missing.set(g, n);
      if (n < 2) continue;
      this.missing.delete(g);
      this.assignedAtVersion.delete(g);
      this.log.info('group no longer assigned: removing the replica', { group: g, version: catalogVersion });
      await this.host.removeGroup(g);
    }
  }

  /** Resolves when the MM says this node was removed. */
  whenRemoved(): Promise<void> {
    return new Promise((resolve) => this.stopWaiters.push(resolve));
  }

  /**
   * Resolves once an index engine has failed a write and the disk takes writes again with room to
   * spare (limits.diskFullFreeBytesMax): a restart then reopens the engine and replays the log.
   */
  whenEngineRecoverable(): Promise<void> {
    return new Promise((resolve) => this.recoverWaiters.push(resolve));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.probeTimer !== null) clearInterval(this.probeTimer);
    await this.heartbeatLoop?.catch(() => undefined);
    // Everything is closed even if a step fails (an engine after a failed commit).
    await runAll([
      () => this.host.close(),
      ...[...this.engines.values()].map((e) => () => e.close()),
      () => this.transport.close(),
    ]);
  }
}

/** The node id: from DIR/node.json, else registered with the MM (provisional identity) and saved. */
async function register(opts: StorageNodeOptions, address: string, log: Logger): Promise<NodeId> {
  const file = loadNodeFile(opts.dir);
  if (file.removed === true)
    throw new TesseraError(
      'NODE_REMOVED',
      `node ${file.node} was removed from the cluster; its id is never reused`,
    );
  if (file.node !== null) return toNodeId(file.node);
  if (opts.mm.size === 0)
    throw new TesseraError('UNAVAILABLE', 'no node id and no metadata manager to register with');
  const t = await Transport.start({
    self: { nodeId: provisionalNodeId, role: 'storage' },
    secret: opts.secret,
    log,
  });
  // Nothing else holds the event loop yet (no listener; the transport's timers are unref'd): without
  // this, a node started before any MM answers exited silently with status 0 while it waited.
  const keepAlive = setInterval(() => undefined, 1_000);
  try {
    const mm = new MmClient({ transport: t, members: opts.mm });
    for (let attempt = 1; ; attempt++) {
      try {
        const res = await mm.call('register', {
          role: 'storage',
          nodeKey: file.key,
          address,
          pid: process.pid,
          capacity: { replicasMax: limits.storageReplicasMax, diskBytes: 0 },
        });
        saveNodeFile(opts.dir, { ...file, node: res.node });
        log.info('registered with the metadata manager', { node: res.node });
        return res.node;
      } catch (e) {
        if (!isTesseraError(e) || e.code === 'NODE_REMOVED' || e.code === 'BAD_REQUEST') throw e;
        if (attempt === 1 || attempt % 10 === 0)
          log.info('waiting for the metadata manager', { code: e.code });
        await sleep(Math.min(1_000, 100 * attempt));
      }
    }
  } finally {
    clearInterval(keepAlive);
    await t.close();
  }
}
