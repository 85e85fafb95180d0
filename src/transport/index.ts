/** Public API of the transport between cluster members (docs/transport.md). */
export { FaultProxy, type ProxyMode, type ProxyDirection } from './proxy.js';
export { type FaultCommand, FaultSwitch, faultAdminKind } from './faults.js';
export { type Frame, FrameDecoder, FrameType, encodeFrame, frameHeaderBytes } from './frame.js';
export { type PeerIdentity, type Role, roles, handshakeVersion } from './handshake.js';
export { defaultTransportLimits, type TransportLimits, type TransportLog } from './options.js';
export { createClusterSecret, loadClusterSecret, loadOrCreateClusterSecret } from './secret.js';
export {
  type MessageHandler,
  type PeerAddress,
  type PeerState,
  type RequestHandler,
  sendFaultCommand,
  Transport,
  type TransportOptions,
  type TransportStats,
} from './transport.js';
