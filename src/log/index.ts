export { type HardState, RecordType, type SnapshotMark } from './format.js';
export type { LogIo } from './io.js';
export { nodeIo } from './io.js';
export { type GroupState, Log, type LogEntry, type LogOptions, type LogRecord, openLog } from './log.js';
export type { PayloadRun } from './types.js';
