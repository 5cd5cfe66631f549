// The embedded store's held addresses as names: fixed-width hex sorts in address order, so a native string
// sort and binary searches answer counts and "next free" without parsing a single address.
import { ipToHex } from "../../ip/address.ts";
import type { FreeAddressFinder } from "../../ip/held_index.ts";

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
  #names: NamesByFamily | undefined;
  #at = 0;

  /** A new listing of the pool, taken at `at` (epoch ms). */
  replace(names: NamesByFamily, at: number): void {
    this.#names = { 4: [...names[4]], 6: [...names[6]] };
    this.#at = at;
  }

  add(family: 4 | 6, hex: string): void {
    const names = this.#names?.[family];
    if (!names) return;
    const i = rank(names, hex, false);
    if (names[i] !== hex) names.splice(i, 0, hex);
  }

  delete(family: 4 | 6, hex: string): void {
    const names = this.#names?.[family];
    if (!names) return;
    const i = rank(names, hex, false);
    if (names[i] === hex) names.splice(i, 1);
  }

  view(now = Date.now()): FreeAddressFinder | undefined {
    const all = this.#names;
    if (!all || now - this.#at > VIEW_MAX_AGE_MS) return undefined;
    return {
      nextFree(family, from, to) {
        const names = all[family];
        let c = from;
        for (let i = rank(names, ipToHex({ family, value: c }), false); c <= to && names[i] === ipToHex({ family, value: c }); i++) c++;
        return c <= to ? c : undefined;
      },
    };
  }
}
