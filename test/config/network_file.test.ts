import { describe, expect, test } from "bun:test";
import { ConfigError, DecodeError } from "../../src/config/errors.ts";
import { LOG_LEVELS, parseLogLevel } from "../../src/config/log_level.ts";
import { decodeNetworkConfig, selectKubeIpamConfig } from "../../src/config/network_file.ts";

function caught(fn: () => unknown): unknown {
  try {
    fn();
  } catch (e) {
    return e;
  }
  return undefined;
}

describe("decodeNetworkConfig", () => {
  test.each([
    ['{"name":"net"}', { name: "net" }],
    ["[1,2]", [1, 2]],
    [" null ", null],
  ])("%p", (text, expected) => {
    expect(decodeNetworkConfig(text)).toEqual(expected);
  });

  const invalid: [string, string | undefined, string][] = [
    ["", undefined, "stdin"],
    ["{", undefined, "stdin"],
    ['{"name": net}', "/etc/cni/net.d/10-net.conf", "/etc/cni/net.d/10-net.conf"],
  ];
  test.each(invalid)("refuses %p from %p", (text, source, shown) => {
    const parserMessage = (caught(() => JSON.parse(text)) as Error).message;
    const err = caught(() => (source === undefined ? decodeNetworkConfig(text) : decodeNetworkConfig(text, source)));
    expect(err).toBeInstanceOf(DecodeError);
    expect((err as DecodeError).name).toBe("DecodeError");
    expect((err as DecodeError).message).toBe(`Cannot decode network config from ${shown}: ${parserMessage}`);
    expect((err as DecodeError).cause).toBeInstanceOf(SyntaxError);
  });
});

describe("selectKubeIpamConfig", () => {
  const conflist = {
    cniVersion: "1.0.0",
    name: "k8s-pod-network",
    plugins: [
      { type: "portmap", capabilities: { portMappings: true } },
      { type: "bridge", bridge: "cni0", ipam: { type: "host-local", subnet: "10.1.0.0/16" } },
      { type: "macvlan", master: "eth0", ipam: { type: "kube-ipam", subnet: "10.0.0.0/24" } },
      { type: "ptp", ipam: { type: "kube-ipam", subnet: "10.2.0.0/24" } },
    ],
  };

  const valid: [string, unknown, Record<string, unknown>][] = [
    ["a .conf is taken as it is", { cniVersion: "0.4.0", name: "net", type: "bridge", ipam: { type: "kube-ipam" } },
      { cniVersion: "0.4.0", name: "net", type: "bridge", ipam: { type: "kube-ipam" } }],
    ["a .conf with another IPAM is still taken as it is", { name: "net", ipam: { type: "host-local" } },
      { name: "net", ipam: { type: "host-local" } }],
    ["a .conflist: the first kube-ipam plugin, with the list's name and cniVersion", conflist,
      { type: "macvlan", master: "eth0", ipam: { type: "kube-ipam", subnet: "10.0.0.0/24" }, name: "k8s-pod-network", cniVersion: "1.0.0" }],
    ["the list's name and cniVersion win over the plugin's",
      { name: "list", cniVersion: "1.1.0", plugins: [{ name: "p", cniVersion: "0.3.1", ipam: { type: "kube-ipam" } }] },
      { name: "list", cniVersion: "1.1.0", ipam: { type: "kube-ipam" } }],
  ];
  test.each(valid)("%s", (_name, doc, expected) => {
    expect(selectKubeIpamConfig(doc, "f.conflist")).toEqual(expected);
  });

  const invalid: [string, unknown, string, string][] = [
    ["an array", [], "f.conflist", "expected a JSON object"],
    ["null", null, "f.conflist", "expected a JSON object"],
    ["a string", "x", "f.conflist", "expected a JSON object"],
    ["no kube-ipam plugin", { ...conflist, plugins: conflist.plugins.slice(0, 2) }, "f.conflist plugins",
      'no plugin has "ipam": {"type": "kube-ipam"}'],
    ["empty plugins, null entries", { name: "n", plugins: [null, 3] }, "f.conflist plugins", 'no plugin has "ipam": {"type": "kube-ipam"}'],
  ];
  test.each(invalid)("%s", (_name, doc, field, message) => {
    const err = caught(() => selectKubeIpamConfig(doc, "f.conflist"));
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).field).toBe(field);
    expect((err as ConfigError).message).toBe(`Invalid ${field}: ${message}`);
  });
});

describe("parseLogLevel", () => {
  const valid: [string | undefined, string][] = [
    [undefined, "info"],
    ["debug", "debug"],
    ["INFO", "info"],
    ["Warn", "warn"],
    ["error", "error"],
  ];
  test.each(valid)("%p -> %p", (v, expected) => {
    expect(parseLogLevel(v)).toBe(expected as (typeof LOG_LEVELS)[number]);
  });

  test.each(["", "trace", "warning", "fatal"])("refuses %p", (v) => {
    const err = caught(() => parseLogLevel(v));
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).field).toBe("ipam.logLevel");
    expect((err as ConfigError).message).toBe(`Invalid ipam.logLevel: "${v}" is not one of debug, info, warn, error`);
  });
});
