// A range set: ranges of one family from which one address is handed out (dual-stack = two sets).
import { type Family, type IP, ipToHex } from "./address.ts";
import { formatPrefix, prefixContains } from "./prefix.ts";
import { formatRange, type Range, rangeContains } from "./range.ts";

export type RangeSet = readonly Range[];

export function rangeSetFamily(set: RangeSet): Family {
  return set[0]!.rangeStart.family;
}

function overlap(a: Range, b: Range): boolean {
  return a.rangeStart.family === b.rangeStart.family &&
    a.rangeStart.value <= b.rangeEnd.value && b.rangeStart.value <= a.rangeEnd.value;
}

/** Describes why `set` is unusable (mixed families, overlapping ranges), or undefined when fine. */
export function rangeSetProblem(set: RangeSet): string | undefined {
  if (set.length === 0) return "a range set needs at least one range";
  const family = rangeSetFamily(set);
  for (let i = 0; i < set.length; i++) {
    const r = set[i]!;
    if (r.rangeStart.family !== family) {
      return `range ${i} (${formatPrefix(r.subnet)}) mixes address families in one range set: use a separate set per family`;
    }
    for (let j = 0; j < i; j++) {
      if (overlap(set[j]!, r)) return `range ${i} (${formatRange(r)}) overlaps range ${j} (${formatRange(set[j]!)})`;
    }
  }
  return undefined;
}

/**
 * A stable name for a range set: its first range, in hex. Per-set state (a node's cursor) is kept under
 * it rather than under the set's position, which runtimeConfig.ipRanges can shift.
 */
export function rangeSetKey(set: RangeSet): string {
  const first = set[0]!;
  return `${ipToHex(first.rangeStart)}-${ipToHex(first.rangeEnd)}`;
}

/** True when any range of `a` overlaps any range of `b`. */
export function rangeSetsOverlap(a: RangeSet, b: RangeSet): boolean {
  return a.some((x) => b.some((y) => overlap(x, y)));
}

/** The range whose rangeStart..rangeEnd holds `ip`. */
export function rangeHolding(set: RangeSet, ip: IP): Range | undefined {
  return set.find((r) => rangeContains(r, ip));
}

/** The range whose subnet holds `ip` (a fixed address may lie outside rangeStart..rangeEnd). */
export function rangeWithSubnetOf(set: RangeSet, ip: IP): Range | undefined {
  return rangeHolding(set, ip) ?? set.find((r) => prefixContains(r.subnet, ip));
}

export function formatRangeSet(set: RangeSet): string {
  return set.map((r) => `${formatPrefix(r.subnet)} (${formatRange(r)})`).join(", ");
}
