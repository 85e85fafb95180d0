/** The group host: many replicas of many groups on one node (docs/host.md). */
export * from './types.js';
export { GroupHost } from './host.js';
export { systemClock } from './clock.js';
export { MemoryStateMachine, memoryCommand, decodeMemoryCommand } from './memory-sm.js';
