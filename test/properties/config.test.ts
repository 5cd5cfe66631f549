// Property: every network config either loads or is refused with a typed error that becomes CNI code
// 1, 6 or 7 with a message, whatever the runtime or an operator puts on stdin.
import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { type IpamConfig, loadIpamConfig } from "../../src/config/ipam_config.ts";
import { decodeNetworkConfig, selectKubeIpamConfig } from "../../src/config/network_file.ts";
import { resultToJSON } from "../../src/cni/result.ts";
import { prefixContains } from "../../src/ip/prefix.ts";
import { configText, deeplyNested, expand, loadsOrRefuses, mutatedConfig, structuredConfig } from "../support/arbitraries.ts";

const OPTS = { hostname: () => "host-a" };

/** What a loaded config promises everything after it. */
function expectSound(c: IpamConfig): void {
  expect(c.rangeSets.length).toBeGreaterThan(0);
  for (const set of c.rangeSets) {
    expect(set.length).toBeGreaterThan(0);
    for (const r of set) {
      expect(r.rangeStart.value <= r.rangeEnd.value).toBe(true);
      for (const ip of [r.rangeStart, r.rangeEnd, r.gateway]) expect(prefixContains(r.subnet, ip)).toBe(true);
    }
  }
  expect(c.network).toMatch(/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/);
  // The result carries the routes as configured: it must print.
  expect(JSON.stringify(resultToJSON({ ips: [], routes: c.routes, dns: {} }, c.cniVersion)).length).toBeLessThan(1_000_000);
}

/** The plugin's path: decode stdin, then load. */
function loadText(text: string): IpamConfig | undefined {
  return loadsOrRefuses(() => loadIpamConfig(decodeNetworkConfig(text), OPTS));
}

describe("loadIpamConfig properties", () => {
  test("structured configs with the real field names load or are refused with code 1, 6 or 7", () => {
    fc.assert(fc.property(structuredConfig, fc.array(fc.string(), { maxLength: 3 }), (conf, argsIPs) => {
      const c = loadsOrRefuses(() => loadIpamConfig(expand(conf), { ...OPTS, argsIPs }));
      if (c) expectSound(c);
    }), { numRuns: 400 });
  }, 30_000);

  test("valid configs with random edits load or are refused with code 1, 6 or 7", () => {
    fc.assert(fc.property(mutatedConfig, (conf) => {
      const c = loadsOrRefuses(() => loadIpamConfig(expand(conf), OPTS));
      if (c) expectSound(c);
    }), { numRuns: 600 });
  }, 30_000);

  test("any text on stdin decodes and loads, or is refused with code 1, 6 or 7", () => {
    fc.assert(fc.property(configText, (text) => {
      const c = loadText(text);
      if (c) expectSound(c);
    }), { numRuns: 200 });
  }, 30_000);

  test("any text as a --conf file selects and loads, or is refused", () => {
    fc.assert(fc.property(configText, (text) => {
      loadsOrRefuses(() => loadIpamConfig(selectKubeIpamConfig(decodeNetworkConfig(text, '"f.conf"'), '"f.conf"'), OPTS));
    }), { numRuns: 200 });
  }, 30_000);
});

describe("regressions found by the properties", () => {
  // JSON.parse takes nesting a hundred thousand deep; JSON.stringify of it in an error message overflowed the
  // stack: a RangeError, code 999 with a stack trace in details.
  const deep = [deeplyNested(100_000, "array"), deeplyNested(100_000, "object")];
  const cases: [string, (v: unknown) => unknown][] = [
    ["cniVersion", (v) => ({ cniVersion: v, name: "n", ipam: { subnet: "10.0.0.0/24" } })],
    ["ipam.routes[0]", (v) => ({ name: "n", ipam: { subnet: "10.0.0.0/24", routes: [v] } })],
    ["ipam.routes[0].mtu", (v) => ({ name: "n", ipam: { subnet: "10.0.0.0/24", routes: [{ dst: "0.0.0.0/0", mtu: v }] } })],
    ["ipam.ranges[0]", (v) => ({ name: "n", ipam: { ranges: [v] } })],
    ["ipam.exclude[0]", (v) => ({ name: "n", ipam: { subnet: "10.0.0.0/24", exclude: [v] } })],
    ["ipam.subnet", (v) => ({ name: "n", ipam: { subnet: v } })],
    ["ipam.gateway", (v) => ({ name: "n", ipam: { subnet: "10.0.0.0/24", gateway: v } })],
    ["ipam.logLevel", (v) => ({ name: "n", ipam: { subnet: "10.0.0.0/24", logLevel: v } })],
    ["ipam.etcdConfig.etcdURL", (v) => ({ name: "n", ipam: { subnet: "10.0.0.0/24", etcdConfig: { etcdURL: v } } })],
    ["ipam.dataDir", (v) => ({ name: "n", ipam: { subnet: "10.0.0.0/24", dataDir: v } })],
    ["runtimeConfig.ips[0]", (v) => ({ name: "n", ipam: { subnet: "10.0.0.0/24" }, runtimeConfig: { ips: [v] } })],
    ["cni.dev/valid-attachments[0]", (v) => ({ name: "n", ipam: { subnet: "10.0.0.0/24" }, "cni.dev/valid-attachments": [v] })],
  ];
  test.each(cases)("a value nested 100000 deep in %s is refused, named, and quoted short", (field, conf) => {
    for (const v of deep) {
      let err: unknown;
      try {
        loadIpamConfig(conf(v), OPTS);
      } catch (e) {
        err = e;
      }
      expect((err as Error).name).toMatch(/^(ConfigError|CniError)$/);
      expect(`${(err as Error).message} ${(err as { details?: string }).details ?? ""}`).toContain(field === "cniVersion" ? "config is" : field);
      expect((err as Error).message.length).toBeLessThan(300);
    }
  });
});

describe("limits", () => {
  // A longer name is no directory name for the embedded store: ADD failed with code 5, ENAMETOOLONG.
  test("a network name of 255 bytes loads; 256 is code 7 naming the limit", () => {
    const conf = (name: string) => ({ cniVersion: "1.0.0", name, ipam: { subnet: "10.0.0.0/24" } });
    expect(loadIpamConfig(conf("n".repeat(255)), OPTS).network).toHaveLength(255);
    expect(() => loadIpamConfig(conf("n".repeat(256)), OPTS))
      .toThrow(`Invalid name: "${"n".repeat(80)}…" is too long: 256 bytes, at most 255`);
  });
});
