// Properties of the reservation syntax (`kube-ipam reserve NAME ADDR|A-B|CIDR...`, and `exclude`, which
// reads the same entries): any entry parses to a sound interval or is refused with a usage error; a name
// that is accepted fits where the stores keep it.
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { UsageError } from "../../src/cli/flags.ts";
import { parseReserveArgs } from "../../src/cli/reserve.ts";
import { BITS, formatIP, tryParseIP } from "../../src/ip/address.ts";
import { formatInterval, IntervalSet, tryParseInterval } from "../../src/ip/interval_set.ts";
import { reservedAddresses } from "../../src/ipam/reservations.ts";
import { anyText, nearInterval } from "../support/arbitraries.ts";

const entry = fc.oneof({ arbitrary: nearInterval, weight: 4 }, { arbitrary: anyText, weight: 1 });

describe("reservation entry properties", () => {
  test("any entry parses to an interval of one family, in order and in range, or to nothing", () => {
    fc.assert(fc.property(entry, (text) => {
      const i = tryParseInterval(text);
      if (!i) return;
      expect([4, 6]).toContain(i.family);
      expect(i.start >= 0n && i.start <= i.end && i.end < 1n << BigInt(BITS[i.family])).toBe(true);
      // The canonical form reads back as the same interval (ls, reserved and messages print it).
      expect(tryParseInterval(formatInterval(i))).toEqual(i);
    }), { numRuns: 1000 });
  });

  test("an address parsed and printed reads back the same", () => {
    fc.assert(fc.property(entry, (text) => {
      const ip = tryParseIP(text);
      if (ip) expect(tryParseIP(formatIP(ip))).toEqual(ip);
    }), { numRuns: 1000 });
  });

  test("any interval set holds exactly the addresses of its entries", () => {
    fc.assert(fc.property(fc.array(entry, { maxLength: 6 }), entry, (entries, probe) => {
      const intervals = entries.map(tryParseInterval).filter((i) => i !== undefined);
      const ip = tryParseIP(probe.split(/[-/]/)[0]!.trim());
      if (!ip) return;
      const inAny = intervals.some((i) => i.family === ip.family && i.start <= ip.value && ip.value <= i.end);
      expect(new IntervalSet(intervals).has(ip)).toBe(inAny);
    }), { numRuns: 500 });
  });

  test("stored reservations of any content give a reserved set, never an exception", () => {
    fc.assert(fc.property(fc.array(fc.record({ name: anyText, entries: fc.array(entry, { maxLength: 4 }), createdAt: fc.constant("") }),
      { maxLength: 3 }), (list) => {
      reservedAddresses(list);
    }), { numRuns: 300 });
  });
});

const nearName = fc.oneof(
  fc.stringMatching(/^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,30}$/),
  fc.integer({ min: 240, max: 260 }).map((n) => "r".repeat(n)),
  anyText,
);

describe("kube-ipam reserve arguments", () => {
  test("NAME ENTRY... parse, or are refused with a usage error (exit status 2)", () => {
    fc.assert(fc.property(fc.array(fc.oneof(nearName, entry), { maxLength: 5 }), (positional) => {
      let args;
      try {
        args = parseReserveArgs(positional);
      } catch (e) {
        expect(e).toBeInstanceOf(UsageError);
        expect((e as Error).message.length).toBeGreaterThan(0);
        expect((e as Error).message.length).toBeLessThan(400);
        return;
      }
      expect(args.intervals).toHaveLength(args.entries.length);
      // The embedded store keeps it as "_reserved/<name>.json": one file name, at most 255 bytes.
      expect(new TextEncoder().encode(`${args.name}.json`).length).toBeLessThanOrEqual(255);
    }), { numRuns: 1000 });
  });

  // The name allowed 253 characters; "<name>.json" was then no file name, and the embedded store failed
  // with ENAMETOOLONG.
  test("a name of 250 characters is taken, 251 refused", () => {
    expect(parseReserveArgs(["r".repeat(250), "10.0.0.5"]).name).toHaveLength(250);
    expect(() => parseReserveArgs(["r".repeat(251), "10.0.0.5"])).toThrow(UsageError);
  });
});
