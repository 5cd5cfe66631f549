// Log lines that anyone able to connect can cause (a refused peer, a slow or oversized request, a reset, a
// refused token), limited so that a flood of them cannot fill the disk: per kind, the first event of a
// window is logged on its own line, with its details, and the rest of that window as one count at its end.
// A steady flood thus costs two lines per kind per window; the metrics count every event. Kinds beyond
// `maxKinds` open windows share one, OTHER_KINDS, so that made-up kinds cannot grow memory either.

export const OTHER_KINDS = "(other kinds)";

export class LogLimit {
  /** Kinds with an open window, and how many of their events it has held back. */
  readonly #held = new Map<string, number>();
  readonly #timers = new Map<string, ReturnType<typeof setTimeout>>();

  constructor(
    private readonly windowMs: number,
    /** Logs the `count` events of `kind` held back in the window that just ended. */
    private readonly summary: (kind: string, count: number, windowMs: number) => void,
    private readonly maxKinds = 1024,
  ) {}

  /** Whether this event of `kind` may have a line of its own; when not, it is counted for the summary. */
  take(kind: string): boolean {
    if (!this.#held.has(kind) && this.#held.size >= this.maxKinds) kind = OTHER_KINDS;
    const held = this.#held.get(kind);
    if (held !== undefined) {
      this.#held.set(kind, held + 1);
      return false;
    }
    this.#open(kind);
    return true;
  }

  /** Logs what is held back now, and closes every window (the agent stops). */
  flush(): void {
    for (const [kind, count] of this.#held) if (count > 0) this.summary(kind, count, this.windowMs);
    for (const t of this.#timers.values()) clearTimeout(t);
    this.#held.clear();
    this.#timers.clear();
  }

  #open(kind: string): void {
    this.#held.set(kind, 0);
    const timer = setTimeout(() => {
      const count = this.#held.get(kind) ?? 0;
      this.#held.delete(kind);
      this.#timers.delete(kind);
      if (count === 0) return;
      this.summary(kind, count, this.windowMs);
      // The summary had a line of its own: the next one waits for another window, as a first event would.
      this.#open(kind);
    }, this.windowMs);
    // Held-back counts alone must not keep a stopping agent alive.
    timer.unref();
    this.#timers.set(kind, timer);
  }
}
