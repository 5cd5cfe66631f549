// What a pod's annotations and owners ask of kube-ipam for one interface: fixed addresses (with
// netmask and gateway) and whether its address sticks to its name. Pure: the pod comes in as JSON.
import { ConfigError } from "../config/errors.ts";
import { formatIP, type IP, tryParseIP } from "../ip/address.ts";
import { tryParseCIDR, tryParseNetmask } from "../ip/prefix.ts";
import type { Pod } from "../k8s/types.ts";
import { isRecord } from "../lib/is_record.ts";
import { quote } from "../lib/quote.ts";

export const ANNOTATION = {
  ip: "kube-ipam.ip",
  netmask: "kube-ipam.netmask",
  gateway: "kube-ipam.gateway",
  ips: "kube-ipam.ips",
  sticky: "kube-ipam.sticky",
} as const;

export interface FixedAddress {
  readonly ip: IP;
  /** From kube-ipam.netmask or a "/len" in kube-ipam.ips; default: the subnet's. */
  readonly prefixLength?: number;
  /** From kube-ipam.gateway; default: the range's. */
  readonly gateway?: IP;
  /** The annotation it came from, for messages. */
  readonly source: string;
}

export interface PodPolicy {
  readonly fixed: readonly FixedAddress[];
  readonly sticky: boolean;
  /** The controlling StatefulSet, if any. */
  readonly statefulSet?: { readonly name: string; readonly uid: string };
}

export function controllingStatefulSet(pod: Pod): { name: string; uid: string } | undefined {
  const refs: unknown = pod.metadata.ownerReferences;
  const o = (Array.isArray(refs) ? refs : []).find((r) => isRecord(r) && r.controller === true && r.kind === "StatefulSet");
  return o && { name: String(o.name), uid: String(o.uid) };
}

export function podRef(pod: Pod): string {
  return `${pod.metadata.namespace ?? "default"}/${pod.metadata.name}`;
}

function splitList(v: string): string[] {
  return v.split(",").map((s) => s.trim()).filter((s) => s !== "");
}

/** kube-ipam.netmask / kube-ipam.gateway: one value for every address, or one per address in order. */
function perAddress(values: string[], count: number, name: string, fail: (msg: string) => never): (i: number) => string | undefined {
  if (values.length === 0) return () => undefined;
  if (values.length !== 1 && values.length !== count) {
    fail(`${name} has ${values.length} values for ${count} addresses: give one, or one per address in the same order`);
  }
  return (i) => values.length === 1 ? values[0] : values[i];
}

function fromIpAnnotation(annotations: Annotations, fail: (field: string, msg: string) => never): FixedAddress[] {
  const ips = splitList(annotations[ANNOTATION.ip] ?? "");
  const failOn = (field: string) => (msg: string): never => fail(field, msg);
  const netmask = perAddress(splitList(annotations[ANNOTATION.netmask] ?? ""), ips.length, ANNOTATION.netmask, failOn(ANNOTATION.netmask));
  const gateway = perAddress(splitList(annotations[ANNOTATION.gateway] ?? ""), ips.length, ANNOTATION.gateway, failOn(ANNOTATION.gateway));
  return ips.map((text, i) => {
    const ip = tryParseIP(text);
    if (!ip) fail(ANNOTATION.ip, `${quote(text)} is not an IP address`);
    const mask = netmask(i);
    const prefixLength = mask === undefined ? undefined : tryParseNetmask(mask, ip.family);
    if (mask !== undefined && prefixLength === undefined) {
      fail(ANNOTATION.netmask, `${quote(mask)} is not a netmask or prefix length for ${formatIP(ip)}`);
    }
    const gwText = gateway(i);
    const gw = gwText === undefined ? undefined : tryParseIP(gwText);
    if (gwText !== undefined && (!gw || gw.family !== ip.family)) {
      fail(ANNOTATION.gateway, `${quote(gwText)} is not a gateway address for ${formatIP(ip)}`);
    }
    return { ip, prefixLength, gateway: gw, source: ANNOTATION.ip };
  });
}

function fromIpsAnnotation(text: string, ifName: string, fail: (field: string, msg: string) => never): FixedAddress[] {
  let map: unknown;
  try {
    map = JSON.parse(text);
  } catch {
    fail(ANNOTATION.ips, `is not JSON: expected a map like {"net1": ["10.0.0.5"]}`);
  }
  if (typeof map !== "object" || map === null || Array.isArray(map)) {
    fail(ANNOTATION.ips, `expected a JSON map from interface name to addresses, like {"net1": ["10.0.0.5"]}`);
  }
  // Own keys only: "constructor" or "__proto__" is a valid interface name, and no map lists it by inheritance.
  const entry = Object.hasOwn(map as object, ifName) ? (map as Record<string, unknown>)[ifName] : undefined;
  if (entry === undefined) return [];
  const list = typeof entry === "string" ? splitList(entry) : entry;
  if (!Array.isArray(list) || !list.every((x) => typeof x === "string")) {
    fail(ANNOTATION.ips, `the entry for "${ifName}" must be a list of addresses`);
  }
  return (list as string[]).map((item) => {
    const cidr = item.includes("/") ? tryParseCIDR(item) : undefined;
    const ip = cidr?.ip ?? tryParseIP(item);
    if (!ip) fail(ANNOTATION.ips, `${quote(item)} for "${ifName}" is not an address or address/prefix`);
    return { ip, prefixLength: cidr?.prefix.length, source: `${ANNOTATION.ips}["${ifName}"]` };
  });
}

function isSticky(pod: Pod, annotations: Annotations, fail: (field: string, msg: string) => never): boolean {
  const v = annotations[ANNOTATION.sticky];
  if (v !== undefined) {
    if (v === "true") return true;
    if (v === "false") return false;
    fail(ANNOTATION.sticky, `${quote(v)} is not "true" or "false"`);
  }
  return controllingStatefulSet(pod) !== undefined;
}

type Annotations = Readonly<Partial<Record<(typeof ANNOTATION)[keyof typeof ANNOTATION], string>>>;

/** kube-ipam's annotations of the pod (own keys, strings: the API's map[string]string, checked). */
function ownAnnotations(pod: Pod, fail: (field: string, msg: string) => never): Annotations {
  const all: unknown = pod.metadata.annotations;
  const out: Record<string, string> = {};
  if (!isRecord(all)) return out;
  for (const name of Object.values(ANNOTATION)) {
    if (!Object.hasOwn(all, name)) continue;
    const v = all[name];
    if (typeof v !== "string") fail(name, `expected a string, got ${quote(v)}`);
    out[name] = v;
  }
  return out;
}

/**
 * The policy for `ifName` of `pod`. kube-ipam.ips, when present, decides for every interface (an
 * interface it does not list is dynamic); otherwise kube-ipam.ip applies. Throws ConfigError naming
 * the annotation and the pod.
 */
export function podPolicy(pod: Pod, ifName: string): PodPolicy {
  const ref = podRef(pod);
  const fail = (field: string, msg: string): never => {
    throw new ConfigError(`annotation ${field} of pod "${ref}"`, msg);
  };
  const annotations = ownAnnotations(pod, fail);
  const perInterface = annotations[ANNOTATION.ips];
  const fixed = perInterface !== undefined
    ? fromIpsAnnotation(perInterface, ifName, fail)
    : fromIpAnnotation(annotations, fail);
  const seen = new Set<string>();
  for (const f of fixed) {
    const k = formatIP(f.ip);
    if (seen.has(k)) fail(f.source, `"${k}" is listed twice`);
    seen.add(k);
  }
  return { fixed, sticky: isSticky(pod, annotations, fail), statefulSet: controllingStatefulSet(pod) };
}
