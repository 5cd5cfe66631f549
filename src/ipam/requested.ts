// Requested addresses (CNI_ARGS IP=, args.cni.ips, runtimeConfig.ips): each must fall in one range
// set, at most one per set, and be an address the pool may hand out.
import { formatIP, type IP } from "../ip/address.ts";
import { formatInterval, type IntervalSet } from "../ip/interval_set.ts";
import { isInfrastructure } from "../ip/range.ts";
import { type RangeSet, rangeHolding } from "../ip/range_set.ts";
import { AddressUnavailableError } from "./errors.ts";

/** Maps each requested address to the index of its range set; throws for any that cannot be served. */
export function assignRequested(network: string, sets: readonly RangeSet[], requested: readonly IP[], exclude: IntervalSet): Map<number, IP> {
  const bySet = new Map<number, IP>();
  for (const ip of requested) {
    const text = formatIP(ip);
    const index = sets.findIndex((s) => rangeHolding(s, ip) !== undefined);
    if (index < 0) throw new AddressUnavailableError(text, network, "it is in no range of this network");
    const range = rangeHolding(sets[index]!, ip)!;
    if (isInfrastructure(range, ip)) {
      throw new AddressUnavailableError(text, network, "it is the gateway, network or broadcast address of its subnet");
    }
    const excluded = exclude.find(ip);
    if (excluded) throw new AddressUnavailableError(text, network, `it is excluded by ipam.exclude "${formatInterval(excluded)}"`);
    const other = bySet.get(index);
    if (other) {
      throw new AddressUnavailableError(text, network,
        `"${formatIP(other)}" was requested from the same range set ${index}; one address per range set`);
    }
    bySet.set(index, ip);
  }
  return bySet;
}
