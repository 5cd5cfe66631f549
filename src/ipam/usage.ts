// How full a network's pool is, per range: what can be handed out, what is held, what is reserved and
// what is left. Pure: the caller reads the allocations and reservations, so the CLI (`kube-ipam usage`)
// and the controller's metrics count the same way.
import { type IP, tryParseIP } from "../ip/address.ts";
import { type Interval, IntervalSet } from "../ip/interval_set.ts";
import { formatPrefix, lastAddress } from "../ip/prefix.ts";
import { formatRange, type Range } from "../ip/range.ts";
import type { RangeSet } from "../ip/range_set.ts";
import type { Allocation } from "../store/store.ts";
import { NO_RESERVATIONS, type ReservedAddresses } from "./reservations.ts";

/** The part of IpamConfig usage needs (an IpamConfig fits). */
export interface UsageConfig {
  readonly network: string;
  readonly rangeSets: readonly RangeSet[];
  readonly exclude: IntervalSet;
}

/**
 * One range of one range set. Counts are exact bigints (an IPv6 /64 holds 2^64 addresses); they
 * always add up: `size = used + reserved + free`.
 */
export interface RangeUsage {
  readonly network: string;
  /** Index of the range set in the config. */
  readonly rangeSet: number;
  /** "10.0.0.0/24". */
  readonly subnet: string;
  /** "rangeStart-rangeEnd". */
  readonly range: string;
  /** Addresses of the range that may be handed out: not network, gateway, IPv4 broadcast or `exclude`. */
  readonly size: bigint;
  /** Of those, the ones held (live or parked sticky addresses). */
  readonly used: bigint;
  /** Of those, the ones in a reservation and not held. */
  readonly reserved: bigint;
  /** The rest: what dynamic allocation can still hand out. */
  readonly free: bigint;
}

/** RangeUsage for JSON: counts above Number.MAX_SAFE_INTEGER become decimal strings, never rounded. */
export interface RangeUsageJSON {
  network: string;
  rangeSet: number;
  subnet: string;
  range: string;
  size: number | string;
  used: number | string;
  reserved: number | string;
  free: number | string;
}

/** Network, gateway and IPv4 broadcast of `r` that lie inside rangeStart..rangeEnd, plus `exclude`. */
function blockedIn(r: Range, exclude: IntervalSet): IntervalSet {
  const family = r.subnet.network.family;
  const infra = [r.subnet.network, r.gateway, ...(family === 4 ? [lastAddress(r.subnet)] : [])];
  const points: Interval[] = infra.map((ip) => ({ family, start: ip.value, end: ip.value }));
  return exclude.union(new IntervalSet(points));
}

function usageOfRange(config: UsageConfig, index: number, r: Range, held: readonly IP[], reserved: ReservedAddresses): RangeUsage {
  const family = r.rangeStart.family;
  const [start, end] = [r.rangeStart.value, r.rangeEnd.value];
  const blocked = blockedIn(r, config.exclude);
  const blockedCount = blocked.countWithin(family, start, end);
  const size = end - start + 1n - blockedCount;
  // Reserved addresses that may otherwise be handed out: |(R ∪ B) ∩ range| - |B ∩ range|.
  const reservedCount = reserved.all.union(blocked).countWithin(family, start, end) - blockedCount;
  let used = 0n;
  let heldReserved = 0n;
  for (const ip of held) {
    if (ip.family !== family || ip.value < start || ip.value > end || blocked.has(ip)) continue;
    used++;
    if (reserved.all.has(ip)) heldReserved++;
  }
  const reservedFree = reservedCount - heldReserved;
  return {
    network: config.network,
    rangeSet: index,
    subnet: formatPrefix(r.subnet),
    range: formatRange(r),
    size,
    used,
    reserved: reservedFree,
    free: size - used - reservedFree,
  };
}

/**
 * Usage of every range of every range set of `config`, in config order, from the network's
 * allocations (`NetworkStore.list()`) and the reservations (`reservedAddresses(await store.reservations())`).
 *
 * Only addresses that may be handed out count: an address held or reserved on the gateway, outside
 * rangeStart..rangeEnd (a fixed address elsewhere in the subnet) or in `exclude` is in no count, so
 * `free` is exactly what the allocator can still hand out.
 *
 * @example
 * const usage = poolUsage(config, await net.list(), reservedAddresses(await store.reservations()));
 * // [{ network: "net", rangeSet: 0, subnet: "10.0.0.0/24", range: "10.0.0.1-10.0.0.254",
 * //    size: 253n, used: 2n, reserved: 1n, free: 250n }]
 */
export function poolUsage(
  config: UsageConfig,
  allocations: readonly Allocation[],
  reserved: ReservedAddresses = NO_RESERVATIONS,
): RangeUsage[] {
  const held = allocations.map((a) => tryParseIP(a.ip)).filter((ip): ip is IP => ip !== undefined);
  return config.rangeSets.flatMap((set, index) => set.map((r) => usageOfRange(config, index, r, held, reserved)));
}

/** A count for JSON: a number when exact, else its decimal string ("18446744073709551615"). */
export function countJSON(n: bigint): number | string {
  return n <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(n) : n.toString();
}

export function rangeUsageJSON(u: RangeUsage): RangeUsageJSON {
  return {
    network: u.network,
    rangeSet: u.rangeSet,
    subnet: u.subnet,
    range: u.range,
    size: countJSON(u.size),
    used: countJSON(u.used),
    reserved: countJSON(u.reserved),
    free: countJSON(u.free),
  };
}
