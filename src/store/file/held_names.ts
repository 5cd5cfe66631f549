// The embedded store's held addresses as names (fixed-width hex sorts in address order, so a native string
// sort and binary searches count them without parsing a single address), and a long-lived process's view of
// them (NetworkStore.heldView).
import { ipFromHex } from "../../ip/address.ts";
import { type FreeAddressFinder, HeldIndex } from "../../ip/held_index.ts";

export type NamesByFamily = Record<4 | 6, string[]>;

/** How many of the sorted `names` come before `name` (or, `inclusive`, are at most `name`). */
export function rank(names: readonly string[], name: string, inclusive: boolean): number {
  let lo = 0;
  let hi = names.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (names[mid]! < name || (inclusive && names[mid] === name)) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * How long a view stays in use without a new listing. It is kept current by this process's own claims and
 * releases, so only other writers (a plugin run without the agent, the CLI) make it stale, and a stale
 * view costs a lost claim or passes over an address freed meanwhile: never a wrong answer.
 */
const VIEW_MAX_AGE_MS = 10_000;

/** What one long-lived process (the agent) last saw held in one network. */
export class HeldNames {
  #index: HeldIndex | undefined;
  #at = 0;

  /** A new listing of the pool, taken at `at` (epoch ms). */
  replace(names: NamesByFamily, at: number): void {
    this.#index = new HeldIndex([...names[4], ...names[6]].map(ipFromHex).filter((ip) => ip !== undefined));
    this.#at = at;
  }

  add(hex: string): void {
    const ip = ipFromHex(hex);
    if (ip) this.#index?.add(ip.family, ip.value);
  }

  delete(hex: string): void {
    const ip = ipFromHex(hex);
    if (ip) this.#index?.delete(ip.family, ip.value);
  }

  view(now = Date.now()): FreeAddressFinder | undefined {
    return now - this.#at > VIEW_MAX_AGE_MS ? undefined : this.#index;
  }
}
