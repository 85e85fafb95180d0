/**
 * The catalog: the metadata manager's replicated state machine. Pure and deterministic: the same
 * commands applied in the same order give the same state and the same snapshot bytes, on every
 * replica. No clock, no randomness, no I/O: commands carry their time (`atMs`), the caller hashes
 * token secrets.
 *
 * apply(command) never throws for a refused command: it answers {ok:false, code, message} with a
 * stable code from src/lib/errors.ts and leaves the state untouched. Assertion errors are bugs.
 * The version grows by one with every command that changes something; an idempotent retry
 * answers {ok:true, changed:false} without moving it.
 */
import { isTesseraError, TesseraError } from '../lib/errors.js';
import type { GroupId, NodeId, TableId } from '../lib/ids.js';
import * as cluster from './apply-cluster.js';
import type { Applied } from './apply-cluster.js';
import * as data from './apply-tables.js';
import { decodeBackup, encodeBackup } from './backup.js';
import { buildRoutingView, type RoutingView } from './routing.js';
import { decodeSnapshot, encodeSnapshot } from './snapshot.js';
import { emptyState, groupsOfNode, shardsOfTable } from './state.js';
import type {
  CatalogCommand,
  CatalogState,
  CommandResult,
  CommandType,
  CommandValues,
  GroupRecord,
  NodeRecord,
  ShardRecord,
  TableRecord,
  TokenRecord,
} from './types.js';

type Handler<T extends CommandType> = (
  s: CatalogState,
  c: Extract<CatalogCommand, { type: T }>,
) => Applied<T>;

const handlers: { [T in CommandType]: Handler<T> } = {
  registerNode: cluster.registerNode,
  markNode: cluster.markNode,
  addSpare: cluster.addSpare,
  takeSpare: cluster.takeSpare,
  createGroup: cluster.createGroup,
  setGroupLeader: cluster.setGroupLeader,
  addLearner: cluster.addLearner,
  promote: cluster.promote,
  removeMember: cluster.removeMember,
  createTable: data.createTable,
  dropTable: data.dropTable,
  finishDropTable: data.finishDropTable,
  splitShard: data.splitShard,
  moveShard: data.moveShard,
  createToken: data.createToken,
  revokeToken: data.revokeToken,
};

export class Catalog {
  private s: CatalogState;
  private routingCache: RoutingView | undefined;

  constructor(state: CatalogState = emptyState()) {
    this.s = state;
  }

  /** Restores a catalog from snapshot bytes (CORRUPTION if they do not check out). */
  static restore(bytes: Uint8Array): Catalog {
    return new Catalog(decodeSnapshot(bytes));
  }

  /** Restores a catalog from a backup file's bytes (CORRUPTION if they do not check out). */
  static restoreBackup(bytes: Uint8Array): Catalog {
    const b = decodeBackup(bytes);
    const catalog = Catalog.restore(b.snapshot);
    if (catalog.version !== b.catalogVersion) {
      throw new TesseraError('CORRUPTION', `catalog backup: header version ${b.catalogVersion} != snapshot`);
    }
    return catalog;
  }

  get version(): number {
    return this.s.version;
  }

  /** Read-only view of the whole state (do not mutate; use apply). */
  get state(): Readonly<CatalogState> {
    return this.s;
  }

  apply<T extends CommandType>(command: Extract<CatalogCommand, { type: T }>): CommandResult<T> {
    const handler = handlers[command.type] as Handler<T> | undefined;
    if (handler === undefined) {
      return { ok: false, version: this.s.version, code: 'BAD_REQUEST', message: 'unknown catalog command' };
    }
    let applied: Applied<T>;
    try {
      applied = handler(this.s, command);
    } catch (e) {
      if (!isTesseraError(e)) throw e;
      return { ok: false, version: this.s.version, code: e.code, message: e.message };
    }
    if (applied.changed) {
      this.s.version += 1;
      this.routingCache = undefined;
    }
    return { ok: true, version: this.s.version, changed: applied.changed, value: applied.value };
  }

  snapshot(): Uint8Array {
    return encodeSnapshot(this.s);
  }

  /** A backup file's bytes (backup.ts); createdAtMs is the wall time, given by the caller. */
  backup(createdAtMs: number): Uint8Array {
    return encodeBackup({ catalogVersion: this.s.version, createdAtMs, snapshot: this.snapshot() });
  }

  /** The routing view, rebuilt at most once per catalog version. */
  routing(): RoutingView {
    if (this.routingCache === undefined) this.routingCache = buildRoutingView(this.s);
    return this.routingCache;
  }

  tableByName(name: string): TableRecord | undefined {
    const id = this.s.tableNames.get(name);
    return id === undefined ? undefined : this.s.tables.get(id);
  }

  /** Active tables sorted by name. */
  listTables(): TableRecord[] {
    return [...this.s.tableNames.values()]
      .map((id) => this.s.tables.get(id)!)
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  shardsOf(table: TableId): ShardRecord[] {
    return shardsOfTable(this.s, table);
  }

  node(id: NodeId): NodeRecord | undefined {
    return this.s.nodes.get(id);
  }

  group(id: GroupId): GroupRecord | undefined {
    return this.s.groups.get(id);
  }

  groupsOfNode(id: NodeId): GroupId[] {
    return groupsOfNode(this.s, id);
  }

  tokenByHash(secretHash: string): TokenRecord | undefined {
    for (const t of this.s.tokens.values()) if (t.secretHash === secretHash) return t;
    return undefined;
  }
}

export type { CommandValues };
