/** Public API of the metadata manager's catalog (see docs/metadata.md). */
export { Catalog } from './catalog.js';
export { type BackupContents, backupFormatVersion, decodeBackup, encodeBackup } from './backup.js';
export {
  buildRoutingView,
  type RouteGroup,
  type RouteShard,
  type RouteTable,
  type RoutingView,
  routeKey,
} from './routing.js';
export { decodeSnapshot, encodeSnapshot, snapshotFormatVersion } from './snapshot.js';
export { checkInvariants, emptyState, isValidTableName } from './state.js';
export type * from './types.js';
export { commandCodecVersion, decodeCommand, encodeCommand } from './command-codec.js';
