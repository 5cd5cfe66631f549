// ADD: one address per range set for (container, interface). In each set, in this order: what the
// owner already holds (runtimes retry ADD), a fixed address from the pod's annotations, a requested
// address from the runtime, the sticky address of the pod's name, or the next free address.
// A failed ADD lets go of what it claimed.
import type { Dns, IPConfig, IpamResult } from "../cni/result.ts";
import { ConfigError } from "../config/errors.ts";
import type { IpamConfig } from "../config/ipam_config.ts";
import { formatIP, type IP, ipEquals, tryParseIP } from "../ip/address.ts";
import { formatInterval } from "../ip/interval_set.ts";
import { isInfrastructure, type Range } from "../ip/range.ts";
import { rangeHolding, type RangeSet, rangeSetFamily, rangeWithSubnetOf } from "../ip/range_set.ts";
import type { AddSnapshot, Allocation, AllocationKind, NetworkStore, Owner } from "../store/store.ts";
import { allocateDynamic, type Pool, poolsOf } from "./allocator.ts";
import { AddressReservedError, AddressUnavailableError } from "./errors.ts";
import type { FixedAddress, PodPolicy } from "./pod_policy.ts";
import { releaseOrPark } from "./release.ts";
import { assignRequested } from "./requested.ts";
import { reservedAddresses, type ReservedAddresses } from "./reservations.ts";
import { ASSUME_LIVE, claimOrTakeOver, type HolderLiveness } from "./takeover.ts";
import { failpoint } from "../lib/failpoint.ts";

export interface PodRef {
  readonly namespace?: string;
  readonly name?: string;
  readonly uid?: string;
}

export interface AddRequest {
  readonly config: IpamConfig;
  readonly owner: Owner;
  readonly pod: PodRef;
  readonly dns: Dns;
  readonly now: Date;
  /** What the store held when the ADD began (NetworkStore.prepareAdd). */
  readonly snapshot: AddSnapshot;
  /** From the pod's annotations and owners; none without a Kubernetes API. */
  readonly policy?: PodPolicy;
  readonly liveness?: HolderLiveness;
}

/**
 * The allocation the owner already holds in `pool`, with its range, if any. Matched on the range set
 * it was made for: two range sets may share a subnet, and then the subnet alone is ambiguous.
 */
function heldIn(pool: Pool, held: readonly Allocation[]): { allocation: Allocation; ip: IP; range: Range } | undefined {
  for (const allocation of held) {
    if (allocation.rangeSet !== pool.index) continue;
    const ip = tryParseIP(allocation.ip);
    const range = ip && rangeWithSubnetOf(pool.set, ip);
    if (ip && range) return { allocation, ip, range };
  }
  return undefined;
}

/** The range set for a fixed address: the one whose range holds it, else the first whose subnet does. */
function fixedSetIndex(sets: readonly RangeSet[], ip: IP): number {
  const ofFamily = (s: RangeSet) => rangeSetFamily(s) === ip.family;
  const inRange = sets.findIndex((s) => ofFamily(s) && rangeHolding(s, ip));
  return inRange >= 0 ? inRange : sets.findIndex((s) => ofFamily(s) && rangeWithSubnetOf(s, ip));
}

/** Maps each fixed address to the range set of its family whose subnet holds it. */
function assignFixed(config: IpamConfig, pod: PodRef, fixed: readonly FixedAddress[]): Map<number, FixedAddress> {
  const bySet = new Map<number, FixedAddress>();
  for (const f of fixed) {
    const field = `annotation ${f.source} of pod "${pod.namespace}/${pod.name}"`;
    const index = fixedSetIndex(config.rangeSets, f.ip);
    if (index < 0) throw new ConfigError(field, `"${formatIP(f.ip)}" is in no subnet of network "${config.network}"`);
    if (bySet.has(index)) {
      throw new ConfigError(field, `"${formatIP(f.ip)}" and "${formatIP(bySet.get(index)!.ip)}" fall in the same range set; one address per range set`);
    }
    bySet.set(index, f);
  }
  return bySet;
}

/** A fixed or requested address must be one the network may hand out at all. */
function checkAllowed(ip: IP, range: Range, req: AddRequest, reserved: ReservedAddresses): void {
  const text = formatIP(ip);
  if (isInfrastructure(range, ip)) {
    throw new AddressUnavailableError(text, req.config.network, "it is the gateway, network or broadcast address of its subnet");
  }
  const excluded = req.config.exclude.find(ip);
  if (excluded) {
    throw new AddressUnavailableError(text, req.config.network, `it is excluded by ipam.exclude "${formatInterval(excluded)}"`);
  }
  const reservation = reserved.nameOf(ip);
  if (reservation) throw new AddressReservedError(text, reservation);
}

interface Claimed {
  readonly allocation: Allocation;
  readonly ipConfig: IPConfig;
}

function ipConfig(ip: IP, range: Range, fixed?: FixedAddress): IPConfig {
  return { ip, prefixLength: fixed?.prefixLength ?? range.subnet.length, gateway: fixed?.gateway ?? range.gateway };
}

/** The pod's sticky address in this pool, reclaimed for the new container. */
async function reclaimSticky(store: NetworkStore, pool: Pool, record: Omit<Allocation, "ip">, req: AddRequest): Promise<Claimed | undefined> {
  const { namespace, name } = req.pod;
  if (!namespace || !name) return undefined;
  for (const kept of await store.findSticky(namespace, name)) {
    const ip = tryParseIP(kept.ip);
    const range = ip && rangeWithSubnetOf(pool.set, ip);
    if (!ip || !range || kept.ifName !== record.ifName) continue;
    // Parked: reclaimed at once. Still live under an old container: taken over if that pod is gone.
    const held = await claimOrTakeOver(store, ip, { ...record, ip: kept.ip }, req.liveness ?? ASSUME_LIVE);
    failpoint("sticky.reclaimed");
    return { allocation: held, ipConfig: ipConfig(ip, range) };
  }
  return undefined;
}

interface PoolRequest {
  readonly fixed?: FixedAddress;
  readonly requested?: IP;
  readonly reserved: ReservedAddresses;
}

async function claimInPool(store: NetworkStore, pool: Pool, req: AddRequest, { fixed, requested, reserved }: PoolRequest): Promise<Claimed> {
  const sticky = req.policy?.sticky === true && !fixed && !requested;
  const kind: AllocationKind = fixed ? "fixed" : requested ? "requested" : sticky ? "sticky" : "dynamic";
  const record = {
    network: req.config.network,
    containerID: req.owner.containerID,
    ifName: req.owner.ifName,
    podNamespace: req.pod.namespace,
    podName: req.pod.name,
    podUID: req.pod.uid,
    statefulSet: req.policy?.statefulSet?.name,
    statefulSetUID: req.policy?.statefulSet?.uid,
    node: req.config.nodeName,
    kind,
    rangeSet: pool.index,
    allocatedAt: req.now.toISOString(),
  };
  const want = fixed?.ip ?? requested;
  if (want) {
    const range = rangeWithSubnetOf(pool.set, want)!;
    checkAllowed(want, range, req, reserved);
    const allocation = await claimOrTakeOver(store, want, { ...record, ip: formatIP(want) }, req.liveness ?? ASSUME_LIVE);
    return { allocation, ipConfig: ipConfig(want, range, fixed) };
  }
  if (sticky) {
    const reclaimed = await reclaimSticky(store, pool, record, req);
    if (reclaimed) return reclaimed;
  }
  const { allocation, range } = await allocateDynamic(store, pool, record, req.snapshot.cursors[pool.index]);
  return { allocation, ipConfig: ipConfig(tryParseIP(allocation.ip)!, range) };
}

export async function add(store: NetworkStore, req: AddRequest): Promise<IpamResult> {
  const { config, owner } = req;
  const reserved = reservedAddresses(req.snapshot.reservations);
  const pools = poolsOf(config, reserved, req.snapshot.heldElsewhere);
  const fixed = assignFixed(config, req.pod, req.policy?.fixed ?? []);
  const requested = assignRequested(config.network, config.rangeSets, config.requestedIPs, config.exclude);
  for (const index of requested.keys()) {
    if (fixed.has(index)) {
      throw new AddressUnavailableError(formatIP(requested.get(index)!), config.network,
        `the pod's annotation already fixes "${formatIP(fixed.get(index)!.ip)}" in range set ${index}`);
    }
  }
  const held = req.snapshot.held;
  const claimedNow: Allocation[] = [];
  const ips: IPConfig[] = [];
  try {
    for (const pool of pools) {
      const f = fixed.get(pool.index);
      const existing = heldIn(pool, held);
      if (existing) {
        ips.push(ipConfig(existing.ip, existing.range, f && ipEquals(f.ip, existing.ip) ? f : undefined));
        continue;
      }
      const claimed = await claimInPool(store, pool, req, { fixed: f, requested: requested.get(pool.index), reserved });
      claimedNow.push(claimed.allocation);
      ips.push(claimed.ipConfig);
    }
    const stray = held.filter((a) => !pools.some((p) => heldIn(p, [a])));
    if (stray.length > 0) {
      throw new AddressUnavailableError(stray[0]!.ip, config.network,
        `container "${owner.containerID}" holds it but it is in no range set of the current config: run DEL first`);
    }
  } catch (e) {
    await Promise.allSettled(claimedNow.map((a) => releaseOrPark(store, a, req.now)));
    throw e;
  }
  return { ips, routes: config.routes, dns: req.dns };
}
