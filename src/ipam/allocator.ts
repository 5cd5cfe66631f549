// Finding and claiming one address in a range set. The scan reads the held addresses of a small
// window in one store call (one etcd range read) and walks the gaps; a window found full is followed
// by batched counts that cross the rest of a dense run, so the cost of a claim stays a few cheap
// round trips however full the pool is. Claims are compare-and-put; a lost race moves on.
import { formatIP, type IP, tryParseIP } from "../ip/address.ts";
import type { FreeAddressFinder } from "../ip/held_index.ts";
import { IntervalSet } from "../ip/interval_set.ts";
import { isInfrastructure, type Range } from "../ip/range.ts";
import { roundRobinSegments, type Segment } from "../ip/range_iter.ts";
import { formatRangeSet, rangeHolding, type RangeSet, rangeSetFamily, rangeSetKey } from "../ip/range_set.ts";
import { type Allocation, type CountRead, type HeldRead, type HeldWindow, type NetworkStore, sameOwner } from "../store/store.ts";
import type { IpamConfig } from "../config/ipam_config.ts";
import { PoolExhaustedError } from "./errors.ts";
import { NO_RESERVATIONS, type ReservedAddresses } from "./reservations.ts";
import { failpoint } from "../lib/failpoint.ts";

/**
 * How many held addresses one scan step reads. Small, because etcd's JSON for many keys is slow
 * (measured on etcd 3.4: 64 keys 0.8 ms, 512 keys 4.2 ms, a count 0.3 ms).
 */
const WINDOW = 64;
const WINDOW_N = BigInt(WINDOW);

/** How many blocks one count request covers (one etcd transaction of count-only reads). */
const BLOCKS = 16;

/**
 * The start of the first window in [from, to] that is not entirely held, found with counts alone:
 * one request counts 16 blocks; a run of dense blocks is crossed 16 blocks at a time with blocks 16
 * times larger, and a block with a gap is split into 16 smaller ones, down to one window. A dense run
 * of n addresses so costs about log16(n) requests. Returns `to + 1` when every address up to `to` is held.
 */
async function firstGap(store: NetworkStore, family: 4 | 6, from: bigint, to: bigint, block: bigint, known?: readonly number[]): Promise<bigint> {
  const counts = known ?? await store.countHeldBlocks(family, from, to, block, BLOCKS);
  for (let i = 0; i < counts.length; i++) {
    const a = from + BigInt(i) * block;
    const b = a + block - 1n < to ? a + block - 1n : to;
    if (BigInt(counts[i]!) === b - a + 1n) continue;
    return block <= WINDOW_N ? a : firstGap(store, family, a, b, block / BigInt(BLOCKS));
  }
  const next = from + BigInt(BLOCKS) * block;
  return next > to ? to + 1n : firstGap(store, family, next, to, block * BigInt(BLOCKS));
}

export interface Pool {
  readonly network: string;
  readonly set: RangeSet;
  readonly index: number;
  /** Addresses never handed out dynamically (exclude, reservations). */
  readonly skip: IntervalSet;
}

/** The pools of a network: one per range set, skipping `exclude` and the reservations. */
export function poolsOf(config: IpamConfig, reserved: ReservedAddresses = NO_RESERVATIONS, heldElsewhere: readonly IP[] = []): Pool[] {
  const elsewhere = new IntervalSet(heldElsewhere.map((ip) => ({ family: ip.family, start: ip.value, end: ip.value })));
  const skip = config.exclude.union(reserved.all).union(elsewhere);
  return config.rangeSets.map((set, index) => ({ network: config.network, set, index, skip }));
}

/**
 * The first address from `c` on in the segment that the pool hands out dynamically, held or not: not
 * excluded or reserved, not the gateway, network or broadcast address. Undefined past the segment.
 */
function nextAllowed(pool: Pool, seg: Segment, family: 4 | 6, c: bigint): bigint | undefined {
  while (c <= seg.to) {
    const ip: IP = { family, value: c };
    const skipped = pool.skip.find(ip);
    if (skipped) c = skipped.end + 1n;
    else if (isInfrastructure(seg.range, ip)) c++;
    else return c;
  }
  return undefined;
}

/** What the caller of freeAddresses already read of the first segment's start. */
export interface FirstReads {
  readonly window: HeldWindow;
  /** countHeldBlocks of the blocks of WINDOW addresses after `from`, for a window found full. */
  readonly counts?: { readonly from: bigint; readonly counts: readonly number[] };
}

/**
 * Free addresses of the pool in round-robin order after the cursor, read lazily from the store.
 * `first` is what the caller already read of the first segment's start.
 */
export async function* freeAddresses(store: NetworkStore, pool: Pool, cursor: IP | undefined, first?: FirstReads): AsyncGenerator<{ ip: IP; range: Range }> {
  const family = rangeSetFamily(pool.set);
  let known = first;
  for (const seg of roundRobinSegments(pool.set, cursor)) {
    let from = seg.from;
    while (from <= seg.to) {
      const { held, through } = known?.window ?? await store.heldBetween(family, from, seg.to, WINDOW);
      const counts = known?.counts;
      known = undefined;
      let h = 0;
      let c = from;
      let found = false;
      for (;;) {
        const next = nextAllowed(pool, seg, family, c);
        if (next === undefined || next > through) {
          c = next ?? seg.to + 1n;
          break;
        }
        c = next;
        while (h < held.length && held[h]!.value < c) h++;
        if (!(h < held.length && held[h]!.value === c)) {
          found = true;
          yield { ip: { family, value: c }, range: seg.range };
        }
        c++;
      }
      // Every address the answer covers that could be handed out is held: a dense run, crossed with counts.
      const full = held.length > 0 && !found;
      from = c > through ? c : through + 1n;
      if (full && from <= seg.to) from = await firstGap(store, family, from, seg.to, WINDOW_N, counts?.from === from ? counts.counts : undefined);
    }
  }
}

interface Candidate {
  readonly value: bigint;
  readonly range: Range;
}

function nextAllowedIn(pool: Pool, seg: Segment, family: 4 | 6): Candidate | undefined {
  const value = nextAllowed(pool, seg, family, seg.from);
  return value === undefined ? undefined : { value, range: seg.range };
}

/** The first address in round-robin order that the pool hands out and `view` says is free. */
function firstFreeInView(view: FreeAddressFinder, pool: Pool, segments: readonly Segment[], family: 4 | 6): Candidate | undefined {
  for (const seg of segments) {
    let c: bigint | undefined = seg.from;
    while (c !== undefined) {
      const allowed = nextAllowed(pool, seg, family, c);
      if (allowed === undefined) break;
      c = view.nextFree(family, allowed, seg.to);
      if (c === allowed) return { value: c, range: seg.range };
    }
  }
  return undefined;
}

/** FNV-1a: a stable, well-spread number from a node name. */
function hashName(name: string): bigint {
  let h = 0xcbf29ce484222325n;
  for (const byte of new TextEncoder().encode(name)) h = ((h ^ BigInt(byte)) * 0x100000001b3n) & 0xffffffffffffffffn;
  return h;
}

/**
 * Where a node without a cursor starts in a shared pool: a point derived from its name, so that new
 * nodes spread over the pool instead of all racing for its first address.
 */
export function startingCursor(set: RangeSet, node: string): IP {
  const sizes = set.map((r) => r.rangeEnd.value - r.rangeStart.value + 1n);
  let offset = hashName(node) % sizes.reduce((a, b) => a + b, 0n);
  for (let i = 0; i < set.length; i++) {
    if (offset < sizes[i]!) return { family: rangeSetFamily(set), value: set[i]!.rangeStart.value + offset };
    offset -= sizes[i]!;
  }
  return set[0]!.rangeStart;
}

/** How far, at most, a claimer that lost a race jumps ahead (in free addresses). */
const MAX_JUMP = 8;

/**
 * Claims the next free address of the pool after `cursor` (this node's last address in the pool) for
 * `record` (its ip is filled in). `random` picks the jump after a lost race (tests pin it).
 */
export async function allocateDynamic(
  store: NetworkStore,
  pool: Pool,
  record: Omit<Allocation, "ip">,
  lastCursor: IP | undefined,
  random: () => number = Math.random,
): Promise<{ allocation: Allocation; range: Range }> {
  const cursor = lastCursor ?? (store.shared ? startingCursor(pool.set, record.node) : undefined);
  const cursorKey = rangeSetKey(pool.set);
  let conflicts = 0;

  /** `won` when `ip` is now the owner's, else what the store said of the holder. */
  const rangeOf = (a: Allocation) => {
    const at = tryParseIP(a.ip);
    return at && rangeHolding(pool.set, at);
  };

  async function claim(ip: IP, range: Range, readOnLoss?: HeldRead, countOnLoss?: CountRead) {
    const allocation: Allocation = { ...record, ip: formatIP(ip), ...(conflicts ? { conflicts } : {}) };
    const outcome = await store.claim(ip, allocation, { cursorKey, readOnLoss, countOnLoss });
    if (outcome.claimed) failpoint("claim.committed");
    if (outcome.claimed) {
      // Another attempt of this very ADD (a runtime's retry overlapping a slow first one) claimed in this
      // pool first: the older claim is the owner's, this one is undone, and both attempts answer the same.
      const older = outcome.earlier?.find((a) => a.rangeSet === record.rangeSet && a.network === record.network);
      if (older) {
        await store.releaseIfUnchanged(allocation);
        return { won: { allocation: older, range: rangeOf(older) ?? range } };
      }
      return { won: { allocation, range } };
    }
    // A retried write may find its own earlier claim: that is ours, not a conflict.
    if (outcome.holder && sameOwner(outcome.holder, record)) return { won: { allocation: outcome.holder, range } };
    return { lost: outcome };
  }

  // The first candidate is claimed before anything is read where that is cheap. Where a lost claim costs
  // no more than a read (etcd: one transaction either way), the reads are done by the same transaction
  // only if the claim is lost: the first window, and the counts that would follow if that window is all
  // held (a guess lost in a full part of the pool then costs no extra round trip). In round-robin order
  // the address after the cursor is usually free, so an ADD saves a round trip. Where the store keeps a
  // view of what is held (the node agent), the candidate is the first address the view says is free, so
  // that an ADD into a dense part of the pool costs no more than one into an empty pool.
  let first: FirstReads | undefined;
  const family = rangeSetFamily(pool.set);
  const segments = roundRobinSegments(pool.set, cursor);
  const seen = store.heldView?.();
  const seg = store.claimBeforeRead || seen ? segments[0] : undefined;
  const candidate = seen ? firstFreeInView(seen, pool, segments, family)
    : seg && nextAllowedIn(pool, seg, family);
  if (seg && candidate) {
    const countsFrom = seg.from + WINDOW_N;
    const r = await claim({ family, value: candidate.value }, candidate.range,
      store.claimBeforeRead ? { family, from: seg.from, to: seg.to, limit: WINDOW } : undefined,
      store.claimBeforeRead && countsFrom <= seg.to ? { family, from: countsFrom, to: seg.to, size: WINDOW_N, blocks: BLOCKS } : undefined);
    if (r.won) return r.won;
    const { window, counts } = r.lost;
    first = window && { window, counts: counts && { from: countsFrom, counts } };
    // Lost to a claim made since this ADD began: a race, like those below. Lost to an older holder: a
    // guess that missed, neither a conflict nor a reason to jump.
    const holder = r.lost.holder;
    if (!holder || holder.allocatedAt >= record.allocatedAt) conflicts++;
  }

  // A second pass without jumps makes sure a jump never skips the last free addresses of a pool.
  for (const jumps of [true, false]) {
    // Lost a race: the others who read the same cursor are trying the next addresses too. Jumping a few
    // free addresses ahead at random spreads them out instead of colliding again on each one (measured
    // at 10 concurrent ADDs on one host: 2.6 lost races per ADD without, 0.7 with, 10% less time). The
    // skipped addresses stay after the cursor, so round-robin order is kept where it matters.
    const jump = () => (jumps ? Math.floor(random() * MAX_JUMP) : 0);
    let skip = conflicts > 0 ? jump() : 0;
    let skipped = false;
    for await (const { ip, range } of freeAddresses(store, pool, cursor, first)) {
      if (skip > 0) {
        skip--;
        skipped = true;
        continue;
      }
      const r = await claim(ip, range);
      if (r.won) return r.won;
      conflicts++;
      skip = jump();
    }
    first = undefined;
    if (!skipped) break;
  }
  throw new PoolExhaustedError(pool.network, formatRangeSet(pool.set));
}
