/**
 * The MM's orders to storage nodes (ctl.* of src/storage/rpc.ts), behind a small interface so the
 * control loop can be tested with a stand-in. TransportStorageCtl sends them over the MM node's
 * transport, connecting to each storage node at the address the catalog holds for it.
 */
import type { MembershipChange } from '../consensus/types.js';
import { TesseraError } from '../lib/errors.js';
import type { GroupId, NodeId, Term } from '../lib/ids.js';
import { limits } from '../lib/limits.js';
import {
  type CatalogEntry,
  type CtlHostGroup,
  decodeCtlCheckResult,
  encodeCtlCampaign,
  encodeCtlGroup,
  encodeCtlHostGroup,
  encodeCtlMembership,
  encodeCtlPropose,
  encodeCtlTransfer,
  StorageKind,
} from '../storage/rpc.js';
import type { PeerAddress, Transport } from '../transport/transport.js';

export interface StorageCtl {
  campaign(node: NodeId, group: GroupId, minTerm: Term): Promise<void>;
  transfer(leader: NodeId, group: GroupId, to: NodeId): Promise<void>;
  /** Leader only; resolves once the change is committed. */
  membership(leader: NodeId, group: GroupId, change: MembershipChange): Promise<void>;
  /** Deep check through the leader: a no-op committed, the disk probe. */
  check(leader: NodeId, group: GroupId): Promise<{ diskOk: boolean }>;
  /** Leader only; resolves once the entry is committed and applied on the leader. */
  propose(leader: NodeId, group: GroupId, entry: CatalogEntry): Promise<void>;
  /** Tells a node to host a replica of the group now (it would learn it from its next heartbeat). */
  hostGroup(node: NodeId, order: CtlHostGroup): Promise<void>;
}

/** "host:port" (IPv6 as [h]:p) -> address, or null. */
export function parseHostPort(addr: string): PeerAddress | null {
  const m = /^\[?([^\]]*?)\]?:(\d{1,5})$/.exec(addr);
  if (m === null) return null;
  const port = Number(m[2]);
  if (m[1] === undefined || m[1] === '' || port < 1 || port > 65535) return null;
  return { host: m[1], port };
}

export class TransportStorageCtl implements StorageCtl {
  private readonly known = new Map<NodeId, string>();

  constructor(
    private readonly t: Transport,
    /** The catalog's address of a node (undefined: unknown node). */
    private readonly addressOf: (node: NodeId) => string | undefined,
    private readonly timeoutMs = limits.mmCtlCallTimeoutMs,
  ) {}

  private async call(
    node: NodeId,
    kind: number,
    payload: Uint8Array,
    timeoutMs = this.timeoutMs,
  ): Promise<Uint8Array> {
    const addr = this.addressOf(node);
    const parsed = addr === undefined ? null : parseHostPort(addr);
    if (addr === undefined || parsed === null) {
      throw new TesseraError('NODE_NOT_FOUND', `no usable address for node ${node}`);
    }
    if (this.known.get(node) !== addr) {
      this.t.setPeer(node, parsed);
      this.known.set(node, addr);
    }
    return this.t.request(node, kind, payload, { timeoutMs });
  }

  /** Forget the connection to a node (removed from the cluster). */
  forget(node: NodeId): void {
    if (this.known.delete(node)) this.t.removePeer(node);
  }

  async campaign(node: NodeId, group: GroupId, minTerm: Term): Promise<void> {
    await this.call(node, StorageKind.ctlCampaign, encodeCtlCampaign({ group, minTerm }));
  }

  async transfer(leader: NodeId, group: GroupId, to: NodeId): Promise<void> {
    await this.call(leader, StorageKind.ctlTransfer, encodeCtlTransfer({ group, to }));
  }

  async membership(leader: NodeId, group: GroupId, change: MembershipChange): Promise<void> {
    await this.call(leader, StorageKind.ctlMembership, encodeCtlMembership({ group, change }));
  }

  async check(leader: NodeId, group: GroupId): Promise<{ diskOk: boolean }> {
    const out = await this.call(
      leader,
      StorageKind.ctlCheck,
      encodeCtlGroup({ group }),
      limits.deepCheckTimeoutMs,
    );
    return { diskOk: decodeCtlCheckResult(out).diskOk };
  }

  async propose(leader: NodeId, group: GroupId, entry: CatalogEntry): Promise<void> {
    await this.call(leader, StorageKind.ctlPropose, encodeCtlPropose({ group, entry }));
  }

  async hostGroup(node: NodeId, order: CtlHostGroup): Promise<void> {
    await this.call(node, StorageKind.ctlHostGroup, encodeCtlHostGroup(order));
  }
}
