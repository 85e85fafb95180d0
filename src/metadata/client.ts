/**
 * MmClient: calls the metadata manager over a Transport, following the leader. It knows the MM
 * nodes (fixed ids 1..15 and their addresses), remembers the last leader, follows NOT_LEADER hints,
 * and tries the next MM node when one is unreachable, until the deadline. Used by storage nodes,
 * request managers, the dev supervisor and tests.
 */
import { isTesseraError, TesseraError } from '../lib/errors.js';
import type { NodeId } from '../lib/ids.js';
import { limits } from '../lib/limits.js';
import type { PeerAddress, Transport } from '../transport/transport.js';
import { decodeMmResponse, encodeMm, MmKind, type MmCall, type MmCalls } from './rpc.js';

export interface MmClientOptions {
  transport: Transport;
  /** MM node id -> address. setPeer is called for each. */
  members: ReadonlyMap<NodeId, PeerAddress>;
  /** Whole-call deadline (default limits.mmCallDeadlineMs). */
  deadlineMs?: number;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Errors after which another MM node may answer. */
function retryable(e: unknown): boolean {
  return (
    isTesseraError(e) &&
    (e.code === 'NOT_LEADER' ||
      e.code === 'UNAVAILABLE' ||
      e.code === 'TIMEOUT' ||
      e.code === 'SEND_QUEUE_FULL')
  );
}

export class MmClient {
  private readonly t: Transport;
  private readonly ids: NodeId[];
  private leader: NodeId | null = null;
  private next = 0;
  private readonly deadlineMs: number;

  constructor(opts: MmClientOptions) {
    this.t = opts.transport;
    this.ids = [...opts.members.keys()].sort((a, b) => a - b);
    this.deadlineMs = opts.deadlineMs ?? limits.mmCallDeadlineMs;
    for (const [id, addr] of opts.members) this.t.setPeer(id, addr);
  }

  /** The MM leader as last learned (null = unknown). */
  get knownLeader(): NodeId | null {
    return this.leader;
  }

  /**
   * Calls the MM leader. Retries NOT_LEADER / UNAVAILABLE / TIMEOUT on other MM nodes until the
   * deadline. Note: a retried catalog change may have been applied once already; the MM's
   * commands are idempotent where they can be (register by key, create token by hash).
   */
  async call<C extends MmCall>(
    call: C,
    req: MmCalls[C][0],
    deadlineMs = this.deadlineMs,
  ): Promise<MmCalls[C][1]> {
    const end = Date.now() + deadlineMs;
    let last: unknown = new TesseraError('UNAVAILABLE', 'no metadata manager answered');
    for (let attempt = 0; Date.now() < end; attempt++) {
      const peer = this.pick();
      try {
        const left = Math.max(1, end - Date.now());
        const timeoutMs = Math.min(
          left,
          limits.mmCallAttemptMs + (call === 'catalog' ? limits.mmCatalogWaitMaxMs : 0),
        );
        const out = await this.t.request(peer, MmKind[call], encodeMm(req), { timeoutMs });
        this.leader = peer;
        return decodeMmResponse(call, out);
      } catch (e) {
        if (!retryable(e)) throw e;
        last = e;
        this.follow(peer, e as TesseraError);
        if (this.leader === null)
          await sleep(Math.min(limits.mmRetryBackoffMaxMs, 20 * 2 ** Math.min(attempt, 6)));
      }
    }
    throw last;
  }

  private pick(): NodeId {
    if (this.leader !== null) return this.leader;
    const id = this.ids[this.next % this.ids.length];
    this.next++;
    if (id === undefined) throw new TesseraError('UNAVAILABLE', 'no metadata manager configured');
    return id;
  }

  private follow(peer: NodeId, e: TesseraError): void {
    const hint = e.code === 'NOT_LEADER' ? Number(e.detail?.leader ?? 0) : 0;
    if (hint !== 0 && hint !== peer && this.ids.includes(hint as NodeId)) this.leader = hint as NodeId;
    else this.leader = null;
  }
}
