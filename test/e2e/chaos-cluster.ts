/**
 * A `tessera dev` cluster for chaos tests and the failover benchmark: started with
 * TESSERA_FAULT_ADMIN=1, driven from the test process through an authenticated admin transport
 * (fault commands to any member, ctl.status of storage nodes), with helpers to find
 * leaders and followers, kill -9 / SIGSTOP / SIGCONT members by pid, cut links, and wait for
 * convergence. Every pid we signal comes from DIR/cluster.json (rewritten by dev on restarts).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { TesseraClient } from '../../src/client/client.js';
import type { ClusterInfo } from '../../src/client/types.js';
import {
  type CtlStatusResult,
  decodeCtlStatusResult,
  decodeKvGetResult,
  encodeEmpty,
  encodeKvGet,
  encodeKvPut,
  type KvGetResult,
  StorageKind,
  type ShardTarget,
} from '../../src/storage/rpc.js';
import { groupId, type NodeId, shardId } from '../../src/lib/ids.js';
import { isTesseraError } from '../../src/lib/errors.js';
import { type FaultCommand, loadClusterSecret, Transport } from '../../src/transport/index.js';
import { sendFaultCommand } from '../../src/transport/transport.js';
import { isAlive, readClusterJson, root, stopDev, waitFor } from './dev-cluster.js';

/** Our identity on the cluster's transport: a metadata-role member id no dev MM node uses (dev has 1..3). */
const adminNodeId = 15 as NodeId;
/** Our identity for direct kv.* probes of one replica (storage nodes serve kv.* to request managers). */
const probeNodeId = 14 as NodeId;
const quietLog = { info() {}, warn() {} };
/** MM nodes have the fixed ids 1..15 (docs/metadata.md). */
const mmNodeIdMax = 15;
/** Above any catalog version of a test cluster (storage refuses only versions below the assignment's). */
const catalogVersionAny = 2 ** 40;

export type Direct<T> = { ok: true; value: T } | { ok: false; code: string };

export interface ChaosClusterOptions {
  dir: string;
  groups: number;
  spares: number;
  replaceAfterS: number;
  readyTimeoutMs: number;
}

export interface GroupView {
  id: number;
  members: number[];
  leader: number | null;
  term: number;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function startDevProcess(o: ChaosClusterOptions): Promise<{ proc: ChildProcess; url: string }> {
  const args = ['--port', '0', '--groups', String(o.groups), '--spares', String(o.spares)];
  args.push('--replace-after', String(o.replaceAfterS));
  const proc = spawn(
    process.execPath,
    ['--import', 'tsx', 'src/cli/main.ts', 'dev', '--dir', o.dir, ...args],
    {
      cwd: root,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { TESSERA_LOG_LEVEL: 'warn', ...process.env, TESSERA_FAULT_ADMIN: '1' },
    },
  );
  let out = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      // dev stops its children on SIGTERM (SIGKILL after stopDev's grace).
      void stopDev(proc, 25_000).finally(() =>
        reject(new Error(`dev not ready after ${o.readyTimeoutMs} ms:\n${out}`)),
      );
    }, o.readyTimeoutMs);
    proc.stdout?.on('data', (d: Buffer) => {
      out = (out + d.toString()).slice(-20_000);
      const m = /ready at (http:\/\/\S+) /.exec(out);
      if (m?.[1] !== undefined) {
        clearTimeout(timer);
        resolve({ proc, url: m[1] });
      }
    });
    proc.stderr?.on('data', (d: Buffer) => {
      out = (out + d.toString()).slice(-20_000);
    });
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`dev exited (${code}) before ready:\n${out}`));
    });
  });
}

export class ChaosCluster {
  private readonly stopped = new Set<number>();
  private probeRequests = 0;
  private readonly peersSet = new Set<number>();

  private constructor(
    readonly o: ChaosClusterOptions,
    readonly proc: ChildProcess,
    readonly url: string,
    readonly token: string,
    readonly admin: Transport,
    readonly probe: Transport,
    readonly client: TesseraClient,
  ) {}

  static async start(o: ChaosClusterOptions): Promise<ChaosCluster> {
    const { proc, url } = await startDevProcess(o);
    try {
      const token = readFileSync(path.join(o.dir, 'admin.token'), 'utf8').trim();
      const secret = loadClusterSecret(path.join(o.dir, 'cluster.secret'));
      const admin = await Transport.start({
        self: { nodeId: adminNodeId, role: 'metadata' },
        secret,
        log: quietLog,
      });
      const probe = await Transport.start({
        self: { nodeId: probeNodeId, role: 'request' },
        secret,
        log: quietLog,
      });
      const client = new TesseraClient({ url, token, deadlineMs: 5_000 });
      return new ChaosCluster(o, proc, url, token, admin, probe, client);
    } catch (e) {
      await stopDev(proc, 25_000);
      throw e;
    }
  }

  /** The pid of a member by node id (metadata 1..3, storage/request from their node.json). */
  pidOf(node: number, role: 'metadata' | 'storage'): number {
    const p = readClusterJson(this.o.dir).find((x) => x.role === role && x.id === node);
    if (p?.pid == null) throw new Error(`no running ${role} ${node} in cluster.json`);
    return p.pid;
  }

  async view(): Promise<ClusterInfo> {
    return this.client.cluster();
  }

  async groupOfTable(table: string): Promise<GroupView> {
    const v = await this.view();
    const gid = v.tables.find((t) => t.name === table)?.shards[0]?.group;
    const g = v.groups.find((x) => x.id === gid);
    if (g === undefined) throw new Error(`no group for table ${table}`);
    return g;
  }

  /** Waits until the group has a leader (optionally at a term above `aboveTerm`) and returns it. */
  async waitLeader(table: string, aboveTerm = -1, timeoutMs = 20_000): Promise<GroupView> {
    let out: GroupView | undefined;
    await waitFor(
      `a leader of ${table}'s group above term ${aboveTerm}`,
      async () => {
        out = await this.groupOfTable(table).catch(() => undefined);
        return out !== undefined && out.leader !== null && out.term > aboveTerm;
      },
      timeoutMs,
    );
    return out as GroupView;
  }

  kill9(pid: number): void {
    process.kill(pid, 'SIGKILL');
  }

  pause(pid: number): void {
    this.stopped.add(pid);
    process.kill(pid, 'SIGSTOP');
  }

  resume(pid: number): void {
    this.stopped.delete(pid);
    if (isAlive(pid)) process.kill(pid, 'SIGCONT');
  }

  /** Waits until dev restarted the member (a new pid in cluster.json) and returns the new pid. */
  async waitRestarted(
    node: number,
    role: 'metadata' | 'storage',
    oldPid: number,
    timeoutMs = 20_000,
  ): Promise<number> {
    let pid = oldPid;
    await waitFor(
      `${role} ${node} restarted`,
      () => {
        const p = readClusterJson(this.o.dir).find((x) => x.role === role && x.id === node);
        pid = p?.pid ?? oldPid;
        return pid !== oldPid && isAlive(pid);
      },
      timeoutMs,
    );
    return pid;
  }

  /**
   * Makes `node` a peer of our transports: MM nodes (ids 1..15) at their ports from DIR/dev.json
   * (admin only), storage nodes at their address from the cluster view (both); cached, since dev
   * keeps every member's port across restarts.
   */
  private async storagePeer(node: number): Promise<NodeId> {
    if (this.peersSet.has(node)) return node as NodeId;
    if (node <= mmNodeIdMax) {
      const dev = JSON.parse(readFileSync(path.join(this.o.dir, 'dev.json'), 'utf8')) as {
        metadataPorts: number[];
      };
      const port = dev.metadataPorts[node - 1];
      if (port === undefined) throw new Error(`no MM node ${node} in dev.json`);
      this.admin.setPeer(node as NodeId, { host: '127.0.0.1', port });
    } else {
      const v = await this.view();
      const n = v.nodes.find((x) => x.id === node);
      if (n === undefined) throw new Error(`node ${node} not in the cluster view`);
      const [host, port] = n.addr.split(':');
      const addr = { host: host ?? '127.0.0.1', port: Number(port) };
      this.admin.setPeer(node as NodeId, addr);
      this.probe.setPeer(node as NodeId, addr);
    }
    this.peersSet.add(node);
    return node as NodeId;
  }

  /** Blocks both directions between a and b, on both of them (the switch checks on both sides). */
  async cut(a: number, b: number): Promise<void> {
    for (const at of [a, b]) {
      await this.fault(at, { op: 'block', from: a as NodeId, to: b as NodeId });
      await this.fault(at, { op: 'block', from: b as NodeId, to: a as NodeId });
    }
  }

  /** A fault command to one node, waiting for our link to it (it may be reconnecting) and retrying. */
  private async fault(node: number, cmd: FaultCommand): Promise<void> {
    const peer = await this.storagePeer(node);
    for (let attempt = 1; ; attempt++) {
      try {
        await this.admin.waitConnected(peer, 3_000);
        await sendFaultCommand(this.admin, peer, cmd);
        return;
      } catch (e) {
        if (attempt >= 5) throw e;
        await sleep(200);
      }
    }
  }

  private target(group: number, shard: number): ShardTarget {
    return {
      group: groupId(group),
      shard: shardId(shard),
      epoch: 1,
      catalogVersion: catalogVersionAny,
      deadlineMs: 1_000,
    };
  }

  private async direct<T>(
    node: number,
    kind: number,
    payload: Uint8Array,
    f: (b: Uint8Array) => T,
  ): Promise<Direct<T>> {
    const peer = await this.storagePeer(node);
    try {
      await this.probe.waitConnected(peer, 1_000);
      return { ok: true, value: f(await this.probe.request(peer, kind, payload, { timeoutMs: 1_500 })) };
    } catch (e) {
      if (!isTesseraError(e)) throw e;
      return { ok: false, code: e.code };
    }
  }

  /** kv.get sent straight to one replica, bypassing the request manager (epoch 1 shards). */
  directGet(node: number, group: number, shard: number, key: string): Promise<Direct<KvGetResult>> {
    const req = encodeKvGet({ ...this.target(group, shard), key: Buffer.from(key) });
    return this.direct(node, StorageKind.kvGet, req, decodeKvGetResult);
  }

  /** kv.put sent straight to one replica, bypassing the request manager. */
  directPut(node: number, group: number, shard: number, key: string, value: string): Promise<Direct<null>> {
    const req = encodeKvPut({
      ...this.target(group, shard),
      key: Buffer.from(key),
      value: Buffer.from(value),
      condition: { type: 'none' },
      request: { client: 0x7e57n, number: ++this.probeRequests },
    });
    return this.direct(node, StorageKind.kvPut, req, () => null);
  }

  /** The shard id of an epoch-1 table on `group`: the first id its leader does not call stale. */
  async shardOf(group: number, leader: number): Promise<number> {
    for (let s = 1; s <= 16; s++) {
      const r = await this.directGet(leader, group, s, 'probe');
      if (r.ok || (r.code !== 'STALE_SHARD' && r.code !== 'TABLE_NOT_FOUND')) return s;
    }
    throw new Error(`no shard found on group ${group}`);
  }

  /** Clears the fault switch of every storage node we ever sent a fault command or probe to. */
  async healAll(): Promise<void> {
    for (const node of this.peersSet) await this.fault(node, { op: 'clear' });
  }

  async status(node: number): Promise<CtlStatusResult> {
    const peer = await this.storagePeer(node);
    await this.admin.waitConnected(peer, 1_000).catch(() => undefined);
    return decodeCtlStatusResult(
      await this.admin.request(peer, StorageKind.ctlStatus, encodeEmpty(), { timeoutMs: 2_000 }),
    );
  }

  /**
   * Converged = every group has a leader, and each of its voters reports the leader's term, the
   * same commit index, and applied = commit.
   */
  async converged(): Promise<string | null> {
    const v = await this.view();
    for (const g of v.groups) {
      if (g.leader === null) return `group ${g.id} has no leader`;
      const seen: string[] = [];
      for (const m of g.members) {
        const s = await this.status(m).catch(() => null);
        const rep = s?.replicas.find((x) => x.group === g.id);
        if (rep === undefined) return `group ${g.id}: no status from ${m}`;
        seen.push(`${rep.term}/${rep.commit}/${rep.applied}`);
        if (rep.applied !== rep.commit)
          return `group ${g.id}: ${m} applied ${rep.applied} < commit ${rep.commit}`;
      }
      if (new Set(seen).size !== 1) return `group ${g.id}: replicas differ ${seen.join(' ')}`;
    }
    return null;
  }

  async waitConverged(timeoutMs: number): Promise<void> {
    let last: string | null = 'not checked';
    const end = Date.now() + timeoutMs;
    while (Date.now() < end) {
      last = await this.converged().catch((e: Error) => e.message);
      if (last === null) return;
      await sleep(300);
    }
    throw new Error(`cluster did not converge within ${timeoutMs} ms: ${last}`);
  }

  /**
   * Stops dev (SIGTERM: children close cleanly, flushing their engines), then SIGKILLs any of its
   * current children still alive (pids from cluster.json just before the stop: only processes dev
   * started for us; older pids of killed children are not touched, they may have been reused).
   */
  async stop(): Promise<void> {
    const children = readClusterJson(this.o.dir).flatMap((p) =>
      p.pid !== null && p.role !== 'dev' ? [p.pid] : [],
    );
    for (const pid of this.stopped) if (isAlive(pid)) process.kill(pid, 'SIGCONT');
    this.stopped.clear();
    this.client.close();
    await this.admin.close();
    await this.probe.close();
    await stopDev(this.proc, 25_000);
    for (const pid of children) if (isAlive(pid)) process.kill(pid, 'SIGKILL');
  }
}
