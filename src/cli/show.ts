// `kube-ipam show ADDR --conf FILE [-o json]`: everything the pool knows about one address: who holds
// it and since when, which reservation holds it, and whether the network may hand it out at all.
import type { IpamConfig } from "../config/ipam_config.ts";
import { formatIP, type IP, ipEquals, tryParseIP } from "../ip/address.ts";
import { formatInterval } from "../ip/interval_set.ts";
import { formatPrefix, lastAddress } from "../ip/prefix.ts";
import { formatRange } from "../ip/range.ts";
import { rangeHolding, rangeWithSubnetOf } from "../ip/range_set.ts";
import { reservedAddresses } from "../ipam/reservations.ts";
import type { Allocation } from "../store/store.ts";
import { openStore } from "../store/open.ts";
import { type ParsedFlags, outputFormat, UsageError } from "./flags.ts";
import { loadConfFile } from "./load_conf.ts";
import { type AllocationJSON, allocationJSON } from "./ls.ts";
import { formatAge } from "./table.ts";

export interface HeldJSON extends AllocationJSON {
  parkedAt: string | null;
}

export interface ShowJSON {
  ip: string;
  network: string;
  held: HeldJSON | null;
  reservedBy: string | null;
  inRange: boolean;
  excluded: boolean;
  infrastructure: boolean;
}

/** The single ADDR argument of show and release; anything else is a usage error. */
export function addressArgument(flags: ParsedFlags, usage: string): IP {
  const [addr, ...extra] = flags.positional;
  if (!addr || extra.length > 0) throw new UsageError(`Usage: ${usage}`);
  const ip = tryParseIP(addr);
  if (!ip) throw new UsageError(`"${addr}" is not an IPv4 or IPv6 address`);
  return ip;
}

/** "pod prod/web-0" or, for a holder without a pod, "container 0123456789ab". */
export function holderName(a: Allocation): string {
  return a.podName ? `pod ${a.podNamespace ?? "-"}/${a.podName}` : `container ${a.containerID}`;
}

/** One line for messages: the holder and where it runs. */
export function holderSummary(a: Allocation): string {
  const parked = a.parkedAt ? `, parked since ${a.parkedAt}` : "";
  return `${holderName(a)} (container ${a.containerID}, interface ${a.ifName}, node ${a.node}, kind ${a.kind}${parked})`;
}

/** Which infrastructure address of its subnet `ip` is, if any. */
function infrastructureRole(config: IpamConfig, ip: IP): string | undefined {
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

export function showJSON(ip: IP, config: IpamConfig, held: Allocation | undefined, reservedBy: string | undefined): ShowJSON {
  return {
    ip: formatIP(ip),
    network: config.network,
    held: held ? { ...allocationJSON(held), parkedAt: held.parkedAt ?? null } : null,
    reservedBy: reservedBy ?? null,
    inRange: config.rangeSets.some((s) => rangeHolding(s, ip) !== undefined),
    excluded: config.exclude.has(ip),
    infrastructure: infrastructureRole(config, ip) !== undefined,
  };
}

function when(iso: string, now: Date): string {
  return `${iso} (${formatAge(new Date(iso), now)} ago)`;
}

/** A "Key:  value" block, like `kubectl describe`. */
function renderShow(ip: IP, config: IpamConfig, held: Allocation | undefined, reservedBy: string | undefined, now: Date): string {
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
  const width = Math.max(...rows.map(([k]) => k.length)) + 1;
  return rows.map(([k, v]) => `${`${k}:`.padEnd(width)}  ${v}`).join("\n") + "\n";
}

export const SHOW_USAGE = "kube-ipam show ADDR --conf FILE [-o table|json]";

export async function showCommand(flags: ParsedFlags, now = new Date()): Promise<string> {
  const ip = addressArgument(flags, SHOW_USAGE);
  const format = outputFormat(flags);
  const config = loadConfFile(flags.values.get("conf"));
  const store = await openStore(config.store);
  try {
    const [held, reservations] = await Promise.all([store.network(config.network).get(ip), store.reservations()]);
    const reservedBy = reservedAddresses(reservations).nameOf(ip);
    if (format === "json") return `${JSON.stringify(showJSON(ip, config, held, reservedBy), null, 2)}\n`;
    return renderShow(ip, config, held, reservedBy, now);
  } finally {
    await store.close();
  }
}
