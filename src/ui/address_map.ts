// The dashboard's address map: what each address of a window is (one character per address), or, for a
// window larger than the cells asked for, how full each block of it is (counts per block). Pure; the
// blocks are computed from interval counts and the held addresses, never by visiting each address, so a
// /64 costs what a /24 does.
import { BITS, type Family, formatIP, tryParseIP } from "../ip/address.ts";
import type { Interval, IntervalSet } from "../ip/interval_set.ts";
import { lastAddress } from "../ip/prefix.ts";
import { countJSON, type UsageConfig } from "../ipam/usage.ts";
import type { Allocation } from "../store/store.ts";

/**
 * One address, one character:
 * held: `d` dynamic, `q` requested, `f` fixed, `s` sticky, `p` parked sticky, `m` migrated;
 * not held: `g` gateway, `n` network address, `b` broadcast, `x` excluded, `o` outside every range,
 * `r` reserved, `.` free, `u` unknown (a network the controller has no config for).
 */
export type CellState = "d" | "q" | "f" | "s" | "p" | "m" | "g" | "n" | "b" | "x" | "o" | "r" | "." | "u";

/** What each state is called in the API and on the page. */
export const STATE_NAMES: Readonly<Record<CellState, string>> = {
  d: "dynamic", q: "requested", f: "fixed", s: "sticky", p: "parked", m: "migrated",
  g: "gateway", n: "network", b: "broadcast", x: "excluded", o: "outside", r: "reserved", ".": "free", u: "unknown",
};

const KIND_STATE: Readonly<Record<Allocation["kind"], CellState>> = {
  dynamic: "d", requested: "q", fixed: "f", sticky: "s", migrated: "m",
};

export function heldState(a: Allocation): CellState {
  return a.parkedAt ? "p" : KIND_STATE[a.kind] ?? "d";
}

/** A network's held addresses of one family, ascending, with their states. */
export interface HeldIndex {
  readonly values: readonly bigint[];
  readonly states: readonly CellState[];
}

export function heldIndex(allocations: readonly Allocation[], family: Family): HeldIndex {
  const held: { v: bigint; s: CellState }[] = [];
  for (const a of allocations) {
    const ip = tryParseIP(a.ip);
    if (ip?.family === family) held.push({ v: ip.value, s: heldState(a) });
  }
  held.sort((a, b) => (a.v < b.v ? -1 : a.v > b.v ? 1 : 0));
  return { values: held.map((h) => h.v), states: held.map((h) => h.s) };
}

/** First index of `values` (ascending) not below `v`. */
function lowerBound(values: readonly bigint[], v: bigint): number {
  let lo = 0, hi = values.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (values[mid]! < v) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** `a` minus `b`; both sorted, merged, of one family. */
function subtract(a: readonly Interval[], b: readonly Interval[]): Interval[] {
  const out: Interval[] = [];
  for (const i of a) {
    let start = i.start;
    for (const c of b) {
      if (c.end < start || c.start > i.end) continue;
      if (c.start > start) out.push({ family: i.family, start, end: c.start - 1n });
      start = c.end + 1n;
      if (start > i.end) break;
    }
    if (start <= i.end) out.push({ family: i.family, start, end: i.end });
  }
  return out;
}

/** `a` ∩ `b`; both sorted, merged, of one family. */
function intersect(a: readonly Interval[], b: readonly Interval[]): Interval[] {
  const out: Interval[] = [];
  let j = 0;
  for (const i of a) {
    while (j < b.length && b[j]!.end < i.start) j++;
    for (let k = j; k < b.length && b[k]!.start <= i.end; k++) {
      const start = b[k]!.start > i.start ? b[k]!.start : i.start;
      const end = b[k]!.end < i.end ? b[k]!.end : i.end;
      if (start <= end) out.push({ family: i.family, start, end });
    }
  }
  return out;
}

/** Addresses of sorted, disjoint `set` in [start, end]. */
function countIn(set: readonly Interval[], start: bigint, end: bigint): bigint {
  let n = 0n;
  for (let k = lowerBoundInterval(set, start); k < set.length && set[k]!.start <= end; k++) {
    const a = set[k]!.start > start ? set[k]!.start : start;
    const b = set[k]!.end < end ? set[k]!.end : end;
    if (a <= b) n += b - a + 1n;
  }
  return n;
}

/** First interval of `set` that ends at or after `v`. */
function lowerBoundInterval(set: readonly Interval[], v: bigint): number {
  let lo = 0, hi = set.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (set[mid]!.end < v) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function merged(family: Family, intervals: Interval[]): Interval[] {
  intervals.sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
  const out: Interval[] = [];
  for (const i of intervals) {
    if (i.family !== family) continue;
    const last = out[out.length - 1];
    if (last && i.start <= last.end + 1n) {
      if (i.end > last.end) out[out.length - 1] = { ...last, end: i.end };
    } else {
      out.push(i);
    }
  }
  return out;
}

/** What the map knows of a network in one family: which addresses may be handed out, and why not. */
export interface MapModel {
  readonly family: Family;
  /** False for a network the controller has no config for: every address not held is `u` or `r`. */
  readonly configured: boolean;
  readonly held: HeldIndex;
  /** Addresses in a range and not network, gateway, broadcast or excluded: what allocation may hand out. */
  readonly available: readonly Interval[];
  /** Of those, the reserved ones. */
  readonly availableReserved: readonly Interval[];
  readonly reserved: readonly Interval[];
  readonly ranges: readonly Interval[];
  readonly exclude: readonly Interval[];
  readonly infra: ReadonlyMap<bigint, CellState>;
}

export function mapModel(family: Family, config: UsageConfig | undefined, allocations: readonly Allocation[], reserved: IntervalSet): MapModel {
  const ranges: Interval[] = [];
  const infra = new Map<bigint, CellState>();
  for (const r of config?.rangeSets.flat() ?? []) {
    if (r.rangeStart.family !== family) continue;
    ranges.push({ family, start: r.rangeStart.value, end: r.rangeEnd.value });
    infra.set(r.subnet.network.value, "n");
    if (family === 4) infra.set(lastAddress(r.subnet).value, "b");
    infra.set(r.gateway.value, "g");
  }
  const blocked = merged(family, [...infra.keys()].map((v) => ({ family, start: v, end: v })));
  const exclude = merged(family, [...(config?.exclude.intervals ?? [])]);
  const reservedList = merged(family, [...reserved.intervals]);
  const available = subtract(subtract(merged(family, ranges), blocked), exclude);
  return {
    family,
    configured: config !== undefined,
    held: heldIndex(allocations, family),
    available,
    availableReserved: intersect(available, reservedList),
    reserved: reservedList,
    ranges: merged(family, ranges),
    exclude,
    infra,
  };
}

function within(set: readonly Interval[], v: bigint): boolean {
  const k = lowerBoundInterval(set, v);
  return k < set.length && set[k]!.start <= v;
}

/** The state of one address that nobody holds. */
function freeState(m: MapModel, v: bigint): CellState {
  if (!m.configured) return within(m.reserved, v) ? "r" : "u";
  const role = m.infra.get(v);
  if (role) return role;
  if (within(m.exclude, v)) return "x";
  if (!within(m.ranges, v)) return "o";
  return within(m.reserved, v) ? "r" : ".";
}

export type Count = number | string;

/** Per block, how many of its addresses are in each state; they add up to the block's size. */
export interface BlockCounts {
  /** Held, parked sticky addresses included. */
  readonly held: Count[];
  /** Reserved, may otherwise be handed out, not held. */
  readonly reserved: Count[];
  /** Never handed out dynamically (network, gateway, broadcast, excluded, outside every range), not held; or unknown. */
  readonly unavailable: Count[];
  /** What allocation can still hand out. */
  readonly free: Count[];
}

export interface AddressMap {
  readonly family: Family;
  readonly from: string;
  readonly to: string;
  /** Addresses in the window. */
  readonly count: Count;
  /** Addresses per cell: 1, or a power of two (the blocks are aligned on `from`). */
  readonly blockSize: Count;
  readonly cells: number;
  readonly mode: "address" | "block";
  /** mode "address": one CellState per address, in order. */
  readonly states?: string;
  /** mode "block". */
  readonly blocks?: BlockCounts;
}

export const MAX_CELLS = 16384;

/**
 * The map of [from, to] in at most `cells` cells (MAX_CELLS at most): one per address when the window
 * fits, else blocks of the smallest power of two that fits.
 */
export function addressMap(m: MapModel, from: bigint, to: bigint, cells: number): AddressMap {
  if (to < from) throw new RangeError("The window ends before it starts");
  const max = BigInt(Math.max(1, Math.min(MAX_CELLS, Math.floor(cells))));
  const count = to - from + 1n;
  const base = { family: m.family, from: formatIP({ family: m.family, value: from }), to: formatIP({ family: m.family, value: to }), count: countJSON(count) };
  const { values, states } = m.held;
  if (count <= max) {
    let out = "";
    let k = lowerBound(values, from);
    for (let v = from; v <= to; v++) {
      if (k < values.length && values[k] === v) out += states[k++];
      else out += freeState(m, v);
    }
    return { ...base, blockSize: 1, cells: Number(count), mode: "address", states: out };
  }
  let size = 1n;
  while ((count + size - 1n) / size > max) size <<= 1n;
  const n = Number((count + size - 1n) / size);
  const blocks: BlockCounts = { held: [], reserved: [], unavailable: [], free: [] };
  let k = lowerBound(values, from);
  for (let b = 0; b < n; b++) {
    const start = from + BigInt(b) * size;
    const end = start + size - 1n < to ? start + size - 1n : to;
    let held = 0n, heldAvailable = 0n, heldReserved = 0n;
    for (; k < values.length && values[k]! <= end; k++) {
      held++;
      if (within(m.available, values[k]!)) {
        heldAvailable++;
        if (within(m.availableReserved, values[k]!)) heldReserved++;
      }
    }
    const available = countIn(m.available, start, end);
    const availableReserved = countIn(m.availableReserved, start, end);
    const reserved = m.configured ? availableReserved - heldReserved : countIn(m.reserved, start, end) - countHeld(m, start, end, m.reserved);
    const free = m.configured ? available - availableReserved - (heldAvailable - heldReserved) : 0n;
    blocks.held.push(countJSON(held));
    blocks.reserved.push(countJSON(reserved));
    blocks.free.push(countJSON(free));
    blocks.unavailable.push(countJSON(end - start + 1n - held - reserved - free));
  }
  return { ...base, blockSize: countJSON(size), cells: n, mode: "block", blocks };
}

/** Held addresses of [start, end] inside `set`. */
function countHeld(m: MapModel, start: bigint, end: bigint, set: readonly Interval[]): bigint {
  let n = 0n;
  for (let k = lowerBound(m.held.values, start); k < m.held.values.length && m.held.values[k]! <= end; k++) {
    if (within(set, m.held.values[k]!)) n++;
  }
  return n;
}

/** The whole address space of a family, for checking windows. */
export function familyEnd(family: Family): bigint {
  return (1n << BigInt(BITS[family])) - 1n;
}
