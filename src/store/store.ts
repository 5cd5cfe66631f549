// Everything the plugin, the CLI and the controller need from storage. Both the embedded file
// store and the etcd store implement it; the allocation logic never knows which one it has.
import type { IP } from "../ip/address.ts";
import type { FreeAddressFinder } from "../ip/held_index.ts";

/**
 * dynamic: picked from the pool; requested: asked for by the runtime (CNI_ARGS IP, args, runtimeConfig);
 * fixed: from a pod annotation; sticky: kept for a pod name across re-creation; migrated: imported from
 * kube-ipam v0.2 (`kube-ipam migrate`), with a container ID and nothing else.
 */
export type AllocationKind = "dynamic" | "requested" | "fixed" | "sticky" | "migrated";

export interface Owner {
  readonly containerID: string;
  readonly ifName: string;
}

/** The record kept for every address in use. */
export interface Allocation {
  readonly ip: string;
  readonly network: string;
  readonly containerID: string;
  readonly ifName: string;
  readonly podNamespace?: string;
  readonly podName?: string;
  readonly podUID?: string;
  /** The StatefulSet that owned the pod (sticky addresses live as long as it does). */
  readonly statefulSet?: string;
  readonly statefulSetUID?: string;
  readonly node: string;
  readonly kind: AllocationKind;
  /** Index of the range set the address came from. */
  readonly rangeSet: number;
  /** ISO 8601. */
  readonly allocatedAt: string;
  /**
   * Set when a sticky address outlives its container: it stays held for the pod name (namespace and
   * name) and has no owner any more, so DEL of that container finds nothing.
   */
  readonly parkedAt?: string;
  /** Claims lost to other plugins before this one succeeded (for the conflicts metric). */
  readonly conflicts?: number;
}

/** A named, cluster-wide list of addresses never handed out (Spiderpool's ReservedIP). */
export interface Reservation {
  readonly name: string;
  /** Addresses, "A-B" ranges and CIDRs, as given. */
  readonly entries: readonly string[];
  readonly createdAt: string;
}

export type ClaimOutcome =
  /**
   * `earlier`: other addresses the same owner had claimed before this claim committed, oldest first (an
   * overlapping attempt of the same ADD, a runtime's retry), where the store can tell in the same request.
   */
  | { readonly claimed: true; readonly earlier?: readonly Allocation[] }
  /**
   * Someone holds it; `holder` is their record when it could be read, `window` and `counts` the
   * answers to ClaimOptions.readOnLoss and countOnLoss when they were asked for.
   */
  | { readonly claimed: false; readonly holder?: Allocation; readonly window?: HeldWindow; readonly counts?: readonly number[] };

export interface ClaimOptions {
  /** Also move this node's round-robin cursor of the range set with this key (rangeSetKey) to the address. */
  readonly cursorKey?: string;
  /** If the claim is lost, also read this (as heldBetween), in the same request where the store can. */
  readonly readOnLoss?: HeldRead;
  /** If the claim is lost, also count these blocks (as countHeldBlocks), in the same request where the store can. */
  readonly countOnLoss?: CountRead;
}

/** The arguments of NetworkStore.countHeldBlocks. */
export interface CountRead {
  readonly family: 4 | 6;
  readonly from: bigint;
  readonly to: bigint;
  readonly size: bigint;
  readonly blocks: number;
}

/** The arguments of NetworkStore.heldBetween. */
export interface HeldRead {
  readonly family: 4 | 6;
  readonly from: bigint;
  readonly to: bigint;
  readonly limit: number;
}

/** See NetworkStore.heldBetween. */
export interface HeldWindow {
  readonly held: readonly IP[];
  /** The last address the answer covers (at most the `to` asked for). */
  readonly through: bigint;
}

/** What an ADD reads before it claims anything. */
export interface AddSnapshot {
  /** What the owner holds already (a retried ADD). */
  readonly held: readonly Allocation[];
  /** This node's round-robin cursor per range set, in the order of the keys asked for. */
  readonly cursors: readonly (IP | undefined)[];
  readonly reservations: readonly Reservation[];
  /**
   * Addresses held outside this store's own layout (kube-ipam v0.2's, in compatibility mode): never
   * picked dynamically. A claim of one is lost all the same; this only spares the attempts.
   */
  readonly heldElsewhere?: readonly IP[];
}

/** One network's pool. */
export interface NetworkStore {
  readonly network: string;
  /** True when many nodes share the pool (etcd): nodes then start their scans at different points. */
  readonly shared: boolean;
  /**
   * True when a lost claim costs no more than a read (etcd: one transaction either way): the allocator
   * then claims its first candidate before reading what is held. False for the file store, where a
   * claim writes and fsyncs a record.
   */
  readonly claimBeforeRead: boolean;
  /**
   * What this process last saw held in the pool, where it keeps such a view (the node agent: an etcd watch,
   * the embedded store's listing of the last second); undefined otherwise. Possibly stale, so it only picks
   * the address to claim first: the claim decides, and a lost one falls back to reading the store.
   */
  heldView?(): FreeAddressFinder | undefined;
  /** Takes `ip` for `record` if nobody holds it, atomically. A lost race is `claimed: false`, not an error. */
  claim(ip: IP, record: Allocation, opts?: ClaimOptions): Promise<ClaimOutcome>;
  /**
   * The held addresses at the start of [from, to], ascending: every one in [from, through]. A store
   * answers for as much of the range as is cheap for it: etcd up to its `limit`-th held address (one
   * range read), the file store for a few addresses probed one by one (no listing of the pool).
   */
  heldBetween(family: 4 | 6, from: bigint, to: bigint, limit: number): Promise<HeldWindow>;
  /**
   * How many addresses are held in each of up to `blocks` consecutive blocks of `size` addresses from
   * `from` (the last one cut at `to`), in one request; on etcd much cheaper than reading them.
   */
  countHeldBlocks(family: 4 | 6, from: bigint, to: bigint, size: bigint, blocks: number): Promise<number[]>;
  findByOwner(owner: Owner): Promise<Allocation[]>;
  /** Everything an ADD reads first, in one round trip where the store can (etcd: one transaction). */
  prepareAdd(owner: Owner, node: string, rangeSetKeys: readonly string[]): Promise<AddSnapshot>;
  /**
   * Releases every address of `owner`; releasing nothing is not an error. Sticky addresses are parked
   * (kept for the pod name) instead. Returns the records as they were.
   */
  releaseByOwner(owner: Owner): Promise<Allocation[]>;
  /**
   * Releases the address of `record` only if its record is still exactly `record` (compare-and-delete).
   * See WriteConditions for `conditions`.
   */
  releaseIfUnchanged(record: Allocation, conditions?: WriteConditions): Promise<boolean>;
  /**
   * Compare-and-swap: if the address of `expected` is still held by exactly `expected`, it becomes
   * `next` (a takeover, a sticky reclaim, parking). False when it changed meanwhile.
   */
  replace(expected: Allocation, next: Allocation, conditions?: WriteConditions): Promise<boolean>;
  /** Sticky records (live or parked) kept for the pod `namespace/name`. */
  findSticky(podNamespace: string, podName: string): Promise<Allocation[]>;
  get(ip: IP): Promise<Allocation | undefined>;
  list(): Promise<Allocation[]>;
  /** The last address handed out by `node` in the range set with key `rangeSetKey` (round-robin start). */
  cursor(node: string, rangeSetKey: string): Promise<IP | undefined>;
  /** Removes what killed processes left behind; never touches a live or in-progress claim. */
  sweep(): Promise<void>;
}

/** What makes a write conditional beyond the record compared. */
export interface WriteConditions {
  /**
   * Write only while this leader leads. A store that elects (etcd) compares the leader's fence in the
   * same transaction, so a leader that lost its lease a moment ago, before it could notice, changes
   * nothing; the write throws NotLeaderError instead.
   */
  readonly leader?: Leadership;
}

/** The proof of leadership a store checks in a write: the leader key, and the revision at which this leader created it. */
export interface LeaderFence {
  readonly key: string;
  readonly revision: bigint;
}

export interface Leadership {
  /** True only while this process may act as leader. */
  readonly isLeader: boolean;
  /** While leading, on a store that elects: see WriteConditions. */
  readonly fence?: LeaderFence;
  /** A write found `fence` no longer holds (NotLeaderError): count this process out now, not at the next renewal. */
  fenceLost?(fence: LeaderFence): void;
  /** Campaigns and renews until `signal` aborts, then resigns. */
  run(signal: AbortSignal): Promise<void>;
}

export interface ElectionOptions {
  readonly ttlSeconds?: number;
  /** How often a follower tries to take over. */
  readonly campaignIntervalMs?: number;
  readonly onChange?: (leader: boolean) => void;
}

/** One change of a claim, as a store streams them: an address given to a container, released or parked. */
export interface StoreChange {
  readonly network: string;
  readonly kind: "allocated" | "released";
  /** The new record of an allocation (its `conflicts` count for the metrics); of a release, the record released, where the store has it. */
  readonly record?: Allocation;
  /** A release that parks the address (a sticky address kept for its pod name), not one that frees it. */
  readonly parked?: boolean;
}

export interface Store {
  /** Where the state lives, for messages ("etcd https://10.0.0.1:2379", "/var/lib/cni/kube-ipam"). */
  readonly location: string;
  network(name: string): NetworkStore;
  networks(): Promise<string[]>;
  reservations(): Promise<Reservation[]>;
  /** Creates or replaces the reservation of that name. */
  putReservation(r: Reservation): Promise<void>;
  /** False when there was no such reservation. */
  deleteReservation(name: string): Promise<boolean>;
  /** Checks the store answers now (STATUS). Throws when not. */
  ping(): Promise<void>;
  /**
   * Leader election among controller replicas sharing this store; absent where there is only one host
   * (the file store), and the one controller leads.
   */
  elect?(identity: string, opts?: ElectionOptions): Leadership;
  /** Streams every change of a claim in any network until `signal` aborts; absent where it cannot. */
  watchChanges?(signal: AbortSignal, onChange: (c: StoreChange) => void, onReconnect?: (e: unknown) => void): Promise<void>;
  /** Calls `onChange` after every change of the reservations until `signal` aborts; absent where it cannot. */
  watchReservations?(signal: AbortSignal, onChange: () => void, onReconnect?: (e: unknown) => void): Promise<void>;
  /** The addresses kube-ipam v0.2's layout holds in network `name`, with container IDs; absent where v0.2 never was (the file store). */
  legacyV02Holders?(network: string): Promise<{ ip: string; containerID: string }[]>;
  /** Requests of this process retried on another endpoint or later (for the metrics). */
  readonly retries?: number;
  close(): Promise<void>;
}

/** The store could not be used (I/O error, etcd unreachable, ...). `retryable` maps to CNI code 11. */
export class StoreError extends Error {
  override name = "StoreError";
  constructor(message: string, readonly retryable: boolean, options?: ErrorOptions) {
    super(message, options);
  }
}

/** A write made only while leading (WriteConditions.leader) found that this process no longer leads. */
export class NotLeaderError extends StoreError {
  override name = "NotLeaderError";
  constructor(message: string) {
    super(message, false);
  }
}

export function sameOwner(a: Owner, b: Owner): boolean {
  return a.containerID === b.containerID && a.ifName === b.ifName;
}
