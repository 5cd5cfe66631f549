// Sets of addresses kept as sorted, merged intervals, so a reservation of an IPv6 /64 or a
// large "a-b" range costs one entry, never an expansion.
import { compareIP, type Family, formatIP, type IP, tryParseIP } from "./address.ts";
import { lastAddress, tryParseCIDR } from "./prefix.ts";

export interface Interval {
  readonly family: Family;
  readonly start: bigint;
  readonly end: bigint; // inclusive
}

/** Parses "ADDR", "A-B" or "CIDR"; undefined when malformed, mixed families or reversed. */
export function tryParseInterval(s: string): Interval | undefined {
  if (typeof s !== "string") return undefined;
  const t = s.trim();
  if (t.includes("/")) {
    const c = tryParseCIDR(t);
    if (!c) return undefined;
    return { family: c.ip.family, start: c.prefix.network.value, end: lastAddress(c.prefix).value };
  }
  const dash = t.indexOf("-");
  if (dash >= 0) {
    const a = tryParseIP(t.slice(0, dash).trim());
    const b = tryParseIP(t.slice(dash + 1).trim());
    if (!a || !b || a.family !== b.family || compareIP(a, b) > 0) return undefined;
    return { family: a.family, start: a.value, end: b.value };
  }
  const ip = tryParseIP(t);
  return ip && { family: ip.family, start: ip.value, end: ip.value };
}

export function formatInterval(i: Interval): string {
  const a = formatIP({ family: i.family, value: i.start });
  return i.start === i.end ? a : `${a}-${formatIP({ family: i.family, value: i.end })}`;
}

export class IntervalSet {
  readonly #items: readonly Interval[];

  constructor(intervals: Iterable<Interval>) {
    const sorted = [...intervals].sort((a, b) =>
      a.family - b.family || (a.start < b.start ? -1 : a.start > b.start ? 1 : 0)
    );
    const merged: Interval[] = [];
    for (const i of sorted) {
      const last = merged[merged.length - 1];
      if (last && last.family === i.family && i.start <= last.end + 1n) {
        if (i.end > last.end) merged[merged.length - 1] = { ...last, end: i.end };
      } else {
        merged.push(i);
      }
    }
    this.#items = merged;
  }

  static readonly empty = new IntervalSet([]);

  get intervals(): readonly Interval[] {
    return this.#items;
  }

  /** The interval holding `ip`, if any: callers skip to its end in one step. */
  find(ip: IP): Interval | undefined {
    for (const i of this.#items) {
      if (i.family === ip.family && i.start <= ip.value && ip.value <= i.end) return i;
    }
    return undefined;
  }

  has(ip: IP): boolean {
    return this.find(ip) !== undefined;
  }

  /** How many addresses of [start, end] this set holds. */
  countWithin(family: Family, start: bigint, end: bigint): bigint {
    let n = 0n;
    for (const i of this.#items) {
      if (i.family !== family) continue;
      const a = i.start > start ? i.start : start;
      const b = i.end < end ? i.end : end;
      if (a <= b) n += b - a + 1n;
    }
    return n;
  }

  union(other: IntervalSet): IntervalSet {
    return new IntervalSet([...this.#items, ...other.#items]);
  }
}
