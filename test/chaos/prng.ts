// A seeded random source (SplitMix32-style mixing of a counter): the same seed gives the same fault
// schedule and the same workload choices, so a failing run can be replayed with --seed.
export class Prng {
  #state: number;

  constructor(seed: number) {
    this.#state = seed >>> 0;
  }

  /** A float in [0, 1). */
  next(): number {
    this.#state = (this.#state + 0x9e3779b9) >>> 0;
    let z = this.#state;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return ((z ^ (z >>> 16)) >>> 0) / 2 ** 32;
  }

  /** An integer in [lo, hi]. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }

  chance(p: number): boolean {
    return this.next() < p;
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new Error("pick from nothing");
    return items[Math.floor(this.next() * items.length)]!;
  }

  /** `n` distinct items, in random order. */
  sample<T>(items: readonly T[], n: number): T[] {
    const rest = [...items];
    const out: T[] = [];
    while (out.length < n && rest.length > 0) out.push(rest.splice(Math.floor(this.next() * rest.length), 1)[0]!);
    return out;
  }

  /** A child source for one purpose (the workload's worker 3, the link track): independent of the others' draws. */
  fork(label: string): Prng {
    let h = this.#state ^ 0x811c9dc5;
    for (const c of label) h = Math.imul(h ^ c.charCodeAt(0), 0x01000193) >>> 0;
    return new Prng(h);
  }
}
