/** The replicated key-value state machine: commands, rules, de-duplication, apply. */
export * from './command.js';
export * from './decide.js';
export * from './dedup.js';
export * from './tables.js';
export * from './apply.js';
