/** The consensus core: a pure, deterministic Raft-derived replica. See docs/consensus.md. */
export {
  CODEC_VERSION,
  decodeEntry,
  decodeMembershipChange,
  decodeMessage,
  encodeEntry,
  encodeMembershipChange,
  encodeMessage,
  tryDecodeMessage,
} from './codec.js';
export { Replica } from './replica.js';
export * from './types.js';
