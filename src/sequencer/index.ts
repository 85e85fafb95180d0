export {
  asSeq,
  compareSeq,
  makeSeq,
  SEQ_BYTES,
  SEQ_COUNTER_MAX,
  SEQ_TIMESTAMP_NS_MAX,
  seqCounter,
  seqFromHex,
  seqMax,
  seqNodeId,
  seqTimestampNs,
  seqToHex,
  ZERO_SEQ,
} from './seq.js';
export { Sequencer } from './sequencer.js';
