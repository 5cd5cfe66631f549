// Every network config the plugin refuses: code 7, a message naming the field, nothing allocated.
// The real binary, one temporary directory per test.
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { type CniReply, fileNetConf, runCli, runPlugin, tempDir } from "../support/plugin.ts";

let dir: ReturnType<typeof tempDir>;
beforeEach(() => {
  dir = tempDir("kube-ipam-config-");
});
afterEach(() => dir.cleanup());

function expectConfigError(r: CniReply, msg: string, field: string): void {
  expect(r.exitCode).toBe(1);
  expect(r.stdout).toBe(`${JSON.stringify(r.json)}\n`);
  expect(r.json).toEqual({ cniVersion: "1.0.0", code: 7, msg, details: field });
}

type Case = [label: string, ipam: Record<string, unknown>, top: Record<string, unknown>, field: string, msg: string];

const NO_SUBNET = { subnet: undefined };

// [what, ipam overrides, top-level overrides, field, exact message]
const CASES: Case[] = [
  ["subnet with host bits set", { subnet: "10.10.0.5/24" }, {}, "ipam.subnet",
    'Invalid ipam.subnet: subnet "10.10.0.5/24" has host bits set: the network address for /24 is "10.10.0.0"'],
  ["IPv6 subnet with host bits set", { subnet: "fd00::1/64" }, {}, "ipam.subnet",
    'Invalid ipam.subnet: subnet "fd00::1/64" has host bits set: the network address for /64 is "fd00::"'],
  ["subnet too small (/31)", { subnet: "10.10.0.0/31" }, {}, "ipam.subnet",
    'Invalid ipam.subnet: subnet "10.10.0.0/31" is too small to allocate from (at most /30)'],
  ["subnet too small (/32)", { subnet: "10.10.0.1/32" }, {}, "ipam.subnet",
    'Invalid ipam.subnet: subnet "10.10.0.1/32" is too small to allocate from (at most /30)'],
  ["IPv6 subnet too small (/127)", { subnet: "fd00::/127" }, {}, "ipam.subnet",
    'Invalid ipam.subnet: subnet "fd00::/127" is too small to allocate from (at most /126)'],
  ["subnet not a CIDR", { subnet: "10.10.0.0" }, {}, "ipam.subnet",
    'Invalid ipam.subnet: subnet "10.10.0.0" is not a CIDR'],
  ["subnet not a string", { subnet: 24 }, {}, "ipam.subnet",
    "Invalid ipam.subnet: subnet 24 is not a CIDR"],
  ["rangeStart outside the subnet", { rangeStart: "10.10.1.5" }, {}, "ipam.rangeStart",
    'Invalid ipam.rangeStart: rangeStart "10.10.1.5" is not in subnet "10.10.0.0/24"'],
  ["rangeEnd outside the subnet", { rangeEnd: "10.11.0.5" }, {}, "ipam.rangeEnd",
    'Invalid ipam.rangeEnd: rangeEnd "10.11.0.5" is not in subnet "10.10.0.0/24"'],
  ["rangeStart of the other family", { rangeStart: "fd00::5" }, {}, "ipam.rangeStart",
    'Invalid ipam.rangeStart: rangeStart "fd00::5" is not in subnet "10.10.0.0/24"'],
  ["rangeStart not an address", { rangeStart: "10.10.0.500" }, {}, "ipam.rangeStart",
    'Invalid ipam.rangeStart: rangeStart "10.10.0.500" is not an IP address'],
  ["gateway outside the subnet", { gateway: "10.11.0.1" }, {}, "ipam.gateway",
    'Invalid ipam.gateway: gateway "10.11.0.1" is not in subnet "10.10.0.0/24"'],
  ["reversed range", { rangeStart: "10.10.0.50", rangeEnd: "10.10.0.40" }, {}, "ipam.rangeEnd",
    'Invalid ipam.rangeEnd: rangeEnd "10.10.0.40" is before rangeStart "10.10.0.50"'],
  ["rangeStart without subnet", { ...NO_SUBNET, rangeStart: "10.10.0.5" }, {}, "ipam.subnet",
    "Invalid ipam.subnet: rangeStart/rangeEnd need a subnet"],
  ["reversed range inside ranges", {
    ...NO_SUBNET,
    ranges: [[{ subnet: "10.10.0.0/24" }], [{ subnet: "10.20.0.0/24", rangeStart: "10.20.0.9", rangeEnd: "10.20.0.8" }]],
  }, {}, "ipam.ranges[1][0].rangeEnd",
    'Invalid ipam.ranges[1][0].rangeEnd: rangeEnd "10.20.0.8" is before rangeStart "10.20.0.9"'],
  ["rangeStart outside its subnet inside ranges", {
    ...NO_SUBNET,
    ranges: [[{ subnet: "10.10.0.0/24" }, { subnet: "10.20.0.0/24", rangeStart: "10.10.0.9" }]],
  }, {}, "ipam.ranges[0][1].rangeStart",
    'Invalid ipam.ranges[0][1].rangeStart: rangeStart "10.10.0.9" is not in subnet "10.20.0.0/24"'],
  ["overlapping range sets", { ...NO_SUBNET, ranges: [[{ subnet: "10.10.0.0/24" }], [{ subnet: "10.10.0.0/25" }]] }, {},
    "ipam.ranges",
    "Invalid ipam.ranges: range set 1 (10.10.0.0/25 (10.10.0.1-10.10.0.126)) overlaps range set 0 (10.10.0.0/24 (10.10.0.1-10.10.0.254))"],
  ["flat subnet overlapping a range set", { ranges: [[{ subnet: "10.10.0.128/25" }]] }, {}, "ipam.ranges",
    "Invalid ipam.ranges: range set 1 (10.10.0.128/25 (10.10.0.129-10.10.0.254)) overlaps range set 0 (10.10.0.0/24 (10.10.0.1-10.10.0.254))"],
  ["overlapping ranges in one set", { ...NO_SUBNET, ranges: [[{ subnet: "10.10.0.0/24" }, { subnet: "10.10.0.0/25" }]] }, {},
    "ipam.ranges[0]",
    "Invalid ipam.ranges[0]: range 1 (10.10.0.1-10.10.0.126) overlaps range 0 (10.10.0.1-10.10.0.254)"],
  ["mixed families in one set", { ...NO_SUBNET, ranges: [[{ subnet: "10.10.0.0/24" }, { subnet: "fd00::/64" }]] }, {},
    "ipam.ranges[0]",
    "Invalid ipam.ranges[0]: range 1 (fd00::/64) mixes address families in one range set: use a separate set per family"],
  ["no ranges at all", NO_SUBNET, {}, "ipam", 'Invalid ipam: no IP ranges: set "subnet" or "ranges"'],
  ["an empty ranges array", { ...NO_SUBNET, ranges: [] }, {}, "ipam", 'Invalid ipam: no IP ranges: set "subnet" or "ranges"'],
  ["an empty range set", { ...NO_SUBNET, ranges: [[]] }, {}, "ipam.ranges[0]",
    "Invalid ipam.ranges[0]: a range set needs at least one range"],
  ["a range set that is not an array", { ...NO_SUBNET, ranges: [{ subnet: "10.10.0.0/24" }] }, {}, "ipam.ranges[0]",
    'Invalid ipam.ranges[0]: expected an array of ranges (a range set), got {"subnet":"10.10.0.0/24"}'],
  ["ranges not an array", { ...NO_SUBNET, ranges: "10.10.0.0/24" }, {}, "ipam.ranges",
    'Invalid ipam.ranges: expected an array, got "10.10.0.0/24"'],
  ["bad exclude address", { exclude: ["10.10.0.5", "10.10.0.300"] }, {}, "ipam.exclude[1]",
    'Invalid ipam.exclude[1]: "10.10.0.300" is not an address, an "A-B" range of one family, or a CIDR'],
  ["exclude range of two families", { exclude: ["10.10.0.5-fd00::1"] }, {}, "ipam.exclude[0]",
    'Invalid ipam.exclude[0]: "10.10.0.5-fd00::1" is not an address, an "A-B" range of one family, or a CIDR'],
  ["exclude CIDR with a bad length", { exclude: ["10.10.0.0/33"] }, {}, "ipam.exclude[0]",
    'Invalid ipam.exclude[0]: "10.10.0.0/33" is not an address, an "A-B" range of one family, or a CIDR'],
  ["exclude entry not a string", { exclude: [5] }, {}, "ipam.exclude[0]",
    'Invalid ipam.exclude[0]: 5 is not an address, an "A-B" range of one family, or a CIDR'],
  ["route dst not a CIDR", { routes: [{ dst: "0.0.0.0/0" }, { dst: "10.0.0.0" }] }, {}, "ipam.routes[1].dst",
    'Invalid ipam.routes[1].dst: "10.0.0.0" is not a CIDR'],
  ["route without dst", { routes: [{ gw: "10.10.0.1" }] }, {}, "ipam.routes[0].dst",
    "Invalid ipam.routes[0].dst: is missing: every route needs a destination CIDR"],
  ["route gw not an address", { routes: [{ dst: "10.0.0.0/8", gw: "gateway" }] }, {}, "ipam.routes[0].gw",
    'Invalid ipam.routes[0].gw: "gateway" is not an IP address'],
  ["route gw of the other family", { routes: [{ dst: "10.0.0.0/8", gw: "fd00::1" }] }, {}, "ipam.routes[0].gw",
    'Invalid ipam.routes[0].gw: "fd00::1" is not of the family of dst "10.0.0.0/8"'],
  ["route not an object", { routes: ["0.0.0.0/0"] }, {}, "ipam.routes[0]",
    'Invalid ipam.routes[0]: expected {"dst": CIDR, "gw"?: IP}, got "0.0.0.0/0"'],
  ["etcdConfig without etcdURL", { etcdConfig: { etcdPrefix: "/x" } }, {}, "ipam.etcdConfig.etcdURL",
    "Invalid ipam.etcdConfig.etcdURL: required: comma-separated etcd endpoints"],
  ["etcdURL not http(s)", { etcdConfig: { etcdURL: "http://10.0.0.1:2379,10.0.0.2:2379" } }, {}, "ipam.etcdConfig.etcdURL",
    'Invalid ipam.etcdConfig.etcdURL: "10.0.0.2:2379" is not an http:// or https:// URL'],
  ["etcdCertFile without etcdKeyFile", { etcdConfig: { etcdURL: "https://10.0.0.1:2379", etcdCertFile: "/c.pem" } }, {},
    "ipam.etcdConfig", "Invalid ipam.etcdConfig: etcdCertFile and etcdKeyFile go together: set both or neither"],
  ["bad logLevel", { logLevel: "verbose" }, {}, "ipam.logLevel",
    'Invalid ipam.logLevel: "verbose" is not one of debug, info, warn, error'],
  ["dataDir not a string", { dataDir: 7 }, {}, "ipam.dataDir", "Invalid ipam.dataDir: expected a directory path, got 7"],
  ["network name with a space", {}, { name: "my net" }, "name",
    'Invalid name: "my net" may hold only letters, digits, "_", "." and "-", starting with a letter or digit'],
  ["network name starting with a dash", {}, { name: "-net" }, "name",
    'Invalid name: "-net" may hold only letters, digits, "_", "." and "-", starting with a letter or digit'],
  ["network name with a slash", {}, { name: "a/b" }, "name",
    'Invalid name: "a/b" may hold only letters, digits, "_", "." and "-", starting with a letter or digit'],
  ["empty network name", {}, { name: "" }, "name", "Invalid name: the network name is missing"],
  ["network name not a string", {}, { name: 5 }, "name", "Invalid name: the network name is missing"],
  ["requested address not an address", {}, { args: { cni: { ips: ["10.10.0.x"] } } }, "args.cni.ips[0]",
    'Invalid args.cni.ips[0]: "10.10.0.x" is not an IP address'],
  ["valid-attachments not an array", {}, { "cni.dev/valid-attachments": {} }, "cni.dev/valid-attachments",
    "Invalid cni.dev/valid-attachments: expected an array"],
];

describe("bad configs are code 7 naming the field", () => {
  test.each(CASES)("%s", async (_label, ipam, top, field, msg) => {
    const conf = fileNetConf(dir.path, ipam, top);
    expectConfigError(await runPlugin(conf, { command: "ADD" }), msg, field);
    // Refused before the store is touched.
    expect(existsSync(join(dir.path, "data"))).toBe(false);
  });

  test("a missing ipam section", async () => {
    const conf: Record<string, unknown> = fileNetConf(dir.path);
    delete conf.ipam;
    expectConfigError(await runPlugin(conf, { command: "ADD" }), 'Invalid ipam: the "ipam" section is missing', "ipam");
  });

  test("a config that is not an object", async () => {
    const r = await runPlugin("[1, 2]", { command: "ADD" });
    expect(r.exitCode).toBe(1);
    // No cniVersion to read: reported as 0.1.0, libcni's reading of a config without one.
    expect(r.json).toEqual({
      cniVersion: "0.1.0",
      code: 7,
      msg: "Invalid network config: expected a JSON object",
      details: "network config",
    });
  });

  test("DEL refuses a bad config too", async () => {
    const conf = fileNetConf(dir.path, { subnet: "10.10.0.0/31" });
    expectConfigError(await runPlugin(conf, { command: "DEL" }), 'Invalid ipam.subnet: subnet "10.10.0.0/31" is too small to allocate from (at most /30)', "ipam.subnet");
  });

  test("logLevel is case-insensitive", async () => {
    const r = await runPlugin(fileNetConf(dir.path, { logLevel: "DEBUG" }), { command: "ADD" });
    expect(r.exitCode).toBe(0);
  });
});

describe("resolvConf", () => {
  test("a missing file is an error naming it, and nothing stays allocated", async () => {
    const missing = join(dir.path, "no-such-resolv.conf");
    const conf = fileNetConf(dir.path, { resolvConf: missing });
    const r = await runPlugin(conf, { command: "ADD" });
    expectConfigError(r,
      `Invalid ipam.resolvConf: cannot read "${missing}": ENOENT: no such file or directory, open '${missing}'`,
      "ipam.resolvConf");

    const confFile = join(dir.path, "net.conf");
    writeFileSync(confFile, JSON.stringify(conf));
    const ls = await runCli(["ls", "--conf", confFile, "-o", "json"]);
    expect(ls.exitCode).toBe(0);
    expect(ls.json).toEqual([]);
  });

  test("a dual-stack ADD with a missing resolvConf leaves nothing allocated", async () => {
    const missing = join(dir.path, "gone", "resolv.conf");
    const conf = fileNetConf(dir.path, {
      subnet: undefined,
      ranges: [[{ subnet: "10.10.0.0/24" }], [{ subnet: "fd00::/120" }]],
      resolvConf: missing,
    });
    const r = await runPlugin(conf, { command: "ADD" });
    expect(r.json.code).toBe(7);
    expect(r.json.msg).toContain(`"${missing}"`);
    const confFile = join(dir.path, "net.conf");
    writeFileSync(confFile, JSON.stringify(conf));
    expect((await runCli(["ls", "--conf", confFile, "-o", "json"])).json).toEqual([]);
  });
});
