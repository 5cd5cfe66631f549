// What the dashboard says of each network: its ranges (from the controller's --conf for that network;
// inferred from the held addresses for the others, whose configs live on the nodes), the window the map
// opens on for each, and the counts. Pure.
import { BITS, type Family, formatIP, tryParseIP } from "../ip/address.ts";
import { formatPrefix, lastAddress, prefixSize, type Prefix } from "../ip/prefix.ts";
import { formatRange, type Range } from "../ip/range.ts";
import type { ReservedAddresses } from "../ipam/reservations.ts";
import { countJSON, poolUsage, rangeUsageJSON, type RangeUsageJSON, type UsageConfig } from "../ipam/usage.ts";
import type { Allocation } from "../store/store.ts";
import type { Count } from "./address_map.ts";

export interface RangeView {
  /** Index of the range set in the config; null for an inferred range. */
  readonly rangeSet: number | null;
  readonly family: Family;
  readonly subnet: string;
  /** "rangeStart-rangeEnd"; null for an inferred range. */
  readonly range: string | null;
  readonly gateway: string | null;
  /** True when the controller has no config for the network: the smallest prefix holding its addresses. */
  readonly inferred: boolean;
  /** The window the map opens on: the subnet, or the range when it is a small part of a large subnet. */
  readonly from: string;
  readonly to: string;
  readonly count: Count;
}

export interface NetworkSummary {
  readonly name: string;
  /** True for the network of the controller's --conf: its ranges, usage and free addresses are known. */
  readonly configured: boolean;
  /** Addresses held, parked sticky ones included. */
  readonly held: number;
  readonly parked: number;
  /** Held addresses per kind ("parked" apart from "sticky"). */
  readonly kinds: Readonly<Record<string, number>>;
  readonly nodes: readonly string[];
  /** Exactly `kube-ipam usage -o json` for the configured network; null for the others. */
  readonly usage: readonly RangeUsageJSON[] | null;
  readonly ranges: readonly RangeView[];
}

/** Rows of the map are 16 addresses wide at least: a range's window is widened to rows. */
const ROW = 16n;

function rangeWindow(r: Range): { from: bigint; to: bigint } {
  const first = r.subnet.network.value, last = lastAddress(r.subnet).value;
  const size = prefixSize(r.subnet), span = r.rangeEnd.value - r.rangeStart.value + 1n;
  // The whole subnet shows network, gateway and broadcast in place; unless the range is a sliver of it.
  if (size <= 4096n || span * 2n >= size) return { from: first, to: last };
  const from = r.rangeStart.value - (r.rangeStart.value - first) % ROW;
  const end = r.rangeEnd.value + (ROW - 1n - (r.rangeEnd.value - first) % ROW);
  return { from, to: end < last ? end : last };
}

function view(family: Family, window: { from: bigint; to: bigint }): Pick<RangeView, "from" | "to" | "count"> {
  return {
    from: formatIP({ family, value: window.from }),
    to: formatIP({ family, value: window.to }),
    count: countJSON(window.to - window.from + 1n),
  };
}

export function configuredRanges(config: UsageConfig): RangeView[] {
  return config.rangeSets.flatMap((set, index) => set.map((r) => {
    const family = r.rangeStart.family;
    return {
      rangeSet: index,
      family,
      subnet: formatPrefix(r.subnet),
      range: formatRange(r),
      gateway: formatIP(r.gateway),
      inferred: false,
      ...view(family, rangeWindow(r)),
    };
  }));
}

/** Smallest prefix holding [lo, hi], no longer than /24 (IPv4) or /120 (IPv6) so that the map has rows. */
function coveringPrefix(family: Family, lo: bigint, hi: bigint): Prefix {
  const bits = BITS[family];
  let length = bits - 8;
  while (length > 0 && lo >> BigInt(bits - length) !== hi >> BigInt(bits - length)) length--;
  const host = BigInt(bits - length);
  return { network: { family, value: (lo >> host) << host }, length };
}

/** One range per family of the held addresses, for a network the controller has no config for. */
export function inferredRanges(allocations: readonly Allocation[]): RangeView[] {
  const bounds = new Map<Family, { lo: bigint; hi: bigint }>();
  for (const a of allocations) {
    const ip = tryParseIP(a.ip);
    if (!ip) continue;
    const b = bounds.get(ip.family);
    if (!b) bounds.set(ip.family, { lo: ip.value, hi: ip.value });
    else bounds.set(ip.family, { lo: ip.value < b.lo ? ip.value : b.lo, hi: ip.value > b.hi ? ip.value : b.hi });
  }
  return ([4, 6] as const).flatMap((family) => {
    const b = bounds.get(family);
    if (!b) return [];
    const p = coveringPrefix(family, b.lo, b.hi);
    return [{
      rangeSet: null, family, subnet: formatPrefix(p), range: null, gateway: null, inferred: true,
      ...view(family, { from: p.network.value, to: lastAddress(p).value }),
    }];
  });
}

export function kindOf(a: Allocation): string {
  return a.parkedAt ? "parked" : a.kind;
}

/** The summary of one network; `config` when the controller has the network's config. */
export function networkSummary(name: string, config: UsageConfig | undefined, allocations: readonly Allocation[], reserved: ReservedAddresses): NetworkSummary {
  const kinds: Record<string, number> = {};
  const nodes = new Set<string>();
  for (const a of allocations) {
    kinds[kindOf(a)] = (kinds[kindOf(a)] ?? 0) + 1;
    nodes.add(a.node);
  }
  return {
    name,
    configured: config !== undefined,
    held: allocations.length,
    parked: kinds.parked ?? 0,
    kinds,
    nodes: [...nodes].sort(),
    usage: config ? poolUsage(config, allocations, reserved).map(rangeUsageJSON) : null,
    ranges: config ? configuredRanges(config) : inferredRanges(allocations),
  };
}
