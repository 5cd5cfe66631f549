// Finding and claiming one address in a range set. The scan reads the held addresses of a small
// window in one store call (one etcd range read) and walks the gaps; a window found full is followed
// by batched counts that cross the rest of a dense run, so the cost of a claim stays a few cheap
// round trips however full the pool is. Claims are compare-and-put; a lost race moves on.
import { formatIP, type IP } from "../ip/address.ts";
import type { IntervalSet } from "../ip/interval_set.ts";
import { isInfrastructure, type Range } from "../ip/range.ts";
import { roundRobinSegments } from "../ip/range_iter.ts";
import { formatRangeSet, type RangeSet, rangeSetFamily, rangeSetKey } from "../ip/range_set.ts";
import { type Allocation, type NetworkStore, sameOwner } from "../store/store.ts";
import type { IpamConfig } from "../config/ipam_config.ts";
import { PoolExhaustedError } from "./errors.ts";
import { NO_RESERVATIONS, type ReservedAddresses } from "./reservations.ts";

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
async function firstGap(store: NetworkStore, family: 4 | 6, from: bigint, to: bigint, block: bigint): Promise<bigint> {
  const counts = await store.countHeldBlocks(family, from, to, block, BLOCKS);
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
export function poolsOf(config: IpamConfig, reserved: ReservedAddresses = NO_RESERVATIONS): Pool[] {
  const skip = config.exclude.union(reserved.all);
  return config.rangeSets.map((set, index) => ({ network: config.network, set, index, skip }));
}

/** Free addresses of the pool in round-robin order after the cursor, read lazily from the store. */
export async function* freeAddresses(store: NetworkStore, pool: Pool, cursor: IP | undefined): AsyncGenerator<{ ip: IP; range: Range }> {
  const family = rangeSetFamily(pool.set);
  for (const seg of roundRobinSegments(pool.set, cursor)) {
    let from = seg.from;
    while (from <= seg.to) {
      const { held, through } = await store.heldBetween(family, from, seg.to, WINDOW);
      let h = 0;
      let c = from;
      while (c <= through) {
        while (h < held.length && held[h]!.value < c) h++;
        if (h < held.length && held[h]!.value === c) {
          c++;
          continue;
        }
        const ip: IP = { family, value: c };
        const skipped = pool.skip.find(ip);
        if (skipped) {
          c = skipped.end + 1n;
          continue;
        }
        if (!isInfrastructure(seg.range, ip)) yield { ip, range: seg.range };
        c++;
      }
      // The answer was cut short inside a run of held addresses: a dense run, crossed with counts.
      const last = held[held.length - 1]?.value;
      const full = last === through && last - held[0]!.value === BigInt(held.length - 1);
      from = c;
      if (full && from <= seg.to) from = await firstGap(store, family, from, seg.to, WINDOW_N);
    }
  }
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
  let conflicts = 0;
  // A second pass without jumps makes sure a jump never skips the last free addresses of a pool.
  for (const jumps of [true, false]) {
    let skip = 0;
    let skipped = false;
    for await (const { ip, range } of freeAddresses(store, pool, cursor)) {
      if (skip > 0) {
        skip--;
        skipped = true;
        continue;
      }
      const allocation: Allocation = { ...record, ip: formatIP(ip), ...(conflicts ? { conflicts } : {}) };
      const outcome = await store.claim(ip, allocation, { cursorKey: rangeSetKey(pool.set) });
      // A retried write may find its own earlier claim: that is ours, not a conflict.
      if (outcome.claimed) return { allocation, range };
      if (outcome.holder && sameOwner(outcome.holder, record)) return { allocation: outcome.holder, range };
      conflicts++;
      // Lost a race: the others who read the same cursor are trying the next addresses too. Jumping a few
      // free addresses ahead at random spreads them out instead of colliding again on each one (measured
      // at 10 concurrent ADDs on one host: 2.6 lost races per ADD without, 0.7 with, 10% less time). The
      // skipped addresses stay after the cursor, so round-robin order is kept where it matters.
      if (jumps) skip = Math.floor(random() * MAX_JUMP);
    }
    if (!skipped) break;
  }
  throw new PoolExhaustedError(pool.network, formatRangeSet(pool.set));
}
