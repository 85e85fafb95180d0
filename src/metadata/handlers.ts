/**
 * The MM RPC handlers (rpc.ts) of a MetadataNode. Every call is answered by the leader only
 * (NOT_LEADER + hint otherwise). A provisional (unregistered) caller may only register; storage
 * nodes may register, heartbeat and read the catalog; catalog changes come from request managers
 * (or MM nodes / tools registered as 'request').
 */
import { TesseraError } from '../lib/errors.js';
import { limits } from '../lib/limits.js';
import type { PeerIdentity } from '../transport/handshake.js';
import { Catalog } from './catalog.js';
import type { MetadataNode } from './node.js';
import {
  type CatalogResponse,
  decodeMmRequest,
  encodeMm,
  isProvisional,
  MmKind,
  type MmCall,
  type MmCalls,
} from './rpc.js';
import { assignmentsOf, clusterWire, routingWire, tableWire, tokenWire } from './views.js';

type Handler<C extends MmCall> = (req: MmCalls[C][0], from: PeerIdentity) => Promise<MmCalls[C][1]>;

const storageCalls: ReadonlySet<MmCall> = new Set<MmCall>([
  'register',
  'heartbeat',
  'catalog',
  'describe',
  'cluster',
]);

export function registerMmHandlers(node: MetadataNode): void {
  let waiters = 0;
  const on = <C extends MmCall>(call: C, fn: Handler<C>): void => {
    node.transport.onRequest(MmKind[call], async (from, payload) => {
      node.requireLeader();
      if (isProvisional(from.nodeId) && call !== 'register') {
        throw new TesseraError('FORBIDDEN', `mm.${call}: register first (provisional node id)`);
      }
      if (call !== 'register' && !node.isMember(from)) {
        throw new TesseraError(
          'NODE_NOT_FOUND',
          `mm.${call}: node ${from.nodeId} is not registered; register again`,
        );
      }
      if (from.role === 'storage' && !storageCalls.has(call)) {
        throw new TesseraError('FORBIDDEN', `mm.${call} is not for storage nodes`);
      }
      const req = decodeMmRequest(call, payload);
      return encodeMm(await fn(req, from));
    });
  };

  on('register', async (req, from) => {
    const known = node.catalog.state.nodeKeys.get(req.nodeKey);
    if (!isProvisional(from.nodeId) && known !== from.nodeId) {
      throw new TesseraError('FORBIDDEN', `node ${from.nodeId} may only re-register its own key`);
    }
    if (from.role !== req.role)
      throw new TesseraError('FORBIDDEN', 'register: role differs from the transport role');
    const v = await node.change({
      type: 'registerNode',
      nodeKey: req.nodeKey,
      address: req.address,
      role: req.role,
      capacity: req.capacity,
      atMs: Date.now(),
    });
    node.control.pids.set(v.node, req.pid);
    node.logger.info('node registered', {
      node: v.node,
      role: req.role,
      address: req.address,
      created: v.created,
    });
    return { node: v.node, created: v.created };
  });

  on('heartbeat', async (req, from) => {
    if (from.nodeId !== req.node) throw new TesseraError('FORBIDDEN', 'heartbeat for another node');
    const c = node.catalog;
    const rec = c.node(req.node);
    if (rec === undefined) throw new TesseraError('NODE_NOT_FOUND', `node ${req.node} is not registered`);
    if (rec.state !== 'removed' && rec.address !== req.address) {
      await node.change({
        type: 'registerNode',
        nodeKey: rec.key,
        address: req.address,
        role: rec.role,
        capacity: rec.capacity,
        atMs: Date.now(),
      });
    }
    const learnerOf = (g: number): boolean =>
      c.group(g as never)?.members.some((m) => m.node === req.node && m.role === 'learner') ?? false;
    node.control.recordHeartbeat(req, learnerOf);
    const now = node.catalog;
    return {
      state: now.node(req.node)?.state ?? 'removed',
      assignments: assignmentsOf(now, req.node),
      heartbeatIntervalMs: limits.heartbeatIntervalMs,
      catalogVersion: now.version,
    };
  });

  on('catalog', async (req) => {
    await node.linearizable();
    if (node.catalog.version > req.sinceVersion) return catalogAnswer(node.catalog);
    if (waiters >= limits.mmCatalogWaitersMax)
      throw new TesseraError('TOO_MANY_REQUESTS', 'too many catalog waiters');
    waiters++;
    try {
      await waitVersion(node, req.sinceVersion, Math.min(req.waitMs, limits.mmCatalogWaitMaxMs));
    } finally {
      waiters--;
    }
    const c = node.catalog;
    return c.version > req.sinceVersion ? catalogAnswer(c) : { version: c.version, view: null };
  });

  on('createTable', async (req) => {
    const v = await node.change({
      type: 'createTable',
      name: req.name,
      engine: req.engine,
      atMs: Date.now(),
    });
    await node.control.assignShard(v.shard);
    const t = node.catalog.state.tables.get(v.table);
    if (t === undefined) throw new TesseraError('TABLE_NOT_FOUND', `table ${req.name} was dropped meanwhile`);
    return { table: tableWire(node.catalog, t), version: node.catalog.version };
  });

  on('dropTable', async (req) => {
    const v = await node.change({ type: 'dropTable', name: req.name, atMs: Date.now() });
    // The control loop logs the drop in each owning group, then finishes it (also after a failover).
    return { table: v.table, version: node.catalog.version };
  });

  on('describe', async (req) => {
    await node.linearizable();
    const t = node.catalog.tableByName(req.name);
    if (t === undefined) throw new TesseraError('TABLE_NOT_FOUND', `table ${req.name} does not exist`);
    return { table: tableWire(node.catalog, t), version: node.catalog.version };
  });

  on('cluster', async () => {
    await node.linearizable();
    const stats = [...node.control.stats.values()].sort((a, b) => a.node - b.node);
    const wire = clusterWire(node.catalog, {
      mmLeader: node.leaderId,
      mmMembers: new Map([...node.members].map(([id, a]) => [id, `${a.host}:${a.port}`])),
      mmUp: (id) => id === node.id || node.transport.peerState(id) === 'up',
      pid: (id) => node.control.pids.get(id) ?? null,
      heartbeatAgeMs: (id) => node.control.heartbeatAgeMs(id),
      selfPid: process.pid,
      selfId: node.id,
    });
    return { ...wire, stats };
  });

  on('tokens', async (req) => {
    switch (req.op) {
      case 'create': {
        const v = await node.change({
          type: 'createToken',
          secretHash: req.hash,
          readOnly: req.role === 'read-only',
          admin: req.role === 'admin',
          table: req.table,
          atMs: Date.now(),
        });
        const t = node.catalog.state.tokens.get(v.token);
        return { token: t === undefined ? null : tokenWire(t) };
      }
      case 'revoke':
        await node.change({ type: 'revokeToken', token: req.id });
        return {};
      case 'list':
        await node.linearizable();
        return { tokens: [...node.catalog.state.tokens.values()].sort((a, b) => a.id - b.id).map(tokenWire) };
      case 'verify': {
        await node.linearizable();
        const t = node.catalog.tokenByHash(req.hash);
        return { token: t === undefined ? null : tokenWire(t) };
      }
    }
  });

  on('backup', async () => {
    await node.linearizable();
    return { bytes: node.catalog.backup(Date.now()), version: node.catalog.version };
  });

  on('restore', async (req) => {
    try {
      Catalog.restoreBackup(req.bytes);
    } catch (e) {
      throw new TesseraError('BAD_REQUEST', `not a valid catalog backup: ${(e as Error).message}`);
    }
    if (req.bytes.length > limits.consensusEntryBytesMax - 1024) {
      throw new TesseraError('BODY_TOO_LARGE', 'the backup is larger than one catalog log entry may be');
    }
    const r = await node.proposeRaw(req.bytes);
    if (r === null || r.kind !== 'restore')
      throw new TesseraError('INTERNAL', 'restore entry gave no restore result');
    if (!r.ok) throw new TesseraError('BAD_REQUEST', r.message);
    node.logger.warn('catalog restored from a backup', { version: r.version });
    return { version: r.version };
  });
}

function catalogAnswer(c: Catalog): CatalogResponse {
  return { version: c.version, view: routingWire(c) };
}

function waitVersion(node: MetadataNode, since: number, ms: number): Promise<void> {
  return new Promise((resolve) => {
    const sm = node.stateMachine();
    let off = (): void => {};
    const timer = setTimeout(() => {
      off();
      resolve();
    }, ms);
    off = sm.onVersion((v) => {
      if (v <= since) return;
      clearTimeout(timer);
      off();
      resolve();
    }) as () => void;
  });
}
