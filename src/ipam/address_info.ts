// Everything the pool knows about one address, as `kube-ipam show` says it and the dashboard shows it:
// the holder and since when, the reservation that lists it, and whether the network may hand it out.
// Pure: the caller reads the record and the reservations.
import { formatIP, type IP, ipEquals } from "../ip/address.ts";
import { formatInterval } from "../ip/interval_set.ts";
import { formatPrefix, lastAddress } from "../ip/prefix.ts";
import { formatRange } from "../ip/range.ts";
import { rangeHolding, rangeWithSubnetOf } from "../ip/range_set.ts";
import { formatAge } from "../lib/age.ts";
import type { Allocation } from "../store/store.ts";
import { type HeldJSON, heldJSON } from "./allocation_json.ts";
import type { UsageConfig } from "./usage.ts";

export interface ShowJSON {
  ip: string;
  network: string;
  held: HeldJSON | null;
  reservedBy: string | null;
  inRange: boolean;
  excluded: boolean;
  infrastructure: boolean;
}

/** "pod prod/web-0" or, for a holder without a pod, "container 0123456789ab". */
export function holderName(a: Allocation): string {
  return a.podName ? `pod ${a.podNamespace ?? "-"}/${a.podName}` : `container ${a.containerID}`;
}

/** Which infrastructure address of its subnet `ip` is, if any: "the gateway of 10.0.0.0/24". */
export function infrastructureRole(config: UsageConfig, ip: IP): string | undefined {
  for (const set of config.rangeSets) {
    const r = rangeWithSubnetOf(set, ip);
    if (!r) continue;
    const subnet = formatPrefix(r.subnet);
    if (ipEquals(ip, r.subnet.network)) return `the network address of ${subnet}`;
    if (ipEquals(ip, r.gateway)) return `the gateway of ${subnet}`;
    if (ip.family === 4 && ipEquals(ip, lastAddress(r.subnet))) return `the broadcast address of ${subnet}`;
  }
  return undefined;
}

/** `kube-ipam show -o json`. */
export function showJSON(ip: IP, config: UsageConfig, held: Allocation | undefined, reservedBy: string | undefined): ShowJSON {
  return {
    ip: formatIP(ip),
    network: config.network,
    held: held ? heldJSON(held) : null,
    reservedBy: reservedBy ?? null,
    inRange: config.rangeSets.some((s) => rangeHolding(s, ip) !== undefined),
    excluded: config.exclude.has(ip),
    infrastructure: infrastructureRole(config, ip) !== undefined,
  };
}

function when(iso: string, now: Date): string {
  return `${iso} (${formatAge(new Date(iso), now)} ago)`;
}

/** The "Key: value" rows of `kube-ipam show`, in order, like `kubectl describe`. */
export function showRows(ip: IP, config: UsageConfig, held: Allocation | undefined, reservedBy: string | undefined, now: Date): [string, string][] {
  const setIndex = config.rangeSets.findIndex((s) => rangeHolding(s, ip) !== undefined);
  const range = setIndex >= 0 ? rangeHolding(config.rangeSets[setIndex]!, ip) : undefined;
  const excluded = config.exclude.find(ip);
  const infra = infrastructureRole(config, ip);
  const reason = infra ? `it is ${infra}`
    : excluded ? `it is excluded by ipam.exclude "${formatInterval(excluded)}"`
    : range ? undefined
    : "it is outside every range of the network";
  const status = held
    ? `held by ${holderName(held)}, ${held.parkedAt ? "parked (sticky: kept for the pod name while no container has it)" : "live"}`
    : reservedBy ? `not held; reserved by "${reservedBy}", so not handed out`
    : reason ? `not held; not handed out dynamically: ${reason}`
    : "free";
  const rows: [string, string][] = [
    ["Address", formatIP(ip)],
    ["Network", config.network],
    ["Status", status],
  ];
  if (held) {
    rows.push(
      ["Pod", held.podName ? `${held.podNamespace ?? "-"}/${held.podName}` : "-"],
      ["Container", held.containerID],
      ["Interface", held.ifName],
      ["Node", held.node],
      ["Kind", held.kind],
      ["Allocated", when(held.allocatedAt, now)],
    );
    if (held.parkedAt) rows.push(["Parked", when(held.parkedAt, now)]);
  }
  rows.push(
    ["Reserved by", reservedBy ?? "-"],
    ["In range", range ? `yes: ${formatRange(range)} (range set ${setIndex})` : "no: outside every range of the network"],
    ["Excluded", excluded ? `yes: ipam.exclude "${formatInterval(excluded)}"` : "no"],
    ["Infrastructure", infra ? `yes: ${infra}` : "no"],
  );
  return rows;
}
