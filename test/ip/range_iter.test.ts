import { describe, expect, test } from "bun:test";
import { formatIP, parseIP } from "../../src/ip/address.ts";
import { formatPrefix } from "../../src/ip/prefix.ts";
import { canonicalizeRange, type RawRange } from "../../src/ip/range.ts";
import { roundRobinSegments, type Segment } from "../../src/ip/range_iter.ts";
import type { RangeSet } from "../../src/ip/range_set.ts";

const set = (...raws: RawRange[]): RangeSet => raws.map(canonicalizeRange);

/** "subnet: from-to", so a failing case shows which range each segment walks. */
function show(segments: Segment[]): string[] {
  return segments.map((s) => {
    const f = s.range.subnet.network.family;
    return `${formatPrefix(s.range.subnet)}: ${formatIP({ family: f, value: s.from })}-${formatIP({ family: f, value: s.to })}`;
  });
}

describe("roundRobinSegments", () => {
  const three = set(
    { subnet: "10.0.0.0/24", rangeStart: "10.0.0.10", rangeEnd: "10.0.0.20" },
    { subnet: "10.0.1.0/24", rangeStart: "10.0.1.10", rangeEnd: "10.0.1.20" },
    { subnet: "10.0.2.0/24", rangeStart: "10.0.2.10", rangeEnd: "10.0.2.20" },
  );
  const one = set({ subnet: "10.0.0.0/24", rangeStart: "10.0.0.10", rangeEnd: "10.0.0.20" });
  const v6 = set({ subnet: "fd00::/64" });

  const cases: [string, RangeSet, string | undefined, string[]][] = [
    ["no cursor: every range in order", three, undefined,
      ["10.0.0.0/24: 10.0.0.10-10.0.0.20", "10.0.1.0/24: 10.0.1.10-10.0.1.20", "10.0.2.0/24: 10.0.2.10-10.0.2.20"]],
    ["cursor mid first range: rest of it, the others, then its start up to the cursor", three, "10.0.0.15",
      ["10.0.0.0/24: 10.0.0.16-10.0.0.20", "10.0.1.0/24: 10.0.1.10-10.0.1.20", "10.0.2.0/24: 10.0.2.10-10.0.2.20",
        "10.0.0.0/24: 10.0.0.10-10.0.0.15"]],
    ["cursor at the start of a range", three, "10.0.0.10",
      ["10.0.0.0/24: 10.0.0.11-10.0.0.20", "10.0.1.0/24: 10.0.1.10-10.0.1.20", "10.0.2.0/24: 10.0.2.10-10.0.2.20",
        "10.0.0.0/24: 10.0.0.10-10.0.0.10"]],
    ["cursor at the end of a range: next range first, its own range last", three, "10.0.0.20",
      ["10.0.1.0/24: 10.0.1.10-10.0.1.20", "10.0.2.0/24: 10.0.2.10-10.0.2.20", "10.0.0.0/24: 10.0.0.10-10.0.0.20"]],
    ["cursor in the second range wraps to the first", three, "10.0.1.12",
      ["10.0.1.0/24: 10.0.1.13-10.0.1.20", "10.0.2.0/24: 10.0.2.10-10.0.2.20", "10.0.0.0/24: 10.0.0.10-10.0.0.20",
        "10.0.1.0/24: 10.0.1.10-10.0.1.12"]],
    ["cursor at the end of the last range wraps to the first", three, "10.0.2.20",
      ["10.0.0.0/24: 10.0.0.10-10.0.0.20", "10.0.1.0/24: 10.0.1.10-10.0.1.20", "10.0.2.0/24: 10.0.2.10-10.0.2.20"]],
    ["cursor in no range (config changed): from the start", three, "10.0.0.5",
      ["10.0.0.0/24: 10.0.0.10-10.0.0.20", "10.0.1.0/24: 10.0.1.10-10.0.1.20", "10.0.2.0/24: 10.0.2.10-10.0.2.20"]],
    ["cursor outside every subnet", three, "192.168.0.1",
      ["10.0.0.0/24: 10.0.0.10-10.0.0.20", "10.0.1.0/24: 10.0.1.10-10.0.1.20", "10.0.2.0/24: 10.0.2.10-10.0.2.20"]],
    ["cursor of the other family", one, "::a00:f", ["10.0.0.0/24: 10.0.0.10-10.0.0.20"]],
    ["one range, cursor mid-range", one, "10.0.0.12",
      ["10.0.0.0/24: 10.0.0.13-10.0.0.20", "10.0.0.0/24: 10.0.0.10-10.0.0.12"]],
    ["one range, cursor at its end", one, "10.0.0.20", ["10.0.0.0/24: 10.0.0.10-10.0.0.20"]],
    ["IPv6 /64 stays two segments", v6, "fd00::1:0",
      ["fd00::/64: fd00::1:1-fd00::ffff:ffff:ffff:ffff", "fd00::/64: fd00::1-fd00::1:0"]],
  ];
  test.each(cases)("%s", (_name, s, cursor, expected) => {
    expect(show(roundRobinSegments(s, cursor === undefined ? undefined : parseIP(cursor)))).toEqual(expected);
  });

  test("segments name the range object of the set", () => {
    const segs = roundRobinSegments(three, parseIP("10.0.1.12"));
    expect(segs.map((s) => three.indexOf(s.range))).toEqual([1, 2, 0, 1]);
  });
});
