// `kube-ipam show ADDR --conf FILE [-o json]`: everything the pool knows about one address: who holds
// it and since when, which reservation holds it, and whether the network may hand it out at all.
import type { IpamConfig } from "../config/ipam_config.ts";
import { type IP, tryParseIP } from "../ip/address.ts";
import { holderName, showJSON, showRows } from "../ipam/address_info.ts";
import { reservedAddresses } from "../ipam/reservations.ts";
import type { Allocation } from "../store/store.ts";
import { openStore } from "../store/open.ts";
import { type ParsedFlags, outputFormat, UsageError } from "./flags.ts";
import { loadConfFile } from "./load_conf.ts";

export type { HeldJSON } from "../ipam/allocation_json.ts";
export { holderName, showJSON, type ShowJSON } from "../ipam/address_info.ts";

/** The single ADDR argument of show and release; anything else is a usage error. */
export function addressArgument(flags: ParsedFlags, usage: string): IP {
  const [addr, ...extra] = flags.positional;
  if (!addr || extra.length > 0) throw new UsageError(`Usage: ${usage}`);
  const ip = tryParseIP(addr);
  if (!ip) throw new UsageError(`"${addr}" is not an IPv4 or IPv6 address`);
  return ip;
}

/** One line for messages: the holder and where it runs. */
export function holderSummary(a: Allocation): string {
  const parked = a.parkedAt ? `, parked since ${a.parkedAt}` : "";
  return `${holderName(a)} (container ${a.containerID}, interface ${a.ifName}, node ${a.node}, kind ${a.kind}${parked})`;
}

/** A "Key:  value" block, like `kubectl describe`. */
function renderShow(ip: IP, config: IpamConfig, held: Allocation | undefined, reservedBy: string | undefined, now: Date): string {
  const rows = showRows(ip, config, held, reservedBy, now);
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
