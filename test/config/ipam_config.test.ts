import { describe, expect, test } from "bun:test";
import { ConfigError } from "../../src/config/errors.ts";
import {
  DEFAULT_LOG_FILE,
  type IpamConfig,
  loadIpamConfig,
  type LoadOptions,
} from "../../src/config/ipam_config.ts";
import { formatIP } from "../../src/ip/address.ts";
import { formatInterval } from "../../src/ip/interval_set.ts";
import { formatRangeSet } from "../../src/ip/range_set.ts";

const OPTS: LoadOptions = { hostname: () => "host-a" };

/** A 1.0.0 config named "net" with the given ipam section and top-level extras. */
function conf(ipam: Record<string, unknown>, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { cniVersion: "1.0.0", name: "net", type: "bridge", ipam: { type: "kube-ipam", ...ipam }, ...extra };
}

function load(c: unknown, opts: LoadOptions = OPTS): IpamConfig {
  return loadIpamConfig(c, opts);
}

function configError(c: unknown, opts: LoadOptions = OPTS): ConfigError {
  let err: unknown;
  try {
    load(c, opts);
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(ConfigError);
  return err as ConfigError;
}

const sets = (c: IpamConfig) => c.rangeSets.map(formatRangeSet);

describe("loadIpamConfig: range sets", () => {
  const cases: [string, Record<string, unknown>, string[]][] = [
    ["flat subnet form", conf({ subnet: "10.0.0.0/24" }), ["10.0.0.0/24 (10.0.0.1-10.0.0.254)"]],
    ["flat form with rangeStart, rangeEnd and gateway",
      conf({ subnet: "10.0.0.0/24", rangeStart: "10.0.0.10", rangeEnd: "10.0.0.20", gateway: "10.0.0.254" }),
      ["10.0.0.0/24 (10.0.0.10-10.0.0.20)"]],
    ["ranges: dual stack and a two-range set",
      conf({ ranges: [[{ subnet: "10.0.0.0/24" }, { subnet: "10.0.1.0/24" }], [{ subnet: "fd00::/64" }]] }),
      ["10.0.0.0/24 (10.0.0.1-10.0.0.254), 10.0.1.0/24 (10.0.1.1-10.0.1.254)", "fd00::/64 (fd00::1-fd00::ffff:ffff:ffff:ffff)"]],
    ["flat subnet comes before ranges", conf({ subnet: "10.0.0.0/24", ranges: [[{ subnet: "fd00::/64" }]] }),
      ["10.0.0.0/24 (10.0.0.1-10.0.0.254)", "fd00::/64 (fd00::1-fd00::ffff:ffff:ffff:ffff)"]],
    ["runtimeConfig.ipRanges prepended",
      conf({ subnet: "10.0.0.0/24", ranges: [[{ subnet: "fd00::/64" }]] },
        { runtimeConfig: { ipRanges: [[{ subnet: "10.9.0.0/24", rangeStart: "10.9.0.100" }]] } }),
      ["10.9.0.0/24 (10.9.0.100-10.9.0.254)", "10.0.0.0/24 (10.0.0.1-10.0.0.254)", "fd00::/64 (fd00::1-fd00::ffff:ffff:ffff:ffff)"]],
    ["runtimeConfig.ipRanges alone", conf({}, { runtimeConfig: { ipRanges: [[{ subnet: "10.9.0.0/24" }]] } }),
      ["10.9.0.0/24 (10.9.0.1-10.9.0.254)"]],
    ["runtimeConfig not an object is ignored", conf({ subnet: "10.0.0.0/24" }, { runtimeConfig: "x" }),
      ["10.0.0.0/24 (10.0.0.1-10.0.0.254)"]],
    ["same subnet, disjoint ranges in two sets",
      conf({ ranges: [[{ subnet: "10.0.0.0/24", rangeEnd: "10.0.0.99" }], [{ subnet: "10.0.0.0/24", rangeStart: "10.0.0.100" }]] }),
      ["10.0.0.0/24 (10.0.0.1-10.0.0.99)", "10.0.0.0/24 (10.0.0.100-10.0.0.254)"]],
  ];
  test.each(cases)("%s", (_name, c, expected) => {
    expect(sets(load(c))).toEqual(expected);
  });

  const invalid: [string, Record<string, unknown>, string, string][] = [
    ["no ranges at all", conf({}), "ipam", 'no IP ranges: set "subnet" or "ranges"'],
    ["empty ranges", conf({ ranges: [] }), "ipam", 'no IP ranges: set "subnet" or "ranges"'],
    ["rangeStart without subnet", conf({ rangeStart: "10.0.0.5", ranges: [[{ subnet: "10.0.0.0/24" }]] }), "ipam.subnet",
      "rangeStart/rangeEnd need a subnet"],
    ["flat subnet not a CIDR", conf({ subnet: "10.0.0.0" }), "ipam.subnet", 'subnet "10.0.0.0" is not a CIDR'],
    ["flat subnet host bits", conf({ subnet: "10.0.0.1/24" }), "ipam.subnet",
      'subnet "10.0.0.1/24" has host bits set: the network address for /24 is "10.0.0.0"'],
    ["flat rangeEnd outside", conf({ subnet: "10.0.0.0/24", rangeEnd: "10.0.1.1" }), "ipam.rangeEnd",
      'rangeEnd "10.0.1.1" is not in subnet "10.0.0.0/24"'],
    ["flat gateway outside", conf({ subnet: "fd00::/64", gateway: "fd01::1" }), "ipam.gateway",
      'gateway "fd01::1" is not in subnet "fd00::/64"'],
    ["ranges not an array", conf({ ranges: { subnet: "10.0.0.0/24" } }), "ipam.ranges",
      'expected an array, got {"subnet":"10.0.0.0/24"}'],
    ["range set not an array", conf({ ranges: [{ subnet: "10.0.0.0/24" }] }), "ipam.ranges[0]",
      'expected an array of ranges (a range set), got {"subnet":"10.0.0.0/24"}'],
    ["range not an object", conf({ ranges: [["10.0.0.0/24"]] }), "ipam.ranges[0][0]",
      'expected a range object {"subnet": ...}, got "10.0.0.0/24"'],
    ["empty range set", conf({ ranges: [[]] }), "ipam.ranges[0]", "a range set needs at least one range"],
    ["range too small", conf({ ranges: [[{ subnet: "10.0.0.0/24" }], [{ subnet: "fd00::/64" }, { subnet: "fd01::/127" }]] }),
      "ipam.ranges[1][1].subnet", 'subnet "fd01::/127" is too small to allocate from (at most /126)'],
    ["range missing subnet", conf({ ranges: [[{ rangeStart: "10.0.0.2" }]] }), "ipam.ranges[0][0].subnet", "subnet is required"],
    ["reversed range", conf({ ranges: [[{ subnet: "10.0.0.0/24", rangeStart: "10.0.0.9", rangeEnd: "10.0.0.8" }]] }),
      "ipam.ranges[0][0].rangeEnd", 'rangeEnd "10.0.0.8" is before rangeStart "10.0.0.9"'],
    ["mixed families in one set", conf({ ranges: [[{ subnet: "10.0.0.0/24" }, { subnet: "fd00::/64" }]] }), "ipam.ranges[0]",
      "range 1 (fd00::/64) mixes address families in one range set: use a separate set per family"],
    ["overlap inside a set", conf({ ranges: [[{ subnet: "10.0.0.0/16" }, { subnet: "10.0.5.0/24" }]] }), "ipam.ranges[0]",
      "range 1 (10.0.5.1-10.0.5.254) overlaps range 0 (10.0.0.1-10.0.255.254)"],
    ["overlapping range sets", conf({ ranges: [[{ subnet: "10.0.0.0/24" }], [{ subnet: "10.0.0.0/25" }]] }), "ipam.ranges",
      "range set 1 (10.0.0.0/25 (10.0.0.1-10.0.0.126)) overlaps range set 0 (10.0.0.0/24 (10.0.0.1-10.0.0.254))"],
    ["flat subnet overlaps ranges", conf({ subnet: "10.0.0.0/24", ranges: [[{ subnet: "10.0.0.0/24" }]] }), "ipam.ranges",
      "range set 1 (10.0.0.0/24 (10.0.0.1-10.0.0.254)) overlaps range set 0 (10.0.0.0/24 (10.0.0.1-10.0.0.254))"],
    ["runtime ipRanges overlap the config", conf({ subnet: "10.0.0.0/24" }, { runtimeConfig: { ipRanges: [[{ subnet: "10.0.0.128/25" }]] } }),
      "ipam.ranges",
      "range set 1 (10.0.0.0/24 (10.0.0.1-10.0.0.254)) overlaps range set 0 (10.0.0.128/25 (10.0.0.129-10.0.0.254))"],
    ["runtime ipRanges invalid", conf({ subnet: "10.0.0.0/24" }, { runtimeConfig: { ipRanges: [[{ subnet: "10.1.0.0/33" }]] } }),
      "runtimeConfig.ipRanges[0][0].subnet", 'subnet "10.1.0.0/33" is not a CIDR'],
    ["runtime ipRanges not an array", conf({ subnet: "10.0.0.0/24" }, { runtimeConfig: { ipRanges: "10.1.0.0/24" } }),
      "runtimeConfig.ipRanges", 'expected an array, got "10.1.0.0/24"'],
  ];
  test.each(invalid)("%s", (_name, c, field, message) => {
    const err = configError(c);
    expect(err.name).toBe("ConfigError");
    expect(err.field).toBe(field);
    expect(err.message).toBe(`Invalid ${field}: ${message}`);
  });
});

describe("loadIpamConfig: top level", () => {
  const invalid: [string, unknown, string, string][] = [
    ["not an object", [], "network config", "expected a JSON object"],
    ["null", null, "network config", "expected a JSON object"],
    ["name missing", { cniVersion: "1.0.0", ipam: { subnet: "10.0.0.0/24" } }, "name", "the network name is missing"],
    ["name empty", { cniVersion: "1.0.0", name: "", ipam: { subnet: "10.0.0.0/24" } }, "name", "the network name is missing"],
    ["name not a string", { cniVersion: "1.0.0", name: 7, ipam: { subnet: "10.0.0.0/24" } }, "name", "the network name is missing"],
    ["ipam missing", { cniVersion: "1.0.0", name: "net" }, "ipam", 'the "ipam" section is missing'],
    ["ipam an array", { cniVersion: "1.0.0", name: "net", ipam: [] }, "ipam", 'the "ipam" section is missing'],
  ];
  test.each(invalid)("%s", (_name, c, field, message) => {
    const err = configError(c);
    expect(err.field).toBe(field);
    expect(err.message).toBe(`Invalid ${field}: ${message}`);
  });

  const badNames = ["-net", ".net", "_net", "my net", "net/1", "net:1", "ünï"];
  test.each(badNames)("network name %p refused", (name) => {
    const err = configError({ ...conf({ subnet: "10.0.0.0/24" }), name });
    expect(err.field).toBe("name");
    expect(err.message).toBe(`Invalid name: "${name}" may hold only letters, digits, "_", "." and "-", starting with a letter or digit`);
  });

  const goodNames = ["net", "k8s-pod-network", "a.b_c-1", "0net", "N"];
  test.each(goodNames)("network name %p accepted", (name) => {
    expect(load({ ...conf({ subnet: "10.0.0.0/24" }), name }).network).toBe(name);
  });

  test("unsupported cniVersion is a CNI version error, not a config error", () => {
    let err: unknown;
    try {
      load({ ...conf({ subnet: "10.0.0.0/24" }), cniVersion: "9.9.9" });
    } catch (e) {
      err = e;
    }
    expect((err as Error).name).toBe("CniError");
    expect((err as { code: number }).code).toBe(1);
  });

  test("missing cniVersion reads as 0.1.0", () => {
    const { cniVersion: _v, ...c } = conf({ subnet: "10.0.0.0/24" });
    expect(load(c).cniVersion).toBe("0.1.0");
  });

  test("defaults", () => {
    const c = load(conf({ subnet: "10.0.0.0/24" }));
    expect(c).toMatchObject({
      network: "net",
      cniVersion: "1.0.0",
      routes: [],
      resolvConf: undefined,
      store: { kind: "file", dataDir: "/var/lib/cni/kube-ipam" },
      kubeConfig: undefined,
      logFile: DEFAULT_LOG_FILE,
      logLevel: "info",
      nodeName: "host-a",
      requestedIPs: [],
      prevResult: undefined,
      validAttachments: undefined,
    });
    expect(c.exclude.intervals).toEqual([]);
    expect(DEFAULT_LOG_FILE).toBe("/var/log/kube-ipam.log");
  });

  test("options read as written", () => {
    const prevResult = { cniVersion: "1.0.0", ips: [{ address: "10.0.0.2/24" }] };
    const c = load(conf(
      { subnet: "10.0.0.0/24", resolvConf: "/etc/resolv.conf", kubeConfig: "/etc/kube.conf", logFile: "/tmp/x.log", logLevel: "DEBUG", dataDir: "/tmp/d" },
      { prevResult, "cni.dev/valid-attachments": [{ containerID: "c1", ifname: "eth0" }] },
    ));
    expect(c).toMatchObject({
      resolvConf: "/etc/resolv.conf",
      kubeConfig: "/etc/kube.conf",
      logFile: "/tmp/x.log",
      logLevel: "debug",
      store: { kind: "file", dataDir: "/tmp/d" },
      prevResult,
      validAttachments: [{ containerID: "c1", ifName: "eth0" }],
    });
  });

  test("cni.dev/valid-attachments null (Go's nil slice) is no valid attachment", () => {
    expect(load(conf({ subnet: "10.0.0.0/24" }, { "cni.dev/valid-attachments": null })).validAttachments).toEqual([]);
    expect(load(conf({ subnet: "10.0.0.0/24" }, { "cni.dev/valid-attachments": [] })).validAttachments).toEqual([]);
  });

  const badOptions: [string, Record<string, unknown>, string, string][] = [
    ["resolvConf not a string", conf({ subnet: "10.0.0.0/24", resolvConf: 1 }), "ipam.resolvConf", "expected a string, got 1"],
    ["logFile not a string", conf({ subnet: "10.0.0.0/24", logFile: ["a"] }), "ipam.logFile", 'expected a string, got ["a"]'],
    ["logLevel unknown", conf({ subnet: "10.0.0.0/24", logLevel: "trace" }), "ipam.logLevel", '"trace" is not one of debug, info, warn, error'],
    ["nodeName not a string", conf({ subnet: "10.0.0.0/24", nodeName: true }), "ipam.nodeName", "expected a string, got true"],
    ["valid-attachments not an array", conf({ subnet: "10.0.0.0/24" }, { "cni.dev/valid-attachments": {} }),
      "cni.dev/valid-attachments", "expected an array"],
    ["valid-attachment without ifname", conf({ subnet: "10.0.0.0/24" }, { "cni.dev/valid-attachments": [{ containerID: "c" }] }),
      "cni.dev/valid-attachments[0]", 'expected {"containerID", "ifname"}, got {"containerID":"c"}'],
  ];
  test.each(badOptions)("%s", (_name, c, field, message) => {
    const err = configError(c);
    expect(err.field).toBe(field);
    expect(err.message).toBe(`Invalid ${field}: ${message}`);
  });
});

describe("loadIpamConfig: exclude", () => {
  test("entries parsed and merged", () => {
    const c = load(conf({ subnet: "10.0.0.0/24", exclude: ["10.0.0.10-10.0.0.19", "10.0.0.20", " 10.0.0.128/25 ", "fd00::/64"] }));
    expect(c.exclude.intervals.map(formatInterval)).toEqual(["10.0.0.10-10.0.0.20", "10.0.0.128-10.0.0.255", "fd00::-fd00::ffff:ffff:ffff:ffff"]);
  });

  const invalid: [string, unknown, string, string][] = [
    ["not an array", "10.0.0.1", "ipam.exclude", 'expected an array, got "10.0.0.1"'],
    ["reversed", ["10.0.0.1", "10.0.0.9-10.0.0.5"], "ipam.exclude[1]",
      '"10.0.0.9-10.0.0.5" is not an address, an "A-B" range of one family, or a CIDR'],
    ["mixed families", ["10.0.0.1-fd00::1"], "ipam.exclude[0]",
      '"10.0.0.1-fd00::1" is not an address, an "A-B" range of one family, or a CIDR'],
    ["bad CIDR", ["10.0.0.0/24", "10.0.0.0/40"], "ipam.exclude[1]",
      '"10.0.0.0/40" is not an address, an "A-B" range of one family, or a CIDR'],
    ["a number", [167772161], "ipam.exclude[0]", '167772161 is not an address, an "A-B" range of one family, or a CIDR'],
    ["an object", [{ ip: "10.0.0.1" }], "ipam.exclude[0]", '{"ip":"10.0.0.1"} is not an address, an "A-B" range of one family, or a CIDR'],
  ];
  test.each(invalid)("%s", (_name, exclude, field, message) => {
    const err = configError(conf({ subnet: "10.0.0.0/24", exclude }));
    expect(err.field).toBe(field);
    expect(err.message).toBe(`Invalid ${field}: ${message}`);
  });
});

describe("loadIpamConfig: routes", () => {
  test("kept as written, with 1.1.0 extras", () => {
    const c = load(conf({
      subnet: "10.0.0.0/24",
      routes: [{ dst: "0.0.0.0/0" }, { dst: "::/0", gw: "fd00::1" }, { dst: "10.9.0.0/16", gw: "10.0.0.254", mtu: 1400, table: 7 }, { dst: "10.8.0.0/16", gw: "" }],
    }));
    expect(c.routes).toEqual([
      { dst: "0.0.0.0/0" },
      { dst: "::/0", gw: "fd00::1" },
      { dst: "10.9.0.0/16", gw: "10.0.0.254", extra: { mtu: 1400, table: 7 } },
      { dst: "10.8.0.0/16" },
    ]);
  });

  const invalid: [string, unknown, string, string][] = [
    ["not an array", { dst: "0.0.0.0/0" }, "ipam.routes", 'expected an array, got {"dst":"0.0.0.0/0"}'],
    ["entry not an object", ["0.0.0.0/0"], "ipam.routes[0]", 'expected {"dst": CIDR, "gw"?: IP}, got "0.0.0.0/0"'],
    ["dst missing", [{ gw: "10.0.0.1" }], "ipam.routes[0].dst", "is missing: every route needs a destination CIDR"],
    ["dst not a CIDR", [{ dst: "0.0.0.0/0" }, { dst: "10.0.0.0" }], "ipam.routes[1].dst", '"10.0.0.0" is not a CIDR'],
    ["gw not an address", [{ dst: "0.0.0.0/0", gw: "router" }], "ipam.routes[0].gw", '"router" is not an IP address'],
    ["gw not a string", [{ dst: "0.0.0.0/0", gw: 1 }], "ipam.routes[0].gw", "expected a string, got 1"],
    ["gw of the other family", [{ dst: "::/0", gw: "10.0.0.1" }], "ipam.routes[0].gw", '"10.0.0.1" is not of the family of dst "::/0"'],
    ["IPv6 gw for IPv4 dst", [{ dst: "0.0.0.0/0", gw: "fd00::1" }], "ipam.routes[0].gw",
      '"fd00::1" is not of the family of dst "0.0.0.0/0"'],
  ];
  test.each(invalid)("%s", (_name, routes, field, message) => {
    const err = configError(conf({ subnet: "10.0.0.0/24", routes }));
    expect(err.field).toBe(field);
    expect(err.message).toBe(`Invalid ${field}: ${message}`);
  });
});

describe("loadIpamConfig: requested IPs", () => {
  const cases: [string, Record<string, unknown>, LoadOptions, string[]][] = [
    ["none", conf({ subnet: "10.0.0.0/24" }), OPTS, []],
    ["CNI_ARGS IP=", conf({ subnet: "10.0.0.0/24" }), { ...OPTS, argsIPs: ["10.0.0.5", " fd00::5 "] }, ["10.0.0.5", "fd00::5"]],
    ["args.cni.ips", conf({ subnet: "10.0.0.0/24" }, { args: { cni: { ips: ["10.0.0.6"] } } }), OPTS, ["10.0.0.6"]],
    ["runtimeConfig.ips with /prefix", conf({ subnet: "10.0.0.0/24" }, { runtimeConfig: { ips: ["10.0.0.7/24", "fd00::7/64"] } }), OPTS,
      ["10.0.0.7", "fd00::7"]],
    ["all three, in that order, duplicates dropped",
      conf({ subnet: "10.0.0.0/24" }, { args: { cni: { ips: ["10.0.0.6", "10.0.0.5"] } }, runtimeConfig: { ips: ["10.0.0.7/24", "10.0.0.6/24"] } }),
      { ...OPTS, argsIPs: ["10.0.0.5"] }, ["10.0.0.5", "10.0.0.6", "10.0.0.7"]],
    ["args without cni ignored", conf({ subnet: "10.0.0.0/24" }, { args: { ips: ["10.0.0.6"] } }), OPTS, []],
    ["IPv6 written long, deduplicated by value", conf({ subnet: "fd00::/64" }, { args: { cni: { ips: ["fd00:0::5", "FD00::5"] } } }), OPTS,
      ["fd00::5"]],
  ];
  test.each(cases)("%s", (_name, c, opts, expected) => {
    expect(load(c, opts).requestedIPs.map(formatIP)).toEqual(expected);
  });

  const invalid: [string, Record<string, unknown>, LoadOptions, string, string][] = [
    ["CNI_ARGS IP= not an address", conf({ subnet: "10.0.0.0/24" }), { ...OPTS, argsIPs: ["10.0.0.5", "ten"] },
      "CNI_ARGS IP[1]", '"ten" is not an IP address'],
    ["args.cni.ips not an array", conf({ subnet: "10.0.0.0/24" }, { args: { cni: { ips: "10.0.0.5" } } }), OPTS,
      "args.cni.ips", 'expected an array, got "10.0.0.5"'],
    ["args.cni.ips entry not a string", conf({ subnet: "10.0.0.0/24" }, { args: { cni: { ips: [5] } } }), OPTS,
      "args.cni.ips[0]", "5 is not an IP address"],
    ["runtimeConfig.ips bad address", conf({ subnet: "10.0.0.0/24" }, { runtimeConfig: { ips: ["10.0.0.256/24"] } }), OPTS,
      "runtimeConfig.ips[0]", '"10.0.0.256/24" is not an IP address'],
    ["runtimeConfig.ips only a length", conf({ subnet: "10.0.0.0/24" }, { runtimeConfig: { ips: ["/24"] } }), OPTS,
      "runtimeConfig.ips[0]", '"/24" is not an IP address'],
  ];
  test.each(invalid)("%s", (_name, c, opts, field, message) => {
    const err = configError(c, opts);
    expect(err.field).toBe(field);
    expect(err.message).toBe(`Invalid ${field}: ${message}`);
  });
});

describe("loadIpamConfig: nodeName", () => {
  const cases: [string, Record<string, unknown>, LoadOptions, string][] = [
    ["ipam.nodeName wins", { nodeName: "from-config" }, { hostname: () => "host", envNodeName: "from-env" }, "from-config"],
    ["then KUBE_IPAM_NODE_NAME", {}, { hostname: () => "host", envNodeName: "from-env" }, "from-env"],
    ["then the hostname", {}, { hostname: () => "host" }, "host"],
    ["an empty env value falls through", {}, { hostname: () => "host", envNodeName: "" }, "host"],
    ["an empty ipam.nodeName falls through", { nodeName: "" }, { hostname: () => "host", envNodeName: "from-env" }, "from-env"],
  ];
  test.each(cases)("%s", (_name, ipam, opts, expected) => {
    expect(load(conf({ subnet: "10.0.0.0/24", ...ipam }), opts).nodeName).toBe(expected);
  });

  test("the hostname is not even read when the node is named", () => {
    const unasked = () => {
      throw new Error("hostname read");
    };
    expect(load(conf({ subnet: "10.0.0.0/24", nodeName: "n" }), { hostname: unasked }).nodeName).toBe("n");
    expect(load(conf({ subnet: "10.0.0.0/24" }), { hostname: unasked, envNodeName: "e" }).nodeName).toBe("e");
  });
});
