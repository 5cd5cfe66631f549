// The network config as the plugin uses it: parsed, defaulted and validated once, here.
// Everything after this works with these immutable values and never sees raw JSON.
import type { Route } from "../cni/result.ts";
import { checkConfigVersion, type CniVersion } from "../cni/version.ts";
import { type IP, tryParseIP } from "../ip/address.ts";
import { IntervalSet, type Interval, tryParseInterval } from "../ip/interval_set.ts";
import { tryParseCIDR } from "../ip/prefix.ts";
import { canonicalizeRange, InvalidRangeError, type Range } from "../ip/range.ts";
import { formatRangeSet, type RangeSet, rangeSetProblem, rangeSetsOverlap } from "../ip/range_set.ts";
import { ConfigError } from "./errors.ts";
import { type LogLevel, parseLogLevel } from "./log_level.ts";
import { DEFAULT_KUBECONFIG, parseStoreConfig, type StoreConfig } from "./store_config.ts";

export { DEFAULT_KUBECONFIG };
import { isRecord } from "../lib/is_record.ts";
import { DEFAULT_AGENT_SOCKET, DEFAULT_TIMEOUT_SECONDS } from "../agent/protocol.ts";
import { quote } from "../lib/quote.ts";

export const DEFAULT_LOG_FILE = "/var/log/kube-ipam.log";

export interface Attachment {
  readonly containerID: string;
  readonly ifName: string;
}

export interface IpamConfig {
  readonly network: string;
  readonly cniVersion: CniVersion;
  readonly rangeSets: readonly RangeSet[];
  readonly routes: readonly Route[];
  readonly resolvConf?: string;
  readonly exclude: IntervalSet;
  readonly store: StoreConfig;
  /** As configured; undefined means "the default path, if that file exists". */
  readonly kubeConfig?: string;
  readonly logFile: string;
  readonly logLevel: LogLevel;
  readonly nodeName: string;
  /** The budget of one CNI invocation, store and API calls and the agent included (lib/deadline.ts). */
  readonly timeoutSeconds: number;
  /** The node agent's socket; "" when forwarding is off (see src/forwarder/). */
  readonly agentSocket: string;
  /** Addresses asked for through args.cni.ips, runtimeConfig.ips and CNI_ARGS IP=. */
  readonly requestedIPs: readonly IP[];
  readonly prevResult?: unknown;
  /** GC's cni.dev/valid-attachments; undefined for other verbs. */
  readonly validAttachments?: readonly Attachment[];
}

export interface LoadOptions {
  /** CNI_ARGS IP= values. */
  readonly argsIPs?: readonly string[];
  /** KUBE_IPAM_NODE_NAME. */
  readonly envNodeName?: string;
  /** The kernel's hostname, asked for only when neither ipam.nodeName nor KUBE_IPAM_NODE_NAME names the node. */
  readonly hostname: () => string;
}

type Obj = Record<string, unknown>;

const NETWORK_NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;
// The spec sets no length; the embedded store makes the name a directory, and a file name holds at most
// 255 bytes (NAME_MAX). The etcd store takes the same names.
const MAX_NETWORK_NAME_BYTES = 255;

function optionalString(obj: Obj, key: string, field: string): string | undefined {
  const v = obj[key];
  if (v === undefined || v === null || v === "") return undefined;
  if (typeof v !== "string") throw new ConfigError(field, `expected a string, got ${quote(v)}`);
  return v;
}

function optionalArray(obj: Obj, key: string, field: string): unknown[] {
  const v = obj[key];
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw new ConfigError(field, `expected an array, got ${quote(v)}`);
  return v;
}

function parseRange(raw: unknown, field: string): Range {
  if (!isRecord(raw)) throw new ConfigError(field, `expected a range object {"subnet": ...}, got ${quote(raw)}`);
  try {
    return canonicalizeRange(raw);
  } catch (e) {
    if (e instanceof InvalidRangeError) throw new ConfigError(`${field}.${e.field}`, e.message);
    throw e;
  }
}

function parseRangeSets(raw: unknown[], field: string): RangeSet[] {
  return raw.map((set, i) => {
    if (!Array.isArray(set)) {
      throw new ConfigError(`${field}[${i}]`, `expected an array of ranges (a range set), got ${quote(set)}`);
    }
    const ranges = set.map((r, j) => parseRange(r, `${field}[${i}][${j}]`));
    const problem = rangeSetProblem(ranges);
    if (problem) throw new ConfigError(`${field}[${i}]`, problem);
    return ranges;
  });
}

function collectRangeSets(ipam: Obj, runtime: Obj): RangeSet[] {
  const sets: RangeSet[] = [];
  // As in host-local: runtime ipRanges first, then the flat single range, then `ranges`.
  sets.push(...parseRangeSets(optionalArray(runtime, "ipRanges", "runtimeConfig.ipRanges"), "runtimeConfig.ipRanges"));
  if (ipam.subnet !== undefined) sets.push([parseRange(ipam, "ipam")]);
  else if (ipam.rangeStart !== undefined || ipam.rangeEnd !== undefined) {
    throw new ConfigError("ipam.subnet", "rangeStart/rangeEnd need a subnet");
  }
  sets.push(...parseRangeSets(optionalArray(ipam, "ranges", "ipam.ranges"), "ipam.ranges"));
  if (sets.length === 0) {
    throw new ConfigError("ipam", 'no IP ranges: set "subnet" or "ranges"');
  }
  for (let i = 0; i < sets.length; i++) {
    for (let j = 0; j < i; j++) {
      if (rangeSetsOverlap(sets[i]!, sets[j]!)) {
        throw new ConfigError("ipam.ranges",
          `range set ${i} (${formatRangeSet(sets[i]!)}) overlaps range set ${j} (${formatRangeSet(sets[j]!)})`);
      }
    }
  }
  return sets;
}

function parseRoutes(ipam: Obj): Route[] {
  return optionalArray(ipam, "routes", "ipam.routes").map((r, i) => {
    const field = `ipam.routes[${i}]`;
    if (!isRecord(r)) throw new ConfigError(field, `expected {"dst": CIDR, "gw"?: IP}, got ${quote(r)}`);
    const dst = typeof r.dst === "string" ? tryParseCIDR(r.dst) : undefined;
    if (r.dst === undefined) throw new ConfigError(`${field}.dst`, "is missing: every route needs a destination CIDR");
    if (!dst) throw new ConfigError(`${field}.dst`, `${quote(r.dst)} is not a CIDR`);
    const gw = optionalString(r, "gw", `${field}.gw`);
    if (gw !== undefined) {
      const ip = tryParseIP(gw);
      if (!ip) throw new ConfigError(`${field}.gw`, `"${gw}" is not an IP address`);
      if (ip.family !== dst.ip.family) throw new ConfigError(`${field}.gw`, `"${gw}" is not of the family of dst "${r.dst}"`);
    }
    const { dst: _d, gw: _g, ...extra } = r;
    // CNI 1.1.0 route attributes (mtu, advmss, priority, table, scope) are numbers; anything else nested
    // would be copied into every result unchecked.
    for (const [k, v] of Object.entries(extra)) {
      if (typeof v === "object" && v !== null) {
        throw new ConfigError(`${field}.${k}`, `expected a number (a CNI 1.1.0 route attribute such as "mtu"), got ${quote(v)}`);
      }
    }
    return { dst: r.dst as string, ...(gw ? { gw } : {}), ...(Object.keys(extra).length ? { extra } : {}) };
  });
}

function parseExclude(ipam: Obj): IntervalSet {
  const intervals: Interval[] = optionalArray(ipam, "exclude", "ipam.exclude").map((e, i) => {
    const interval = typeof e === "string" ? tryParseInterval(e) : undefined;
    if (!interval) {
      throw new ConfigError(`ipam.exclude[${i}]`,
        `${quote(e)} is not an address, an "A-B" range of one family, or a CIDR`);
    }
    return interval;
  });
  return new IntervalSet(intervals);
}

function parseIPList(values: readonly unknown[], field: string): IP[] {
  return values.map((v, i) => {
    // runtimeConfig.ips carries "10.1.2.3/24"; args.cni.ips and CNI_ARGS plain addresses.
    const text = typeof v === "string" ? v.split("/")[0]! : undefined;
    const ip = text !== undefined ? tryParseIP(text.trim()) : undefined;
    if (!ip) throw new ConfigError(`${field}[${i}]`, `${quote(v)} is not an IP address`);
    return ip;
  });
}

function parseValidAttachments(conf: Obj): Attachment[] | undefined {
  const raw = conf["cni.dev/valid-attachments"];
  if (raw === undefined) return undefined;
  // libcni sends a Go nil slice, JSON null, when no attachment of the network is valid any more.
  if (raw === null) return [];
  if (!Array.isArray(raw)) throw new ConfigError("cni.dev/valid-attachments", "expected an array");
  return raw.map((a, i) => {
    if (!isRecord(a) || typeof a.containerID !== "string" || typeof a.ifname !== "string") {
      throw new ConfigError(`cni.dev/valid-attachments[${i}]`, `expected {"containerID", "ifname"}, got ${quote(a)}`);
    }
    return { containerID: a.containerID, ifName: a.ifname };
  });
}

/** Builds the IpamConfig from a decoded network config; throws ConfigError naming the field. */
export function loadIpamConfig(conf: unknown, opts: LoadOptions): IpamConfig {
  if (!isRecord(conf)) throw new ConfigError("network config", "expected a JSON object");
  const cniVersion = checkConfigVersion(conf.cniVersion);
  const network = conf.name;
  if (typeof network !== "string" || network === "") throw new ConfigError("name", "the network name is missing");
  if (!NETWORK_NAME.test(network)) {
    throw new ConfigError("name", `${quote(network)} may hold only letters, digits, "_", "." and "-", starting with a letter or digit`);
  }
  if (network.length > MAX_NETWORK_NAME_BYTES) {
    throw new ConfigError("name", `${quote(network)} is too long: ${network.length} bytes, at most ${MAX_NETWORK_NAME_BYTES}`);
  }
  const ipam = conf.ipam;
  if (!isRecord(ipam)) throw new ConfigError("ipam", 'the "ipam" section is missing');
  const runtime = isRecord(conf.runtimeConfig) ? conf.runtimeConfig : {};
  const args = isRecord(conf.args) && isRecord(conf.args.cni) ? conf.args.cni : {};

  const requestedIPs = [
    ...parseIPList(opts.argsIPs ?? [], "CNI_ARGS IP"),
    ...parseIPList(optionalArray(args, "ips", "args.cni.ips"), "args.cni.ips"),
    ...parseIPList(optionalArray(runtime, "ips", "runtimeConfig.ips"), "runtimeConfig.ips"),
  ];
  const nodeName = optionalString(ipam, "nodeName", "ipam.nodeName") ?? (opts.envNodeName || opts.hostname());

  return {
    network,
    cniVersion,
    rangeSets: collectRangeSets(ipam, runtime),
    routes: parseRoutes(ipam),
    resolvConf: optionalString(ipam, "resolvConf", "ipam.resolvConf"),
    exclude: parseExclude(ipam),
    store: parseStoreConfig(ipam),
    kubeConfig: optionalString(ipam, "kubeConfig", "ipam.kubeConfig"),
    logFile: optionalString(ipam, "logFile", "ipam.logFile") ?? DEFAULT_LOG_FILE,
    logLevel: parseLogLevel(optionalString(ipam, "logLevel", "ipam.logLevel")),
    nodeName,
    agentSocket: parseAgentSocket(ipam),
    timeoutSeconds: parseTimeoutSeconds(ipam),
    requestedIPs: dedupe(requestedIPs),
    prevResult: conf.prevResult,
    validAttachments: parseValidAttachments(conf),
  };
}

// kubelet gives a whole sandbox start 4 minutes; one IPAM call should never come near that.
const MAX_TIMEOUT_SECONDS = 120;

function parseTimeoutSeconds(ipam: Obj): number {
  const v = ipam.timeoutSeconds;
  if (v === undefined || v === null) return DEFAULT_TIMEOUT_SECONDS;
  if (typeof v !== "number" || !Number.isFinite(v) || v <= 0 || v > MAX_TIMEOUT_SECONDS) {
    throw new ConfigError("ipam.timeoutSeconds", `expected a number of seconds above 0 and at most ${MAX_TIMEOUT_SECONDS}, got ${quote(v)}`);
  }
  return v;
}

function parseAgentSocket(ipam: Obj): string {
  const v = ipam.agentSocket;
  if (v === undefined) return DEFAULT_AGENT_SOCKET;
  if (typeof v !== "string") throw new ConfigError("ipam.agentSocket", `expected a path or "", got ${quote(v)}`);
  if (v !== "" && !v.startsWith("/")) {
    throw new ConfigError("ipam.agentSocket", `"${v}" is not an absolute path ("" turns forwarding to the node agent off)`);
  }
  return v;
}

function dedupe(ips: IP[]): IP[] {
  const seen = new Set<string>();
  return ips.filter((ip) => {
    const k = `${ip.family}:${ip.value}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}
