import { describe, expect, test } from "bun:test";
import { parseIP } from "../../src/ip/address.ts";
import { canonicalizeRange, formatRange, type RawRange } from "../../src/ip/range.ts";
import {
  formatRangeSet,
  type RangeSet,
  rangeHolding,
  rangeSetFamily,
  rangeSetProblem,
  rangeSetsOverlap,
  rangeWithSubnetOf,
} from "../../src/ip/range_set.ts";

const set = (...raws: RawRange[]): RangeSet => raws.map(canonicalizeRange);

describe("rangeSetProblem", () => {
  const cases: [string, RangeSet, string | undefined][] = [
    ["one range", set({ subnet: "10.0.0.0/24" }), undefined],
    ["two disjoint subnets", set({ subnet: "10.0.0.0/24" }, { subnet: "10.0.1.0/24" }), undefined],
    ["two disjoint ranges of one subnet",
      set({ subnet: "10.0.0.0/24", rangeEnd: "10.0.0.99" }, { subnet: "10.0.0.0/24", rangeStart: "10.0.0.100" }), undefined],
    ["IPv6 ranges", set({ subnet: "fd00::/64" }, { subnet: "fd00:1::/64" }), undefined],
    ["empty", [], "a range set needs at least one range"],
    ["mixed families", set({ subnet: "10.0.0.0/24" }, { subnet: "fd00::/64" }),
      "range 1 (fd00::/64) mixes address families in one range set: use a separate set per family"],
    ["mixed families, IPv6 first", set({ subnet: "fd00::/64" }, { subnet: "10.0.1.0/24" }, { subnet: "10.0.0.0/24" }),
      "range 1 (10.0.1.0/24) mixes address families in one range set: use a separate set per family"],
    ["same subnet twice", set({ subnet: "10.0.0.0/24" }, { subnet: "10.0.0.0/24" }),
      "range 1 (10.0.0.1-10.0.0.254) overlaps range 0 (10.0.0.1-10.0.0.254)"],
    ["ranges sharing one address",
      set({ subnet: "10.0.0.0/24", rangeEnd: "10.0.0.100" }, { subnet: "10.0.0.0/24", rangeStart: "10.0.0.100" }),
      "range 1 (10.0.0.100-10.0.0.254) overlaps range 0 (10.0.0.1-10.0.0.100)"],
    ["nested subnets", set({ subnet: "10.0.0.0/24" }, { subnet: "10.0.1.0/24" }, { subnet: "10.0.0.0/16" }),
      "range 2 (10.0.0.1-10.0.255.254) overlaps range 0 (10.0.0.1-10.0.0.254)"],
    ["IPv6 overlap", set({ subnet: "fd00::/64" }, { subnet: "fd00::/120" }),
      "range 1 (fd00::1-fd00::ff) overlaps range 0 (fd00::1-fd00::ffff:ffff:ffff:ffff)"],
  ];
  test.each(cases)("%s", (_name, s, expected) => {
    expect(rangeSetProblem(s)).toBe(expected);
  });
});

describe("rangeSetsOverlap", () => {
  const cases: [string, RangeSet, RangeSet, boolean][] = [
    ["disjoint", set({ subnet: "10.0.0.0/24" }), set({ subnet: "10.0.1.0/24" }), false],
    ["same subnet", set({ subnet: "10.0.0.0/24" }), set({ subnet: "10.0.0.0/24" }), true],
    ["second range of a set overlaps", set({ subnet: "10.0.0.0/24" }, { subnet: "10.0.2.0/24" }),
      set({ subnet: "10.0.2.0/25" }), true],
    ["same subnet, disjoint ranges", set({ subnet: "10.0.0.0/24", rangeEnd: "10.0.0.9" }),
      set({ subnet: "10.0.0.0/24", rangeStart: "10.0.0.10" }), false],
    ["other families never overlap", set({ subnet: "0.0.0.0/30" }), set({ subnet: "::/126" }), false],
  ];
  test.each(cases)("%s", (_name, a, b, expected) => {
    expect(rangeSetsOverlap(a, b)).toBe(expected);
    expect(rangeSetsOverlap(b, a)).toBe(expected);
  });
});

describe("rangeHolding / rangeWithSubnetOf", () => {
  const s = set(
    { subnet: "10.0.0.0/24", rangeStart: "10.0.0.10", rangeEnd: "10.0.0.20" },
    { subnet: "10.0.1.0/24" },
  );
  // [ip, range holding it, range whose subnet holds it]
  const cases: [string, string | undefined, string | undefined][] = [
    ["10.0.0.15", "10.0.0.10-10.0.0.20", "10.0.0.10-10.0.0.20"],
    ["10.0.0.5", undefined, "10.0.0.10-10.0.0.20"], // in the subnet, outside the range
    ["10.0.1.7", "10.0.1.1-10.0.1.254", "10.0.1.1-10.0.1.254"],
    ["10.0.1.255", undefined, "10.0.1.1-10.0.1.254"],
    ["10.0.2.1", undefined, undefined],
    ["::a00:f", undefined, undefined],
  ];
  test.each(cases)("%s", (ip, holding, withSubnet) => {
    const h = rangeHolding(s, parseIP(ip));
    const w = rangeWithSubnetOf(s, parseIP(ip));
    expect([h && formatRange(h), w && formatRange(w)]).toEqual([holding, withSubnet]);
  });

  test("rangeSetFamily and formatRangeSet", () => {
    expect(rangeSetFamily(s)).toBe(4);
    expect(rangeSetFamily(set({ subnet: "fd00::/64" }))).toBe(6);
    expect(formatRangeSet(s)).toBe("10.0.0.0/24 (10.0.0.10-10.0.0.20), 10.0.1.0/24 (10.0.1.1-10.0.1.254)");
  });
});
