// The order in which a range set's addresses are tried. Round-robin from the last address handed
// out (the cursor): the rest of its range, then the following ranges, then wrapping around to the
// ranges before it and the start of its own. An address freed a moment ago is therefore the last
// to be reused, which keeps stale ARP/conntrack entries on other hosts from hitting a new pod.
import type { IP } from "./address.ts";
import type { RangeSet } from "./range_set.ts";
import { type Range, rangeContains } from "./range.ts";

export interface Segment {
  readonly range: Range;
  /** First and last address to try, inclusive, in ascending order. */
  readonly from: bigint;
  readonly to: bigint;
}

export function roundRobinSegments(set: RangeSet, cursor: IP | undefined): Segment[] {
  const at = cursor ? set.findIndex((r) => rangeContains(r, cursor)) : -1;
  if (at < 0) return set.map((range) => ({ range, from: range.rangeStart.value, to: range.rangeEnd.value }));
  const here = set[at]!;
  const c = cursor!.value;
  const out: Segment[] = [];
  if (c < here.rangeEnd.value) out.push({ range: here, from: c + 1n, to: here.rangeEnd.value });
  for (let k = 1; k < set.length; k++) {
    const range = set[(at + k) % set.length]!;
    out.push({ range, from: range.rangeStart.value, to: range.rangeEnd.value });
  }
  out.push({ range: here, from: here.rangeStart.value, to: c });
  return out;
}
