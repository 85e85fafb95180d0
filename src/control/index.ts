/** Public API of the control plane's decision logic (see docs/metadata.md, "Control plane"). */
export { decide } from './decide.js';
export { analyzeGroup, recordDeepCheck } from './leaders.js';
export { isHealthy, isLive, needsReplacement, silenceMs } from './liveness.js';
export type * from './types.js';
export { defaultControlConfig, emptyControlMemory } from './types.js';
