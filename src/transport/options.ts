/** Transport options: limits (defaults from lib/limits) and the logger interface. */
import { createLogger } from '../lib/log.js';
import { limits } from '../lib/limits.js';

export interface TransportLimits {
  /** Header + payload. */
  frameBytesMax: number;
  /** Per connection: bytes queued by us plus bytes buffered in the socket. */
  sendQueueBytesMax: number;
  /** Inbound connections accepted at once. */
  connectionsMax: number;
  reconnectBackoffMinMs: number;
  reconnectBackoffMaxMs: number;
  /** TCP connect plus handshake. */
  handshakeTimeoutMs: number;
  handshakeFrameBytesMax: number;
  requestsInflightPerConnectionMax: number;
  transportPingIntervalMs: number;
  transportIdleTimeoutMs: number;
  /** Payloads up to this size are copied into the batch buffer; larger ones are written by reference. */
  frameCoalesceBytesMax: number;
  /** Default request deadline. */
  requestDeadlineMs: number;
}

export const defaultTransportLimits: TransportLimits = {
  frameBytesMax: limits.frameBytesMax,
  sendQueueBytesMax: limits.sendQueueBytesMax,
  connectionsMax: limits.connectionsMax,
  reconnectBackoffMinMs: limits.reconnectBackoffMinMs,
  reconnectBackoffMaxMs: limits.reconnectBackoffMaxMs,
  handshakeTimeoutMs: limits.handshakeTimeoutMs,
  handshakeFrameBytesMax: limits.handshakeFrameBytesMax,
  requestsInflightPerConnectionMax: limits.requestsInflightPerConnectionMax,
  transportPingIntervalMs: limits.transportPingIntervalMs,
  transportIdleTimeoutMs: limits.transportIdleTimeoutMs,
  frameCoalesceBytesMax: limits.frameCoalesceBytesMax,
  requestDeadlineMs: limits.requestDeadlineMs,
};

/** Structurally compatible with lib/log.ts Logger. */
export interface TransportLog {
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
}

const transportLogger = createLogger('transport');

/** One JSON line per warning on stderr; info is dropped. */
export const stderrTransportLog: TransportLog = {
  info() {},
  warn(msg, fields) {
    transportLogger.warn(msg, fields); // the logger's sink survives a full disk (lib/log.ts)
  },
};
