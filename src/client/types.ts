/** The shapes the client returns, mirroring the JSON of API.md. */

export type Engine = 'btree' | 'lsm';
export type TokenRole = 'admin' | 'read-write' | 'read-only';
/** A key or value: bytes, or a string taken as UTF-8. */
export type KeyLike = Uint8Array | string;

export interface TableSummary {
  name: string;
  engine: Engine;
}

export interface ShardInfo {
  start: string;
  start_b64: string;
  end: string;
  end_b64: string;
  group: number;
  epoch: number;
}

export interface TableInfo extends TableSummary {
  shards: ShardInfo[];
}

export interface WriteOptions {
  /** Apply only if the current seq is this one (32 hex). */
  ifMatch?: string;
  /** Apply only if the key is absent (put only). */
  ifNoneMatch?: boolean;
}

export interface Item {
  value: Uint8Array;
  seq: string;
}

export interface ScanOptions {
  prefix?: KeyLike;
  start?: KeyLike;
  end?: KeyLike;
  limit?: number;
}

export interface ScanItem {
  key: Uint8Array;
  /** The key as UTF-8 text (exact when the key is valid UTF-8). */
  keyText: string;
  value: Uint8Array;
  seq: string;
}

export interface ScanPage {
  items: ScanItem[];
  /** Pass as `start` to continue, or null when done. */
  next: Uint8Array | null;
}

export interface ScanPageJson {
  items: { key: string; key_b64: string; value: string; seq: string }[];
  next: string | null;
  next_b64: string | null;
}

export interface ClusterInfo {
  metadata: { leader: number | null; members: number[] };
  nodes: {
    id: number;
    role: string;
    addr: string;
    pid: number | null;
    state: 'up' | 'down' | 'spare';
    heartbeat_age_ms: number | null;
  }[];
  groups: { id: number; members: number[]; leader: number | null; term: number }[];
  tables: TableInfo[];
}

export interface Stats {
  uptime_s: number;
  inflight: number;
  bucket_bounds_s: number[];
  ops: { op: string; code: string; count: number; sum_s: number; buckets: number[] }[];
}

export interface TokenInfo {
  id: string;
  role: TokenRole;
  table: string | null;
  created_at: string;
}

export interface NewToken extends TokenInfo {
  /** The secret: shown once, never stored by the server. */
  token: string;
}
