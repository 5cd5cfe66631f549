import { describe, expect, test } from "bun:test";
import { parseReleaseLimit } from "../../src/cli/gc.ts";
import { formatReleaseLimit, type ReleaseLimit, withinLimit } from "../../src/ipam/release_guard.ts";

describe("withinLimit", () => {
  const cases: Array<[release: number, total: number, limit: ReleaseLimit, ok: boolean]> = [
    [10, 10, { percent: 50 }, true], // never refused at 10 addresses or fewer
    [11, 12, { percent: 50 }, false],
    [12, 24, { percent: 50 }, true], // exactly the share is allowed
    [13, 24, { percent: 50 }, false],
    [12, 24, { percent: 49 }, false],
    [1000, 1000, { percent: 100 }, true],
    [11, 1000, { percent: 0 }, false],
    [10, 1000, { percent: 0 }, true],
    [500, 500, { count: 500 }, true], // a number is exact, whatever the total
    [501, 10_000, { count: 500 }, false],
    [1, 100, { count: 0 }, false],
    [0, 0, { count: 0 }, true],
  ];
  test.each(cases)("%d of %d with %o: %p", (release, total, limit, ok) => {
    expect(withinLimit(release, total, limit)).toBe(ok);
  });
});

describe("parseReleaseLimit", () => {
  test.each([
    [undefined, "50%"], ["50%", "50%"], ["0%", "0%"], ["100%", "100%"], ["12.5%", "12.5%"], ["500", "500"], ["0", "0"],
  ])("%p is %p", (text, formatted) => {
    expect(formatReleaseLimit(parseReleaseLimit(text))).toBe(formatted);
  });
  test.each(["150%", "100.1%", "-1", "abc", "1.5", "%", "50 %", "9007199254740993"])("%p is a usage error", (text) => {
    expect(() => parseReleaseLimit(text)).toThrow(
      `--max-release "${text}" is not a percentage from 0% to 100% or a number of addresses, e.g. 50% or 500`,
    );
  });
});
