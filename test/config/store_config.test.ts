import { describe, expect, test } from "bun:test";
import { ConfigError } from "../../src/config/errors.ts";
import { DEFAULT_DATA_DIR, DEFAULT_ETCD_PREFIX, parseStoreConfig, type StoreConfig } from "../../src/config/store_config.ts";

describe("parseStoreConfig", () => {
  const etcd = (e: Record<string, unknown>) => ({ etcdConfig: e });
  const URL1 = "https://10.0.0.1:2379";

  const valid: [string, Record<string, unknown>, StoreConfig][] = [
    ["no etcdConfig: the file store", {}, { kind: "file", dataDir: DEFAULT_DATA_DIR }],
    ["etcdConfig null: the file store", { etcdConfig: null }, { kind: "file", dataDir: DEFAULT_DATA_DIR }],
    ["dataDir", { dataDir: "/tmp/ipam" }, { kind: "file", dataDir: "/tmp/ipam" }],
    ["one endpoint, defaults", etcd({ etcdURL: URL1 }),
      { kind: "etcd", endpoints: [URL1], certFile: undefined, keyFile: undefined, caFile: undefined, prefix: DEFAULT_ETCD_PREFIX }],
    ["comma-separated endpoints, spaces and trailing slashes dropped", etcd({ etcdURL: " https://a:2379/, http://b:2379 ,,https://[fd00::1]:2379// " }),
      { kind: "etcd", endpoints: ["https://a:2379", "http://b:2379", "https://[fd00::1]:2379"], certFile: undefined, keyFile: undefined,
        caFile: undefined, prefix: "/kube-ipam" }],
    ["TLS files, CA spelled etcdTrustedCAFileFile (the seed's spelling)",
      etcd({ etcdURL: URL1, etcdCertFile: "/c.pem", etcdKeyFile: "/k.pem", etcdTrustedCAFileFile: "/ca.pem" }),
      { kind: "etcd", endpoints: [URL1], certFile: "/c.pem", keyFile: "/k.pem", caFile: "/ca.pem", prefix: "/kube-ipam" }],
    ["CA spelled etcdTrustedCAFile", etcd({ etcdURL: URL1, etcdTrustedCAFile: "/ca2.pem" }),
      { kind: "etcd", endpoints: [URL1], certFile: undefined, keyFile: undefined, caFile: "/ca2.pem", prefix: "/kube-ipam" }],
    ["both CA spellings: etcdTrustedCAFileFile wins", etcd({ etcdURL: URL1, etcdTrustedCAFileFile: "/a.pem", etcdTrustedCAFile: "/b.pem" }),
      { kind: "etcd", endpoints: [URL1], certFile: undefined, keyFile: undefined, caFile: "/a.pem", prefix: "/kube-ipam" }],
    ["empty strings are absent", etcd({ etcdURL: URL1, etcdCertFile: "", etcdKeyFile: "", etcdTrustedCAFileFile: "", etcdPrefix: "" }),
      { kind: "etcd", endpoints: [URL1], certFile: undefined, keyFile: undefined, caFile: undefined, prefix: "/kube-ipam" }],
  ];
  test.each(valid)("%s", (_name, ipam, expected) => {
    expect(parseStoreConfig(ipam)).toEqual(expected);
  });

  const prefixes: [string, string][] = [
    ["/kube-ipam", "/kube-ipam"],
    ["cluster-a", "/cluster-a"],
    ["/cluster-a/", "/cluster-a"],
    ["/a/b//", "/a/b"],
    ["a/b", "/a/b"],
    ["/", "/kube-ipam"],
  ];
  test.each(prefixes)("etcdPrefix %p -> %p", (prefix, expected) => {
    const c = parseStoreConfig(etcd({ etcdURL: URL1, etcdPrefix: prefix }));
    expect(c.kind === "etcd" && c.prefix).toBe(expected);
  });

  const invalid: [string, Record<string, unknown>, string, string][] = [
    ["dataDir empty", { dataDir: "" }, "ipam.dataDir", 'expected a directory path, got ""'],
    ["dataDir a number", { dataDir: 5 }, "ipam.dataDir", "expected a directory path, got 5"],
    ["etcdConfig a string", { etcdConfig: "https://a:2379" }, "ipam.etcdConfig", "expected an object with etcdURL"],
    ["etcdConfig an array", { etcdConfig: [] }, "ipam.etcdConfig", "expected an object with etcdURL"],
    ["etcdURL missing", etcd({}), "ipam.etcdConfig.etcdURL", "required: comma-separated etcd endpoints"],
    ["etcdURL empty", etcd({ etcdURL: "" }), "ipam.etcdConfig.etcdURL", "required: comma-separated etcd endpoints"],
    ["etcdURL only commas", etcd({ etcdURL: " , ," }), "ipam.etcdConfig.etcdURL", "no endpoint given"],
    ["etcdURL a list", etcd({ etcdURL: [URL1] }), "ipam.etcdConfig.etcdURL", 'expected a string, got ["https://10.0.0.1:2379"]'],
    ["endpoint without scheme", etcd({ etcdURL: `${URL1},10.0.0.2:2379` }), "ipam.etcdConfig.etcdURL",
      '"10.0.0.2:2379" is not an http:// or https:// URL'],
    ["endpoint of another scheme", etcd({ etcdURL: "unix:///run/etcd.sock" }), "ipam.etcdConfig.etcdURL",
      '"unix:///run/etcd.sock" is not an http:// or https:// URL'],
    ["endpoint not a URL", etcd({ etcdURL: "etcd" }), "ipam.etcdConfig.etcdURL", '"etcd" is not an http:// or https:// URL'],
    ["endpoint with a user or a query", etcd({ etcdURL: "https://me@10.0.0.1:2379?x=1" }), "ipam.etcdConfig.etcdURL",
      '"https://me@10.0.0.1:2379?x=1": only scheme, host, port and path are allowed'],
    ["cert without key", etcd({ etcdURL: URL1, etcdCertFile: "/c.pem" }), "ipam.etcdConfig",
      "etcdCertFile and etcdKeyFile go together: set both or neither"],
    ["key without cert", etcd({ etcdURL: URL1, etcdKeyFile: "/k.pem" }), "ipam.etcdConfig",
      "etcdCertFile and etcdKeyFile go together: set both or neither"],
    ["CA not a string", etcd({ etcdURL: URL1, etcdTrustedCAFile: true }), "ipam.etcdConfig.etcdTrustedCAFile", "expected a string, got true"],
    ["prefix not a string", etcd({ etcdURL: URL1, etcdPrefix: 1 }), "ipam.etcdConfig.etcdPrefix", "expected a string, got 1"],
  ];
  test.each(invalid)("%s", (_name, ipam, field, message) => {
    let err: unknown;
    try {
      parseStoreConfig(ipam);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).field).toBe(field);
    expect((err as ConfigError).message).toBe(`Invalid ${field}: ${message}`);
  });
});
