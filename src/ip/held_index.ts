// A set of addresses kept in address order, for a view of what is held that a long-lived process keeps
// current from a change stream (the node agent's mirror of an etcd pool). Sorted arrays with binary
// search: a pool holds thousands of addresses, and an insert's copy of them costs microseconds.

/** The first address in [from, to] that the view says is free, or undefined when it says all are held. */
export interface FreeAddressFinder {
  nextFree(family: 4 | 6, from: bigint, to: bigint): bigint | undefined;
}

/** Index of the first element of `sorted` that is at least `value`. */
function lowerBound(sorted: readonly bigint[], value: bigint): number {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid]! < value) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

export class HeldIndex implements FreeAddressFinder {
  readonly #held: Record<4 | 6, bigint[]> = { 4: [], 6: [] };

  constructor(values: Iterable<{ readonly family: 4 | 6; readonly value: bigint }> = []) {
    for (const { family, value } of values) this.#held[family].push(value);
    for (const family of [4, 6] as const) {
      const sorted = this.#held[family].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
      this.#held[family] = sorted.filter((v, i) => i === 0 || v !== sorted[i - 1]);
    }
  }

  get size(): number {
    return this.#held[4].length + this.#held[6].length;
  }

  has(family: 4 | 6, value: bigint): boolean {
    const a = this.#held[family];
    const i = lowerBound(a, value);
    return i < a.length && a[i] === value;
  }

  add(family: 4 | 6, value: bigint): void {
    const a = this.#held[family];
    const i = lowerBound(a, value);
    if (a[i] !== value) a.splice(i, 0, value);
  }

  delete(family: 4 | 6, value: bigint): void {
    const a = this.#held[family];
    const i = lowerBound(a, value);
    if (a[i] === value) a.splice(i, 1);
  }

  nextFree(family: 4 | 6, from: bigint, to: bigint): bigint | undefined {
    const a = this.#held[family];
    let c = from;
    // Held addresses from `from` on are consecutive in the array: walk while they are the next address.
    for (let i = lowerBound(a, from); i < a.length && a[i] === c && c <= to; i++) c++;
    return c <= to ? c : undefined;
  }
}
