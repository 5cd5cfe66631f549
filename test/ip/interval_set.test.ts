import { describe, expect, test } from "bun:test";
import { type Family, parseIP } from "../../src/ip/address.ts";
import { formatInterval, type Interval, IntervalSet, tryParseInterval } from "../../src/ip/interval_set.ts";

/** "10.0.0.1-10.0.0.5" -> Interval, for building sets and expectations. */
function iv(text: string): Interval {
  const i = tryParseInterval(text);
  if (!i) throw new Error(`test table error: ${text}`);
  return i;
}

describe("tryParseInterval", () => {
  // [input, family, first, last]
  const valid: [string, Family, string, string][] = [
    ["10.0.0.7", 4, "10.0.0.7", "10.0.0.7"],
    [" 10.0.0.7 ", 4, "10.0.0.7", "10.0.0.7"],
    ["10.0.0.1-10.0.0.5", 4, "10.0.0.1", "10.0.0.5"],
    ["10.0.0.1 - 10.0.0.5", 4, "10.0.0.1", "10.0.0.5"],
    ["10.0.0.9-10.0.0.9", 4, "10.0.0.9", "10.0.0.9"],
    ["10.0.0.0/24", 4, "10.0.0.0", "10.0.0.255"],
    ["10.0.0.77/24", 4, "10.0.0.0", "10.0.0.255"], // the whole prefix, host bits ignored
    ["10.0.0.5/32", 4, "10.0.0.5", "10.0.0.5"],
    ["fd00::1", 6, "fd00::1", "fd00::1"],
    ["fd00::1-fd00::ff", 6, "fd00::1", "fd00::ff"],
    ["fd00::/64", 6, "fd00::", "fd00::ffff:ffff:ffff:ffff"],
    ["fd00::/120", 6, "fd00::", "fd00::ff"],
  ];
  test.each(valid)("%p", (text, family, first, last) => {
    expect(tryParseInterval(text)).toEqual({ family, start: parseIP(first).value, end: parseIP(last).value });
  });

  const invalid: [string, string][] = [
    ["empty", ""],
    ["reversed range", "10.0.0.5-10.0.0.1"],
    ["reversed IPv6 range", "fd00::ff-fd00::1"],
    ["mixed families", "10.0.0.1-fd00::1"],
    ["mixed families, IPv6 first", "::1-10.0.0.1"],
    ["open end", "10.0.0.1-"],
    ["open start", "-10.0.0.1"],
    ["two dashes", "10.0.0.1-10.0.0.2-10.0.0.3"],
    ["bad address", "10.0.0.256"],
    ["bad CIDR length", "10.0.0.0/33"],
    ["range with a length", "10.0.0.1-10.0.0.5/24"],
    ["a word", "all"],
  ];
  test.each(invalid)("refuses %s", (_name, text) => {
    expect(tryParseInterval(text)).toBeUndefined();
  });

  test("refuses a non-string", () => {
    expect(tryParseInterval(7 as unknown as string)).toBeUndefined();
  });
});

describe("formatInterval", () => {
  const cases: [string, string][] = [
    ["10.0.0.7", "10.0.0.7"],
    ["10.0.0.0/30", "10.0.0.0-10.0.0.3"],
    ["fd00::/64", "fd00::-fd00::ffff:ffff:ffff:ffff"],
    ["fd00::0001 - fd00::00ff", "fd00::1-fd00::ff"],
  ];
  test.each(cases)("%p -> %p", (text, expected) => {
    expect(formatInterval(iv(text))).toBe(expected);
  });
});

describe("IntervalSet", () => {
  // [name, inputs, merged intervals in order]
  const merges: [string, string[], string[]][] = [
    ["empty", [], []],
    ["one address", ["10.0.0.1"], ["10.0.0.1"]],
    ["sorted on the way in", ["10.0.0.9", "10.0.0.1"], ["10.0.0.1", "10.0.0.9"]],
    ["adjacent addresses merge", ["10.0.0.1", "10.0.0.2", "10.0.0.3"], ["10.0.0.1-10.0.0.3"]],
    ["adjacent ranges merge", ["10.0.0.4-10.0.0.7", "10.0.0.0-10.0.0.3"], ["10.0.0.0-10.0.0.7"]],
    ["overlapping ranges merge", ["10.0.0.1-10.0.0.5", "10.0.0.3-10.0.0.9"], ["10.0.0.1-10.0.0.9"]],
    ["contained range absorbed", ["10.0.0.0/24", "10.0.0.7", "10.0.0.10-10.0.0.20"], ["10.0.0.0-10.0.0.255"]],
    ["a gap of one keeps two", ["10.0.0.1", "10.0.0.3"], ["10.0.0.1", "10.0.0.3"]],
    ["duplicates collapse", ["10.0.0.1", "10.0.0.1"], ["10.0.0.1"]],
    ["families never merge; IPv4 first", ["::", "255.255.255.255", "0.0.0.0"], ["0.0.0.0", "255.255.255.255", "::"]],
    ["same values, other family", ["0.0.0.1", "::1"], ["0.0.0.1", "::1"]],
    ["IPv6 adjacent merge", ["fd00::/64", "fd00:0:0:1::/64"], ["fd00::-fd00::1:ffff:ffff:ffff:ffff"]],
  ];
  test.each(merges)("%s", (_name, inputs, expected) => {
    const set = new IntervalSet(inputs.map(iv));
    expect(set.intervals.map(formatInterval)).toEqual(expected);
  });

  test("a huge IPv6 /64 stays one interval", () => {
    const set = new IntervalSet([iv("fd00::/64"), iv("fd00::1234"), iv("fd00::ffff:0:0:0-fd00::ffff:ffff:ffff:ffff")]);
    expect(set.intervals).toEqual([iv("fd00::/64")]);
    expect(set.countWithin(6, parseIP("fd00::").value, parseIP("fd00::ffff:ffff:ffff:ffff").value)).toBe(1n << 64n);
  });

  const set = new IntervalSet(["10.0.0.10-10.0.0.19", "10.0.0.30", "10.0.1.0/24", "fd00::/64"].map(iv));

  const finds: [string, string | undefined][] = [
    ["10.0.0.9", undefined],
    ["10.0.0.10", "10.0.0.10-10.0.0.19"],
    ["10.0.0.15", "10.0.0.10-10.0.0.19"],
    ["10.0.0.19", "10.0.0.10-10.0.0.19"],
    ["10.0.0.20", undefined],
    ["10.0.0.30", "10.0.0.30"],
    ["10.0.1.200", "10.0.1.0-10.0.1.255"],
    ["10.0.2.0", undefined],
    ["fd00::abcd", "fd00::-fd00::ffff:ffff:ffff:ffff"],
    ["fd00:0:0:1::", undefined],
    ["::a00:f", undefined], // 10.0.0.15's value as IPv6
  ];
  test.each(finds)("find(%s) = %p", (ip, expected) => {
    const found = set.find(parseIP(ip));
    expect(found && formatInterval(found)).toBe(expected);
    expect(set.has(parseIP(ip))).toBe(expected !== undefined);
  });

  const counts: [Family, string, string, bigint][] = [
    [4, "10.0.0.0", "10.0.0.255", 11n],
    [4, "10.0.0.0", "10.0.0.9", 0n],
    [4, "10.0.0.15", "10.0.0.15", 1n],
    [4, "10.0.0.15", "10.0.0.30", 6n],
    [4, "10.0.0.0", "10.0.1.9", 21n],
    [4, "0.0.0.0", "255.255.255.255", 267n],
    [6, "::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 1n << 64n],
    [6, "::", "fd00::ff", 256n],
    [6, "::a00:0", "::a00:ff", 0n], // IPv4 intervals do not count for IPv6
  ];
  test.each(counts)("countWithin(IPv%d, %s, %s) = %p", (family, from, to, expected) => {
    expect(set.countWithin(family, parseIP(from).value, parseIP(to).value)).toBe(expected);
  });

  test("union merges both sets", () => {
    const a = new IntervalSet(["10.0.0.1-10.0.0.5", "fd00::1"].map(iv));
    const b = new IntervalSet(["10.0.0.6-10.0.0.9", "10.0.0.20"].map(iv));
    expect(a.union(b).intervals.map(formatInterval)).toEqual(["10.0.0.1-10.0.0.9", "10.0.0.20", "fd00::1"]);
    expect(a.intervals.map(formatInterval)).toEqual(["10.0.0.1-10.0.0.5", "fd00::1"]); // unchanged
  });

  test("empty holds nothing", () => {
    expect(IntervalSet.empty.intervals).toEqual([]);
    expect(IntervalSet.empty.has(parseIP("10.0.0.1"))).toBe(false);
    expect(IntervalSet.empty.countWithin(4, 0n, 0xffffffffn)).toBe(0n);
  });
});
