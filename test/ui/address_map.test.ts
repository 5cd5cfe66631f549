// The dashboard's pure parts: the state of each address, the blocks (which must count exactly what the
// addresses they aggregate are), the windows the map opens on, and the search.
import { describe, expect, test } from "bun:test";
import { IntervalSet, tryParseInterval } from "../../src/ip/interval_set.ts";
import { canonicalizeRange, type RawRange } from "../../src/ip/range.ts";
import type { UsageConfig } from "../../src/ipam/usage.ts";
import type { Allocation } from "../../src/store/store.ts";
import { addressMap, mapModel } from "../../src/ui/address_map.ts";
import { configuredRanges, inferredRanges } from "../../src/ui/network_view.ts";
import { search } from "../../src/ui/search.ts";

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

const reserved = (...entries: string[]) => new IntervalSet(entries.map((e) => tryParseInterval(e)!));
const v4 = (ip: string) => BigInt(ip.split(".").reduce((v, p) => v * 256 + Number(p), 0));

const net = config([[{ subnet: "10.0.0.0/28", rangeStart: "10.0.0.2", rangeEnd: "10.0.0.13" }]], ["10.0.0.12"]);
const allocations = [
  held("10.0.0.2"), held("10.0.0.3", { kind: "requested" }), held("10.0.0.4", { kind: "fixed" }),
  held("10.0.0.5", { kind: "sticky" }), held("10.0.0.6", { kind: "sticky", parkedAt: "2025-01-02T00:00:00.000Z" }),
  held("10.0.0.7", { kind: "migrated" }), held("10.0.0.15", { kind: "fixed" }), // fixed on the broadcast: held wins
];

describe("address states", () => {
  test("one character per address, as docs/dashboard.md lists them", () => {
    const m = addressMap(mapModel(4, net, allocations, reserved("10.0.0.8-10.0.0.9", "10.0.0.14")), v4("10.0.0.0"), v4("10.0.0.15"), 4096);
    // .0 network, .1 gateway (outside the range too), .2-.7 held, .8-.9 reserved, .10-.11 free, .12 excluded,
    // .13 free, .14 reserved but outside the range, .15 the broadcast, held.
    expect(m).toMatchObject({ mode: "address", cells: 16, count: 16, blockSize: 1, from: "10.0.0.0", to: "10.0.0.15" });
    expect(m.states).toBe("ngdqfspmrr..x.of");
  });

  test("a network without config: held, reserved, or unknown", () => {
    const m = addressMap(mapModel(4, undefined, allocations, reserved("10.0.0.9")), v4("10.0.0.0"), v4("10.0.0.15"), 4096);
    expect(m.states).toBe("uudqfspmuruuuuuf");
  });
});

describe("blocks count exactly what their addresses are", () => {
  const wide = config([[{ subnet: "10.1.0.0/22", rangeStart: "10.1.0.10", rangeEnd: "10.1.3.200" }]], ["10.1.1.0/26", "10.1.2.7"]);
  const list = Array.from({ length: 120 }, (_, i) => held(`10.1.${i % 4}.${(i * 37) % 256}`, { kind: i % 5 === 0 ? "fixed" : "dynamic" }));
  const res = reserved("10.1.0.100-10.1.0.180", "10.1.3.0/25", "10.1.1.10");
  const model = mapModel(4, wide, list, res);
  const windows: [string, string, number][] = [
    ["10.1.0.0", "10.1.3.255", 64], ["10.1.0.0", "10.1.3.255", 7], ["10.1.0.5", "10.1.2.250", 100], ["10.1.1.3", "10.1.1.77", 5],
  ];
  for (const [from, to, cells] of windows) {
    test(`${from}-${to} in at most ${cells} cells`, () => {
      const blocks = addressMap(model, v4(from), v4(to), cells);
      const each = addressMap(model, v4(from), v4(to), 4096).states!;
      expect(blocks.mode).toBe("block");
      expect(blocks.cells).toBeLessThanOrEqual(cells);
      const size = Number(blocks.blockSize);
      expect(size & (size - 1)).toBe(0);
      for (let b = 0; b < blocks.cells; b++) {
        const part = each.slice(b * size, (b + 1) * size);
        const n = (chars: string) => [...part].filter((c) => chars.includes(c)).length;
        expect([b, blocks.blocks!.held[b], blocks.blocks!.reserved[b], blocks.blocks!.free[b], blocks.blocks!.unavailable[b]])
          .toEqual([b, n("dqfspm"), n("r"), n("."), n("gnbxo")]);
      }
    });
  }

  test("an IPv6 /64 in 4,096 blocks of 2^52, exact", () => {
    const v6 = config([[{ subnet: "fd00::/64" }]]);
    const m = addressMap(mapModel(6, v6, [held("fd00::5"), held("fd00::ffff:0:0:1")], reserved("fd00::/80")), 0xfd00n << 112n, (0xfd00n << 112n) + (1n << 64n) - 1n, 4096);
    expect(m).toMatchObject({ mode: "block", cells: 4096, blockSize: 2 ** 52, count: "18446744073709551616" });
    const sum = (k: "held" | "reserved" | "free" | "unavailable") => m.blocks![k].reduce<bigint>((a, b) => a + BigInt(b), 0n);
    expect(sum("held")).toBe(2n);
    expect(sum("reserved")).toBe((1n << 48n) - 3n); // the /80 but its network address, gateway ::1 and held ::5
    expect(sum("unavailable")).toBe(2n); // network address and gateway
    expect(sum("held") + sum("reserved") + sum("free") + sum("unavailable")).toBe(1n << 64n);
  });
});

describe("the windows the map opens on", () => {
  const cases: [string, RawRange, string, string][] = [
    ["a /24: the subnet, network and broadcast in place", { subnet: "10.0.0.0/24" }, "10.0.0.0", "10.0.0.255"],
    ["a sliver of a /16: the range, widened to rows of 16", { subnet: "10.188.0.0/16", rangeStart: "10.188.0.10", rangeEnd: "10.188.0.200" }, "10.188.0.0", "10.188.0.207"],
    ["most of a /16: the subnet", { subnet: "10.2.0.0/16", rangeStart: "10.2.64.0" }, "10.2.0.0", "10.2.255.255"],
    ["an IPv6 /64", { subnet: "fd00::/64" }, "fd00::", "fd00::ffff:ffff:ffff:ffff"],
  ];
  for (const [name, raw, from, to] of cases) {
    test(name, () => {
      expect(configuredRanges(config([[raw]]))[0]).toMatchObject({ from, to, inferred: false });
    });
  }

  test("a network without config: the smallest prefix, at least a /24, holding its addresses per family", () => {
    expect(inferredRanges([held("10.9.3.7"), held("10.9.5.1"), held("fd00::1:2")]).map((r) => [r.subnet, r.from, r.to])).toEqual([
      ["10.9.0.0/21", "10.9.0.0", "10.9.7.255"],
      ["fd00::1:0/120", "fd00::1:0", "fd00::1:ff"],
    ]);
  });
});

describe("search", () => {
  const networks = new Map<string, Allocation[]>([
    ["a", [held("10.0.0.9", { podNamespace: "prod", podName: "web-1", node: "n2" }), held("10.0.0.2", { podNamespace: "dev", podName: "web-10" })]],
    ["b", [held("10.8.0.1", { podNamespace: "prod", podName: "db-0", kind: "sticky", parkedAt: "2025-01-02T00:00:00.000Z" })]],
  ]);
  const cases: [string, Parameters<typeof search>[1], string[]][] = [
    ["pod name, in address order", { q: "web-1", limit: 10 }, ["a 10.0.0.2", "a 10.0.0.9"]],
    ["namespace/pod", { q: "prod/", limit: 10 }, ["a 10.0.0.9", "b 10.8.0.1"]],
    ["address", { q: "10.8.0.1", limit: 10 }, ["b 10.8.0.1"]],
    ["CIDR", { q: "10.0.0.0/29", limit: 10 }, ["a 10.0.0.2"]],
    ["range", { q: "10.0.0.5-10.8.0.1", limit: 10 }, ["a 10.0.0.9", "b 10.8.0.1"]],
    ["node", { q: "n2", limit: 10 }, ["a 10.0.0.9"]],
    ["kind parked", { q: "", kind: "parked", limit: 10 }, ["b 10.8.0.1"]],
    ["node filter", { q: "web", node: "n1", limit: 10 }, ["a 10.0.0.2"]],
    ["limit", { q: "", limit: 2 }, ["a 10.0.0.2", "a 10.0.0.9"]],
  ];
  for (const [name, query, expected] of cases) {
    test(name, () => {
      expect(search(networks, query).hits.map((h) => `${h.network} ${h.ip}`)).toEqual(expected);
    });
  }
  test("a limit says it cut the list", () => {
    expect(search(networks, { q: "", limit: 2 }).truncated).toBe(true);
  });
});
