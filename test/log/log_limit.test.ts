// The limit on log lines about turned-away connections and refused requests (src/log/log_limit.ts): per kind, the first event of
// a window has a line, the rest are one count at the window's end, and no event is in two lines.
import { expect, test } from "bun:test";
import { LogLimit, OTHER_KINDS } from "../../src/log/log_limit.ts";
import { eventually } from "../support/eventually.ts";

test("the first event of a window is logged, the rest counted once at its end, per kind", async () => {
  const summaries: [string, number][] = [];
  const limit = new LogLimit(1000, (kind, count) => void summaries.push([kind, count]));
  expect(limit.take("a")).toBe(true);
  expect(limit.take("b")).toBe(true); // kinds are apart
  for (let i = 0; i < 5; i++) expect(limit.take("a")).toBe(false);
  await eventually("a's window ended", () => summaries.length, (n) => n >= 1, { withinMs: 5000 });
  expect(summaries).toEqual([["a", 5]]); // b had nothing held back: no line
  // A summary was a line: the next window holds events back as well, so a steady flood is two lines a window
  // (the window is long enough that this runs before it ends).
  expect(limit.take("a")).toBe(false);
  await eventually("a's second window ended", () => summaries.length, (n) => n >= 2, { withinMs: 5000 });
  expect(summaries).toEqual([["a", 5], ["a", 1]]);
  // Stopping logs what is held back and closes every window.
  expect(limit.take("a")).toBe(false);
  limit.flush();
  expect(summaries).toEqual([["a", 5], ["a", 1], ["a", 1]]);
  expect(limit.take("a")).toBe(true);
  limit.flush();
  expect(summaries).toHaveLength(3);
});

test("kinds beyond the limit share one window: made-up kinds cannot grow it", () => {
  const summaries: [string, number][] = [];
  const limit = new LogLimit(60_000, (kind, count) => void summaries.push([kind, count]), 3);
  expect(["a", "b", "c"].map((k) => limit.take(k))).toEqual([true, true, true]);
  expect(limit.take("d")).toBe(true); // the first of the other kinds has its line
  for (const k of ["e", "f", "g", "d"]) expect(limit.take(k)).toBe(false);
  expect(limit.take("a")).toBe(false);
  limit.flush();
  expect(new Map(summaries)).toEqual(new Map([["a", 1], [OTHER_KINDS, 4]]));
});
