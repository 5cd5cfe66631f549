// fast-check generators for bad input: near-valid values (the real field names with malformed or
// out-of-range values, valid configs mutated) and arbitrary text and JSON.
import { expect } from "bun:test";
import fc from "fast-check";
import { CniError } from "../../src/cni/errors.ts";
import { ConfigError, DecodeError } from "../../src/config/errors.ts";
import { toCniError } from "../../src/ipam/error_map.ts";

const octet = fc.integer({ min: 0, max: 255 }).map(String);
const hexGroup = fc.integer({ min: 0, max: 0xffff }).map((n) => n.toString(16));

export const ipv4 = fc.tuple(octet, octet, octet, octet).map((p) => p.join("."));
export const ipv6 = fc.oneof(
  fc.array(hexGroup, { minLength: 8, maxLength: 8 }).map((g) => g.join(":")),
  fc.tuple(fc.array(hexGroup, { maxLength: 3 }), fc.array(hexGroup, { maxLength: 3 }))
    .map(([a, b]) => `${a.join(":")}::${b.join(":")}`),
  ipv4.map((v4) => `::ffff:${v4}`),
);

/** Text of many kinds: ASCII, any code unit (lone surrogates too), whole Unicode, control characters. */
export const anyText = fc.oneof(
  fc.string(),
  fc.string({ unit: "binary" }),
  fc.string({ unit: "grapheme" }),
  fc.string({ unit: fc.constantFrom("\0", "\x01", "\x1f", "\x7f", "\x85", "\u00a0", "\u2028", "\ufeff", "\ud800", " ", "\t", "\n") }),
);

/** Small edits that turn valid text into nearly valid text. */
function corrupt(s: string): fc.Arbitrary<string> {
  return fc.oneof(
    fc.constant(s),
    fc.constant(` ${s} `),
    fc.constant(`${s}\n`),
    fc.constant(`${s}${s}`),
    fc.constant(s.slice(0, -1)),
    fc.constant(s.toUpperCase()),
    fc.constant(s.replace(/\./g, ":")),
    fc.constant(s.replace(/\d/, "")),
    fc.tuple(fc.nat(s.length), anyText).map(([i, t]) => s.slice(0, i) + t + s.slice(i)),
    fc.tuple(fc.nat(s.length), fc.nat(4)).map(([i, n]) => s.slice(0, i) + s.slice(i + n)),
  );
}

export const nearIP = fc.oneof(ipv4, ipv6, ipv4.chain(corrupt), ipv6.chain(corrupt),
  fc.constantFrom("10.0.0.256", "1.2.3", "01.2.3.4", "::1::", ":::", "1:2:3:4:5:6:7:8:9", "::ffff:1.2.3.400", "0x0a000001", ""));

export const nearCIDR = fc.oneof(
  fc.tuple(ipv4, fc.integer({ min: 0, max: 40 })).map(([ip, n]) => `${ip}/${n}`),
  fc.tuple(ipv6, fc.integer({ min: 0, max: 140 })).map(([ip, n]) => `${ip}/${n}`),
  fc.constantFrom("10.10.0.0/24", "10.10.0.0/16", "fd00::/64", "10.10.0.0/30", "0.0.0.0/0", "::/0", "10.10.0.0/024",
    "10.10.0.0/-1", "10.10.0.0/", "/24", "10.10.0.0/24/24", "fd00::/1280"),
).chain((c) => fc.oneof(fc.constant(c), corrupt(c)));

/** An "ADDR", "A-B" or "CIDR" entry (exclude, reservations), often malformed. */
export const nearInterval = fc.oneof(
  nearIP,
  nearCIDR,
  fc.tuple(nearIP, nearIP, fc.constantFrom("-", " - ", "--", "-\n")).map(([a, b, d]) => `${a}${d}${b}`),
);

/** A JSON value nested `depth` deep: JSON.parse takes it, JSON.stringify and String() of it overflow the stack. */
export function deeplyNested(depth: number, kind: "array" | "object"): unknown {
  let v: unknown = 1;
  for (let i = 0; i < depth; i++) v = kind === "array" ? [v] : { a: v };
  return v;
}

/**
 * Stands for a deeply nested value inside generated input until `expand` builds it: fast-check itself
 * recurses over the values it generates, shrinks and prints.
 */
export class Deep {
  readonly #kind: "array" | "object";
  constructor(kind: "array" | "object") {
    this.#kind = kind;
  }
  build(): unknown {
    // One value per kind, built once: the code under test only reads it.
    return (BUILT[this.#kind] ??= deeplyNested(DEEP, this.#kind));
  }
  toJSON(): string {
    return `<${this.#kind} nested ${DEEP} deep>`;
  }
  [fc.toStringMethod](): string {
    return `new Deep(${JSON.stringify(this.#kind)})`;
  }
}

const DEEP = 50_000;
const BUILT: Partial<Record<"array" | "object", unknown>> = {};

/** `v` with every Deep replaced by the value it stands for. */
export function expand(v: unknown): unknown {
  if (v instanceof Deep) return v.build();
  if (Array.isArray(v)) return v.map(expand);
  if (typeof v === "object" && v !== null) {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) Object.defineProperty(out, k, { value: expand(x), enumerable: true, writable: true, configurable: true });
    return out;
  }
  return v;
}

export const deepValue = fc.constantFrom("array" as const, "object" as const).map((k) => new Deep(k));

/** Any JSON value, now and then a huge string or a deeply nested one. */
export const anyJsonValue: fc.Arbitrary<unknown> = fc.oneof(
  { arbitrary: fc.jsonValue({ maxDepth: 3 }), weight: 8 },
  { arbitrary: fc.constantFrom(null, true, 0, -1, 1e308, "", [], {}), weight: 4 },
  { arbitrary: anyText, weight: 4 },
  { arbitrary: fc.constant("x".repeat(100_000)), weight: 1 },
  { arbitrary: deepValue, weight: 1 },
);

/** A value for a field: usually of the field's own kind, sometimes anything. */
export function fieldValue<T>(own: fc.Arbitrary<T>): fc.Arbitrary<unknown> {
  return fc.oneof({ arbitrary: own, weight: 3 }, { arbitrary: anyJsonValue, weight: 1 });
}

const rangeObject = fc.record({
  subnet: fieldValue(nearCIDR),
  rangeStart: fieldValue(nearIP),
  rangeEnd: fieldValue(nearIP),
  gateway: fieldValue(nearIP),
}, { requiredKeys: [] });

const rangeSets = fieldValue(fc.array(fieldValue(fc.array(fieldValue(rangeObject), { maxLength: 3 })), { maxLength: 3 }));

export const VALID_VERSIONS = ["0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"];

const ipamSection = fc.record({
  type: fieldValue(fc.constantFrom("kube-ipam", "host-local")),
  subnet: fieldValue(nearCIDR),
  rangeStart: fieldValue(nearIP),
  rangeEnd: fieldValue(nearIP),
  gateway: fieldValue(nearIP),
  ranges: rangeSets,
  routes: fieldValue(fc.array(fieldValue(fc.record({ dst: fieldValue(nearCIDR), gw: fieldValue(nearIP), mtu: anyJsonValue },
    { requiredKeys: [] })), { maxLength: 3 })),
  exclude: fieldValue(fc.array(fieldValue(nearInterval), { maxLength: 4 })),
  etcdConfig: fieldValue(fc.record({
    etcdURL: fieldValue(fc.constantFrom("http://127.0.0.1:2379", "https://a:1,https://b:2", "ftp://x", "http://u:p@h:1/?q", "", ",")),
    etcdCertFile: fieldValue(fc.constantFrom("/c.pem", "")),
    etcdKeyFile: fieldValue(fc.constantFrom("/k.pem", "")),
    etcdTrustedCAFileFile: fieldValue(fc.constant("/ca.pem")),
    etcdPrefix: fieldValue(fc.constantFrom("/kube-ipam", "x", "///", "")),
  }, { requiredKeys: [] })),
  dataDir: fieldValue(fc.constantFrom("/var/lib/cni/kube-ipam", "", "relative")),
  logFile: fieldValue(fc.constantFrom("/var/log/kube-ipam.log", "")),
  logLevel: fieldValue(fc.constantFrom("debug", "info", "WARN", "error", "trace")),
  nodeName: fieldValue(fc.constantFrom("node-a", "")),
  agentSocket: fieldValue(fc.constantFrom("", "/run/kube-ipam/agent.sock", "relative.sock")),
  kubeConfig: fieldValue(fc.constantFrom("/etc/kubernetes/kubeconfig", "")),
  resolvConf: fieldValue(fc.constantFrom("/etc/resolv.conf", "")),
  timeoutSeconds: fieldValue(fc.constantFrom(0, 1, 0.5, 15, 120, 121, -1, 1e308)),
}, { requiredKeys: [] });

/** A network config with the real field names, each present or not, valid or not. */
export const structuredConfig = fc.record({
  cniVersion: fieldValue(fc.constantFrom(...VALID_VERSIONS, "", "0.5.0", "1.0", "2.0.0")),
  name: fieldValue(fc.oneof(fc.constantFrom("net", "a.b-c_d", "-bad", "has space", "", "n".repeat(255), "n".repeat(256)), fc.string())),
  type: fieldValue(fc.constantFrom("bridge", "macvlan")),
  ipam: fieldValue(ipamSection),
  runtimeConfig: fieldValue(fc.record({
    ips: fieldValue(fc.array(fieldValue(fc.oneof(nearIP, nearCIDR)), { maxLength: 3 })),
    ipRanges: rangeSets,
  }, { requiredKeys: [] })),
  args: fieldValue(fc.record({ cni: fieldValue(fc.record({ ips: fieldValue(fc.array(fieldValue(nearIP), { maxLength: 3 })) },
    { requiredKeys: [] })) }, { requiredKeys: [] })),
  "cni.dev/valid-attachments": fieldValue(fc.array(fieldValue(fc.record({
    containerID: fieldValue(fc.constantFrom("c1", "")),
    ifname: fieldValue(fc.constantFrom("eth0", "")),
  }, { requiredKeys: [] })), { maxLength: 3 })),
  prevResult: anyJsonValue,
}, { requiredKeys: [] });

/** Valid configs to mutate: flat, ranges, dual-stack, exclude, routes, etcd. */
export const VALID_CONFIGS: readonly Record<string, unknown>[] = [
  { cniVersion: "1.0.0", name: "net", type: "bridge", ipam: { type: "kube-ipam", subnet: "10.10.0.0/24" } },
  {
    cniVersion: "1.1.0", name: "dual", type: "macvlan", master: "eth1",
    ipam: {
      type: "kube-ipam",
      ranges: [[{ subnet: "10.10.0.0/24", rangeStart: "10.10.0.10", rangeEnd: "10.10.0.20", gateway: "10.10.0.1" }],
        [{ subnet: "fd00:10::/64" }]],
      routes: [{ dst: "0.0.0.0/0", gw: "10.10.0.1" }, { dst: "::/0" }],
      exclude: ["10.10.0.15", "10.10.0.16-10.10.0.17", "fd00:10::/120"],
      logLevel: "debug",
      nodeName: "node-a",
    },
  },
  {
    cniVersion: "0.3.1", name: "etcdnet", type: "macvlan",
    ipam: {
      type: "kube-ipam", subnet: "10.188.0.0/16", rangeStart: "10.188.0.10", rangeEnd: "10.188.0.200", gateway: "10.188.0.1",
      etcdConfig: { etcdURL: "https://10.0.0.1:2379,https://10.0.0.2:2379", etcdCertFile: "/c", etcdKeyFile: "/k",
        etcdTrustedCAFileFile: "/ca" },
    },
    runtimeConfig: { ips: ["10.188.0.50/16"], ipRanges: [[{ subnet: "10.200.0.0/24" }]] },
    args: { cni: { ips: ["10.188.0.51"] } },
    "cni.dev/valid-attachments": [{ containerID: "c1", ifname: "eth0" }],
  },
];

type Json = unknown;

/** Every path to a value inside `v` (the root is []). */
function paths(v: Json, at: (string | number)[] = []): (string | number)[][] {
  const out = [at];
  if (Array.isArray(v)) v.forEach((x, i) => out.push(...paths(x, [...at, i])));
  else if (typeof v === "object" && v !== null) for (const [k, x] of Object.entries(v)) out.push(...paths(x, [...at, k]));
  return out;
}

type Edit = { pick: number; op: "delete" | "replace" | "wrap" | "stringify" | "empty"; value: unknown };

const edit: fc.Arbitrary<Edit> = fc.record({
  pick: fc.nat(),
  op: fc.constantFrom("delete" as const, "replace" as const, "wrap" as const, "stringify" as const, "empty" as const),
  value: anyJsonValue,
});

function applyEdit(root: Json, e: Edit): Json {
  const all = paths(root);
  const path = all[e.pick % all.length]!;
  if (path.length === 0) return e.op === "wrap" ? [root] : e.op === "replace" ? e.value : root;
  const parent = path.slice(0, -1).reduce((o: any, k) => o[k], root) as any;
  const key = path[path.length - 1]!;
  const old = parent[key];
  switch (e.op) {
    case "delete":
      if (Array.isArray(parent)) parent.splice(key as number, 1);
      else delete parent[key];
      break;
    case "replace":
      parent[key] = e.value;
      break;
    case "wrap":
      parent[key] = [old];
      break;
    case "stringify":
      parent[key] = typeof old === "string" ? Number(old) : JSON.stringify(old);
      break;
    case "empty":
      parent[key] = Array.isArray(old) ? [] : typeof old === "object" && old !== null ? {} : "";
      break;
  }
  return root;
}

/** A valid config with a few random edits: deleted keys, replaced values, wrapped and stringified values. */
export const mutatedConfig = fc.tuple(fc.constantFrom(...VALID_CONFIGS), fc.array(edit, { minLength: 1, maxLength: 4 }))
  .map(([conf, edits]) => edits.reduce((c, e) => applyEdit(c, e), structuredClone(conf) as Json));

/** Text on stdin: JSON of the above, arbitrary JSON, JSON cut short, and anything at all. */
export const configText = fc.oneof(
  structuredConfig.map((c) => JSON.stringify(c)),
  mutatedConfig.map((c) => JSON.stringify(c)),
  fc.json({ maxDepth: 4 }),
  mutatedConfig.chain((c) => {
    const s = JSON.stringify(c) ?? "";
    return fc.nat(s.length).map((n) => s.slice(0, n));
  }),
  anyText,
  fc.constantFrom("[".repeat(300_000), "[".repeat(300_000) + "]".repeat(300_000), '{"a":'.repeat(100_000) + "1" + "}".repeat(100_000),
    "\ufeff{}", "{}\0", "null", '"string"', "1e999", '{"__proto__": {"ipam": {}}}', '{"constructor": 1}'),
);

const KEYS = ["IgnoreUnknown", "K8S_POD_NAMESPACE", "K8S_POD_NAME", "K8S_POD_INFRA_CONTAINER_ID", "K8S_POD_UID", "IP", "FOO", ""];
const argValue = fc.oneof(fc.constantFrom("1", "true", "0", "default", "web-0", ""), nearIP,
  fc.array(fc.oneof(nearIP, nearCIDR), { maxLength: 3 }).map((l) => l.join(",")), anyText);
const pair = fc.oneof(
  fc.tuple(fc.constantFrom(...KEYS), fc.constantFrom("=", "==", ""), argValue).map(([k, eq, v]) => `${k}${eq}${v}`),
  anyText,
);
/** CNI_ARGS: "K=V;K=V" with the known keys, unknown ones and garbage. */
export const cniArgs = fc.oneof(fc.array(pair, { maxLength: 6 }).map((ps) => ps.join(";")), anyText);

export const nearIfName = fc.oneof(
  fc.constantFrom("eth0", "net1", "a23456789012345", "a234567890123456", ".", "..", "...", "eth0.100", "ééééééé1", "éééééééé",
    "constructor", "__proto__", "toString", "e\x01", "e\x7f", "e\u0085", "e\u00a0", "e\u2028", "e\ufeff", "eth/0", "eth:0", "e 0"),
  fc.string({ maxLength: 20 }),
  anyText,
);
export const nearContainerID = fc.oneof(
  fc.stringMatching(/^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,20}$/),
  fc.integer({ min: 60, max: 300 }).map((n) => "f".repeat(n)),
  fc.constant("a".repeat(5000)),
  anyText,
);

/** Codes the runtime may get for a bad network config, CNI_ARGS or annotation: version, environment, decode, config. */
export const BAD_INPUT_CODES = [1, 4, 6, 7];

/**
 * Runs `fn`, which must either return or throw one of the project's typed errors that maps to a code
 * of `codes`, with a message and no stack trace. Returns what fn returned, or undefined when it threw.
 */
export function loadsOrRefuses<T>(fn: () => T, codes: readonly number[] = BAD_INPUT_CODES): T | undefined {
  try {
    return fn();
  } catch (e) {
    if (!(e instanceof CniError || e instanceof ConfigError || e instanceof DecodeError)) {
      throw new Error(`Threw ${(e as Error)?.name}: ${String((e as Error)?.message).slice(0, 300)}`, { cause: e });
    }
    const err = toCniError(e);
    expect(codes).toContain(err.code);
    expect(typeof err.message).toBe("string");
    expect(err.message.length).toBeGreaterThan(0);
    expect(`${err.message}\n${err.details}`).not.toMatch(/\n\s+at /);
    return undefined;
  }
}
