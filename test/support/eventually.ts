// Waiting for something another process does, without guessing how long it takes: poll until the
// check holds, and fail with the last value when a generous deadline passes.

/** Polls `read` every `everyMs` until `ok(value)`; throws naming `what` and the last value after `withinMs`. */
export async function eventually<T>(what: string, read: () => T | Promise<T>, ok: (v: T) => boolean,
  { withinMs = 10_000, everyMs = 20 } = {}): Promise<T> {
  const deadline = Date.now() + withinMs;
  for (;;) {
    const v = await read();
    if (ok(v)) return v;
    if (Date.now() > deadline) throw new Error(`${what}: still ${JSON.stringify(v)} after ${withinMs} ms`);
    await Bun.sleep(everyMs);
  }
}
