/**
 * Replica comparison after a chaos run: with the cluster stopped cleanly (SIGTERM makes every
 * storage node flush its memtable into its engines), open each member's engine instances read
 * from its data dir and compare, per group, every replica's shard registry and the live records
 * (key, value, seq) of each registered shard.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { unpack } from 'msgpackr';
import { type Engine, type EngineKind, keyspaceId, openEngine } from '../../src/engine/index.js';
import { toHex } from '../../src/lib/bytes.js';
import { groupId } from '../../src/lib/ids.js';

/** node id -> its storage data dir (DIR/storage-<n>, identified by node.json). */
export function storageDirs(devDir: string): Map<number, string> {
  const out = new Map<number, string>();
  for (const name of readdirSync(devDir)) {
    if (!name.startsWith('storage-')) continue;
    const file = path.join(devDir, name, 'node.json');
    if (!existsSync(file)) continue;
    const j = JSON.parse(readFileSync(file, 'utf8')) as { node?: number };
    if (typeof j.node === 'number') out.set(j.node, path.join(devDir, name));
  }
  return out;
}

const registryTag = 0x73; // 's', the shard registry's meta records (src/storage/kv-sm.ts)

async function shardContents(engine: Engine, shard: number): Promise<string[]> {
  const rows = await engine.scan(keyspaceId(shard), { limit: 10_000 });
  return rows.map((r) => `${toHex(r.key)}=${toHex(r.value)}@${toHex(r.seq)}`);
}

export interface ReplicaComparison {
  /** One line per group and member: `group G node N: shard S (engine) R records, ...`. */
  summary: string[];
  /** Disagreements; empty when every replica of every group holds the same registry and records. */
  mismatches: string[];
}

export interface GroupMembers {
  id: number;
  members: number[];
}

/**
 * One replica's state: its shard registry (meta records 's' | shard u32 on the btree instance,
 * docs/storage.md) and, per registered shard, the live records of its keyspace.
 */
async function replicaState(dir: string, group: number): Promise<{ text: string; summary: string }> {
  const engines = new Map<EngineKind, Engine>();
  try {
    for (const kind of ['btree', 'lsm'] as const)
      engines.set(kind, await openEngine(kind, path.join(dir, 'engines', kind)));
    const meta = await (engines.get('btree') as Engine).readMeta(groupId(group), Uint8Array.of(registryTag));
    const parts: string[] = [];
    const counts: string[] = [];
    for (const r of meta) {
      if (r.key.length !== 5) continue;
      const shard = new DataView(r.key.buffer, r.key.byteOffset, 5).getUint32(1);
      const f = unpack(r.value) as unknown[];
      const kind = f[2] as EngineKind;
      const rows = await shardContents(engines.get(kind) as Engine, shard);
      parts.push(`shard ${shard} ${toHex(r.value)}`, ...rows);
      counts.push(`shard ${shard} (${kind}) ${rows.length} records`);
    }
    return { text: parts.join('\n'), summary: counts.join(', ') };
  } finally {
    for (const e of engines.values()) await e.close();
  }
}

/** Compares the replicas of every group (membership as the cluster view showed it before the stop). */
export async function compareReplicas(
  devDir: string,
  groups: readonly GroupMembers[],
): Promise<ReplicaComparison> {
  const dirs = storageDirs(devDir);
  const summary: string[] = [];
  const mismatches: string[] = [];
  for (const g of groups) {
    let reference: { node: number; text: string } | null = null;
    for (const node of g.members) {
      const dir = dirs.get(node);
      if (dir === undefined) {
        mismatches.push(`group ${g.id}: no data dir for node ${node}`);
        continue;
      }
      const st = await replicaState(dir, g.id);
      summary.push(`group ${g.id} node ${node}: ${st.summary}`);
      if (reference === null) reference = { node, text: st.text };
      else if (st.text !== reference.text)
        mismatches.push(`group ${g.id}: node ${node} differs from node ${reference.node}`);
    }
  }
  return { summary, mismatches };
}
