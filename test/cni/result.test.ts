import { describe, expect, test } from "bun:test";
import { type IpamResult, prevResultAddresses, resultToJSON } from "../../src/cni/result.ts";
import type { CniVersion } from "../../src/cni/version.ts";
import { parseIP } from "../../src/ip/address.ts";

const dualStack: IpamResult = {
  ips: [
    { ip: parseIP("10.0.0.5"), prefixLength: 24, gateway: parseIP("10.0.0.1") },
    { ip: parseIP("fd00:0:0:0::5"), prefixLength: 64, gateway: parseIP("fd00::1") },
  ],
  routes: [
    { dst: "0.0.0.0/0" },
    { dst: "::/0", gw: "fd00::1" },
    { dst: "192.168.0.0/16", gw: "10.0.0.254", extra: { mtu: 1400, priority: 10 } },
  ],
  dns: { nameservers: ["10.96.0.10"], domain: "cluster.local", search: ["svc.cluster.local", "cluster.local"], options: ["ndots:5"] },
};

const DNS = { nameservers: ["10.96.0.10"], domain: "cluster.local", search: ["svc.cluster.local", "cluster.local"], options: ["ndots:5"] };

const legacy = (v: CniVersion) => ({
  cniVersion: v,
  ip4: {
    ip: "10.0.0.5/24",
    gateway: "10.0.0.1",
    routes: [{ dst: "0.0.0.0/0" }, { dst: "192.168.0.0/16", gw: "10.0.0.254" }],
  },
  ip6: { ip: "fd00::5/64", gateway: "fd00::1", routes: [{ dst: "::/0", gw: "fd00::1" }] },
  dns: DNS,
});

const withFamily = (v: CniVersion) => ({
  cniVersion: v,
  ips: [
    { version: "4", address: "10.0.0.5/24", gateway: "10.0.0.1" },
    { version: "6", address: "fd00::5/64", gateway: "fd00::1" },
  ],
  routes: [{ dst: "0.0.0.0/0" }, { dst: "::/0", gw: "fd00::1" }, { dst: "192.168.0.0/16", gw: "10.0.0.254" }],
  dns: DNS,
});

describe("resultToJSON: one case per CNI version", () => {
  const cases: [CniVersion, Record<string, unknown>][] = [
    ["0.1.0", legacy("0.1.0")],
    ["0.2.0", legacy("0.2.0")],
    ["0.3.0", withFamily("0.3.0")],
    ["0.3.1", withFamily("0.3.1")],
    ["0.4.0", withFamily("0.4.0")],
    ["1.0.0", {
      cniVersion: "1.0.0",
      ips: [{ address: "10.0.0.5/24", gateway: "10.0.0.1" }, { address: "fd00::5/64", gateway: "fd00::1" }],
      routes: [{ dst: "0.0.0.0/0" }, { dst: "::/0", gw: "fd00::1" }, { dst: "192.168.0.0/16", gw: "10.0.0.254" }],
      dns: DNS,
    }],
    ["1.1.0", {
      cniVersion: "1.1.0",
      ips: [{ address: "10.0.0.5/24", gateway: "10.0.0.1" }, { address: "fd00::5/64", gateway: "fd00::1" }],
      routes: [{ dst: "0.0.0.0/0" }, { dst: "::/0", gw: "fd00::1" }, { dst: "192.168.0.0/16", gw: "10.0.0.254", mtu: 1400, priority: 10 }],
      dns: DNS,
    }],
  ];
  test.each(cases)("%s", (version, expected) => {
    expect(resultToJSON(dualStack, version)).toEqual(expected);
  });
});

describe("resultToJSON: optional parts", () => {
  const v4Only: IpamResult = { ips: [{ ip: parseIP("10.0.0.5"), prefixLength: 24 }], routes: [], dns: {} };
  const v6Only: IpamResult = {
    ips: [{ ip: parseIP("fd00::5"), prefixLength: 64, gateway: parseIP("fd00::1") }],
    routes: [{ dst: "0.0.0.0/0" }],
    dns: { nameservers: [], search: [], options: [], domain: "" },
  };
  const cases: [string, IpamResult, CniVersion, Record<string, unknown>][] = [
    ["0.2.0, IPv4 only, no gateway, no routes, no dns", v4Only, "0.2.0", { cniVersion: "0.2.0", ip4: { ip: "10.0.0.5/24" } }],
    ["0.1.0, IPv6 only; an IPv4 route has no IPv4 entry to go in", v6Only, "0.1.0",
      { cniVersion: "0.1.0", ip6: { ip: "fd00::5/64", gateway: "fd00::1" } }],
    ["0.3.1, no routes, empty dns", v4Only, "0.3.1", { cniVersion: "0.3.1", ips: [{ version: "4", address: "10.0.0.5/24" }] }],
    ["0.4.0, IPv6", v6Only, "0.4.0", {
      cniVersion: "0.4.0",
      ips: [{ version: "6", address: "fd00::5/64", gateway: "fd00::1" }],
      routes: [{ dst: "0.0.0.0/0" }],
    }],
    ["1.0.0, no routes, dns of empty lists omitted", v4Only, "1.0.0", { cniVersion: "1.0.0", ips: [{ address: "10.0.0.5/24" }] }],
    ["1.1.0, only a nameserver", { ...v4Only, dns: { nameservers: ["1.1.1.1"] } }, "1.1.0",
      { cniVersion: "1.1.0", ips: [{ address: "10.0.0.5/24" }], dns: { nameservers: ["1.1.1.1"] } }],
    ["1.1.0, only search", { ...v4Only, dns: { search: ["a.b"] } }, "1.1.0",
      { cniVersion: "1.1.0", ips: [{ address: "10.0.0.5/24" }], dns: { search: ["a.b"] } }],
    ["1.0.0, no ips", { ips: [], routes: [], dns: {} }, "1.0.0", { cniVersion: "1.0.0", ips: [] }],
  ];
  test.each(cases)("%s", (_name, result, version, expected) => {
    expect(resultToJSON(result, version)).toEqual(expected);
  });

  test("route extras never reach a version before 1.1.0", () => {
    const r: IpamResult = { ...v4Only, routes: [{ dst: "10.1.0.0/16", extra: { table: 100 } }] };
    for (const v of ["0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0"] as const) {
      expect(JSON.stringify(resultToJSON(r, v))).not.toContain("table");
    }
    expect((resultToJSON(r, "1.1.0").routes as unknown[])[0]).toEqual({ dst: "10.1.0.0/16", table: 100 });
  });
});

describe("prevResultAddresses", () => {
  const cases: [string, unknown, string[]][] = [
    ["undefined", undefined, []],
    ["null", null, []],
    ["a string", "10.0.0.5/24", []],
    ["1.0.0 ips", { cniVersion: "1.0.0", ips: [{ address: "10.0.0.5/24" }, { address: "fd00::5/64" }] }, ["10.0.0.5", "fd00::5"]],
    ["0.4.0 ips with version", withFamily("0.4.0"), ["10.0.0.5", "fd00::5"]],
    ["0.2.0 ip4/ip6", legacy("0.2.0"), ["10.0.0.5", "fd00::5"]],
    ["0.2.0 ip4 only", { ip4: { ip: "10.0.0.5/24" } }, ["10.0.0.5"]],
    ["malformed entries skipped", { ips: [null, 5, { address: 7 }, { gateway: "10.0.0.1" }, { address: "10.0.0.9/24" }], ip4: "x" },
      ["10.0.0.9"]],
    ["ips not a list", { ips: { address: "10.0.0.5/24" } }, []],
    ["address without a length kept", { ips: [{ address: "10.0.0.5" }] }, ["10.0.0.5"]],
  ];
  test.each(cases)("%s", (_name, prev, expected) => {
    expect(prevResultAddresses(prev)).toEqual(expected);
  });

  test("round trip: every version's result yields its addresses", () => {
    for (const v of ["0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"] as const) {
      expect(prevResultAddresses(resultToJSON(dualStack, v))).toEqual(["10.0.0.5", "fd00::5"]);
    }
  });
});
