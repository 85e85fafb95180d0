/**
 * Snapshot streaming over the transport (docs/host.md). The leader's side captures the state
 * machine at the snapshot point and sends it chunk by chunk (each request awaited: flow control),
 * then the consensus message; the follower's side buffers the chunks, then steps the message into
 * its core, whose next Ready asks for the install.
 */
import { encodeMessage, tryDecodeMessage } from '../consensus/codec.js';
import type { SnapshotMsg } from '../consensus/types.js';
import { copyBytes } from '../lib/bytes.js';
import { TesseraError } from '../lib/errors.js';
import type { GroupId, NodeId } from '../lib/ids.js';
import { limits } from '../lib/limits.js';
import type { Logger } from '../lib/log.js';
import type { PeerIdentity, Transport } from '../transport/index.js';
import type { HostedGroup } from './group.js';
import { decodeSnapshotFrame, encodeSnapshotFrame } from './snapshot-stream.js';
import { HOST_SNAPSHOT_KIND } from './types.js';

const empty = new Uint8Array(0);

export class SnapshotSender<R> {
  private closed = false;

  constructor(
    private readonly transport: Transport,
    private readonly logger: Logger,
    private readonly done: (group: GroupId, to: NodeId, ok: boolean) => void,
  ) {}

  /** Starts streaming; the returned promise resolves once the state is captured (before any apply). */
  start(hg: HostedGroup<R>, m: SnapshotMsg): Promise<void> {
    if (hg.streaming.has(m.to) || this.closed) return Promise.resolve();
    hg.streaming.add(m.to);
    const capture = hg.sm.snapshot(m.meta);
    capture.then(
      (stream) => void this.stream(hg, m, stream),
      (e: unknown) => this.finish(hg, m, false, e),
    );
    return capture.then(
      () => undefined,
      () => undefined,
    );
  }

  private async stream(hg: HostedGroup<R>, m: SnapshotMsg, stream: AsyncIterable<Uint8Array>): Promise<void> {
    const base = { group: hg.id, index: m.meta.index };
    let n = 0;
    try {
      for await (const chunk of stream) {
        if (this.closed || hg.stopped) throw new TesseraError('UNAVAILABLE', 'snapshot stream cancelled');
        const frame = encodeSnapshotFrame({ ...base, type: 'chunk', number: n++, bytes: chunk });
        await this.transport.request(m.to, HOST_SNAPSHOT_KIND, frame);
      }
      const last = encodeSnapshotFrame({ ...base, type: 'done', number: n, bytes: encodeMessage(m) });
      await this.transport.request(m.to, HOST_SNAPSHOT_KIND, last);
      this.finish(hg, m, true);
    } catch (e) {
      this.finish(hg, m, false, e);
    }
  }

  private finish(hg: HostedGroup<R>, m: SnapshotMsg, ok: boolean, e?: unknown): void {
    hg.streaming.delete(m.to);
    if (e !== undefined) {
      if (!(e instanceof TesseraError)) throw e;
      this.logger.warn('snapshot stream failed', { group: hg.id, to: m.to, code: e.code, error: e.message });
    } else {
      this.logger.info('snapshot sent', { group: hg.id, to: m.to, index: m.meta.index });
    }
    this.done(hg.id, m.to, ok);
  }

  close(): void {
    this.closed = true;
  }
}

export class SnapshotReceiver<R> {
  constructor(
    private readonly self: NodeId,
    private readonly lookup: (g: GroupId) => HostedGroup<R> | undefined,
    private readonly stepped: (hg: HostedGroup<R>) => void,
  ) {}

  /** The request handler of HOST_SNAPSHOT_KIND. */
  onFrame(from: PeerIdentity, payload: Uint8Array): Uint8Array {
    const f = decodeSnapshotFrame(payload);
    const hg = this.lookup(f.group);
    if (hg === undefined || hg.stopped)
      throw new TesseraError('GROUP_NOT_FOUND', `group ${f.group} is not hosted here`);
    const bad = (why: string) => new TesseraError('BAD_REQUEST', `snapshot of group ${f.group}: ${why}`);
    if (f.type === 'chunk') {
      if (f.number === 0) hg.incoming = { from: from.nodeId, index: f.index, next: 0, bytes: 0, chunks: [] };
      const inc = hg.incoming;
      if (inc === null || inc.from !== from.nodeId || inc.index !== f.index || inc.next !== f.number) {
        throw bad('chunk out of sequence');
      }
      inc.bytes += f.bytes.length;
      if (inc.bytes > limits.hostSnapshotBytesMax) {
        hg.incoming = null;
        throw bad(`larger than ${limits.hostSnapshotBytesMax} bytes`);
      }
      inc.chunks.push(copyBytes(f.bytes));
      inc.next++;
      return empty;
    }
    const d = tryDecodeMessage(f.bytes);
    if (!d.ok) throw bad(d.error.message);
    const m = d.message;
    if (m.type !== 'snapshot' || m.group !== f.group || m.from !== from.nodeId || m.to !== this.self) {
      throw bad('bad final message');
    }
    if (m.meta.index !== f.index) throw bad('index mismatch');
    let chunks: Uint8Array[] = [];
    if (f.number > 0) {
      const inc = hg.incoming;
      if (inc === null || inc.from !== from.nodeId || inc.index !== f.index || inc.next !== f.number) {
        throw bad('incomplete');
      }
      chunks = inc.chunks;
    }
    hg.incoming = null;
    // Kept until the next Ready: the core may still want an earlier one it accepted before.
    hg.staged.set(f.index, { index: f.index, chunks });
    hg.replica.step(m);
    this.stepped(hg);
    return empty;
  }
}
