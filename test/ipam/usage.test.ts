import { describe, expect, test } from "bun:test";
import { IntervalSet, tryParseInterval } from "../../src/ip/interval_set.ts";
import { canonicalizeRange, type RawRange } from "../../src/ip/range.ts";
import { reservedAddresses } from "../../src/ipam/reservations.ts";
import { countJSON, poolUsage, rangeUsageJSON, type RangeUsageJSON, type UsageConfig } from "../../src/ipam/usage.ts";
import type { Allocation } from "../../src/store/store.ts";

function config(sets: RawRange[][], exclude: string[] = []): UsageConfig {
  return {
    network: "net",
    rangeSets: sets.map((s) => s.map(canonicalizeRange)),
    exclude: new IntervalSet(exclude.map((e) => tryParseInterval(e)!)),
  };
}

function held(ip: string, extra: Partial<Allocation> = {}): Allocation {
  return {
    ip, network: "net", containerID: `c-${ip}`, ifName: "eth0", node: "n1", kind: "dynamic", rangeSet: 0,
    allocatedAt: "2025-01-01T00:00:00.000Z", ...extra,
  };
}

type Counts = Pick<RangeUsageJSON, "size" | "used" | "reserved" | "free">;

function usage(c: UsageConfig, allocations: Allocation[] = [], reservations: string[] = []): RangeUsageJSON[] {
  const reserved = reservedAddresses(reservations.length ? [{ name: "r", entries: reservations, createdAt: "" }] : []);
  return poolUsage(c, allocations, reserved).map(rangeUsageJSON);
}

function counts(c: UsageConfig, allocations: Allocation[] = [], reservations: string[] = []): Counts[] {
  return usage(c, allocations, reservations).map(({ size, used, reserved, free }) => ({ size, used, reserved, free }));
}

const c = (size: number | string, used: number | string, reserved: number | string, free: number | string): Counts =>
  ({ size, used, reserved, free });

describe("poolUsage counts", () => {
  const cases: [string, UsageConfig, Allocation[], string[], Counts[]][] = [
    ["empty /24: default range .1-.254, gateway .1 inside it", config([[{ subnet: "10.0.0.0/24" }]]), [], [],
      [c(253, 0, 0, 253)]],
    ["gateway inside the range, not at its start", config([[{ subnet: "10.0.0.0/24", gateway: "10.0.0.100" }]]), [], [],
      [c(253, 0, 0, 253)]],
    ["gateway outside the range costs nothing",
      config([[{ subnet: "10.0.0.0/24", rangeStart: "10.0.0.10", rangeEnd: "10.0.0.20" }]]), [], [],
      [c(11, 0, 0, 11)]],
    ["range up to the IPv4 broadcast address and from the network address",
      config([[{ subnet: "10.0.0.0/30", rangeStart: "10.0.0.0", rangeEnd: "10.0.0.3", gateway: "10.0.0.2" }]]), [], [],
      [c(1, 0, 0, 1)]],
    ["exclude inside and outside the range",
      config([[{ subnet: "10.0.0.0/24", rangeStart: "10.0.0.10", rangeEnd: "10.0.0.20" }]], ["10.0.0.12-10.0.0.14", "10.0.0.30"]),
      [], [], [c(8, 0, 0, 8)]],
    ["exclude over the gateway is not counted twice",
      config([[{ subnet: "10.0.0.0/24", rangeStart: "10.0.0.10", rangeEnd: "10.0.0.20", gateway: "10.0.0.10" }]], ["10.0.0.10-10.0.0.11"]),
      [], [], [c(9, 0, 0, 9)]],
    ["exclude covering the whole range", config([[{ subnet: "10.0.0.0/24" }]], ["10.0.0.0/24"]), [], [], [c(0, 0, 0, 0)]],
    ["held, live and parked sticky alike",
      config([[{ subnet: "10.0.0.0/24", rangeStart: "10.0.0.10", rangeEnd: "10.0.0.19" }]]),
      [held("10.0.0.10"), held("10.0.0.11", { kind: "sticky", parkedAt: "2025-01-02T00:00:00.000Z" }), held("10.0.0.19", { kind: "fixed" })],
      [], [c(10, 3, 0, 7)]],
    ["a reservation overlapping held addresses counts only its free ones",
      config([[{ subnet: "10.0.0.0/24", rangeStart: "10.0.0.10", rangeEnd: "10.0.0.19" }]]),
      [held("10.0.0.10"), held("10.0.0.11"), held("10.0.0.12")], ["10.0.0.11-10.0.0.15"], [c(10, 3, 3, 4)]],
    ["a reservation over excluded addresses and the gateway counts neither",
      config([[{ subnet: "10.0.0.0/24", rangeStart: "10.0.0.10", rangeEnd: "10.0.0.19", gateway: "10.0.0.17" }]], ["10.0.0.15-10.0.0.16"]),
      [], ["10.0.0.14-10.0.0.17"], [c(7, 0, 1, 6)]],
    ["a reservation of a whole CIDR fills the range",
      config([[{ subnet: "10.0.0.0/24", rangeStart: "10.0.0.10", rangeEnd: "10.0.0.19" }]]),
      [held("10.0.0.12")], ["10.0.0.0/16"], [c(10, 1, 9, 0)]],
    ["held addresses outside the range, excluded, or of the other family are in no count",
      config([[{ subnet: "10.0.0.0/24", rangeStart: "10.0.0.10", rangeEnd: "10.0.0.19" }]], ["10.0.0.18"]),
      [held("10.0.0.5", { kind: "fixed" }), held("10.0.0.18"), held("10.0.0.1"), held("fd00::12"), held("10.0.0.13")],
      [], [c(9, 1, 0, 8)]],
    ["IPv6 /64: exact counts past Number.MAX_SAFE_INTEGER, as strings",
      config([[{ subnet: "fd00::/64" }]], ["fd00::ff00-fd00::ffff"]),
      [held("fd00::10"), held("fd00::20"), held("fd00::1:0")], ["fd00::/120"],
      // 2^64 - 1 addresses (fd00::1 ..), minus the gateway fd00::1, minus 256 excluded.
      [c("18446744073709551358", 3, 252, "18446744073709551103")]],
    ["IPv6 range small enough for numbers; no broadcast address",
      config([[{ subnet: "fd00::/120", rangeStart: "fd00::f0", rangeEnd: "fd00::ff" }]]), [held("fd00::ff")], [],
      [c(16, 1, 0, 15)]],
  ];
  test.each(cases)("%s", (_name, cfg, allocations, reservations, expected) => {
    expect(counts(cfg, allocations, reservations)).toEqual(expected);
  });
});

describe("poolUsage rows", () => {
  test("one row per range, in config order, labelled with network, range set, subnet and range", () => {
    const cfg = config([
      [{ subnet: "10.0.0.0/24", rangeStart: "10.0.0.10", rangeEnd: "10.0.0.19" }, { subnet: "10.0.1.0/30" }],
      [{ subnet: "fd00::/64", rangeStart: "fd00::10", rangeEnd: "fd00::1f" }],
    ]);
    const rows = usage(cfg, [held("10.0.1.2", { rangeSet: 0 }), held("fd00::10", { rangeSet: 1 })], ["10.0.0.10"]);
    expect(rows).toEqual([
      { network: "net", rangeSet: 0, subnet: "10.0.0.0/24", range: "10.0.0.10-10.0.0.19", size: 10, used: 0, reserved: 1, free: 9 },
      { network: "net", rangeSet: 0, subnet: "10.0.1.0/30", range: "10.0.1.1-10.0.1.2", size: 1, used: 1, reserved: 0, free: 0 },
      { network: "net", rangeSet: 1, subnet: "fd00::/64", range: "fd00::10-fd00::1f", size: 16, used: 1, reserved: 0, free: 15 },
    ]);
  });

  test("counts are exact bigints that add up", () => {
    const [u] = poolUsage(config([[{ subnet: "fd00::/64" }]]), [held("fd00::5")]);
    expect(u).toMatchObject({ size: (1n << 64n) - 2n, used: 1n, reserved: 0n, free: (1n << 64n) - 3n });
    expect(u!.used + u!.reserved + u!.free).toBe(u!.size);
  });

  test("reservations default to none", () => {
    expect(poolUsage(config([[{ subnet: "10.0.0.0/29" }]]), [held("10.0.0.3")])[0]).toMatchObject({ size: 5n, used: 1n, free: 4n });
  });
});

describe("countJSON", () => {
  const cases: [bigint, number | string][] = [
    [0n, 0],
    [253n, 253],
    [BigInt(Number.MAX_SAFE_INTEGER), Number.MAX_SAFE_INTEGER],
    [BigInt(Number.MAX_SAFE_INTEGER) + 1n, "9007199254740992"],
    [1n << 64n, "18446744073709551616"],
  ];
  test.each(cases)("%p", (n, expected) => {
    expect(countJSON(n)).toBe(expected);
  });
});
