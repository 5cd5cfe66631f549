// One allocation range inside a subnet, with host-local's defaults and validation.
import { compareIP, formatIP, type IP, ipAdd, ipEquals, tryParseIP } from "./address.ts";
import { formatPrefix, lastAddress, type Prefix, prefixContains, tryParseCIDR } from "./prefix.ts";
import { quote } from "../lib/quote.ts";

export interface RawRange {
  subnet?: unknown;
  rangeStart?: unknown;
  rangeEnd?: unknown;
  gateway?: unknown;
}

export interface Range {
  readonly subnet: Prefix;
  readonly rangeStart: IP;
  readonly rangeEnd: IP;
  readonly gateway: IP;
}

/** Thrown for a range that cannot be used; `field` names the offending key. */
export class InvalidRangeError extends Error {
  override name = "InvalidRangeError";
  constructor(readonly field: keyof RawRange, message: string) {
    super(message);
  }
}

function optionalIP(raw: RawRange, field: "rangeStart" | "rangeEnd" | "gateway", subnet: Prefix): IP | undefined {
  const v = raw[field];
  if (v === undefined || v === null || v === "") return undefined;
  const ip = typeof v === "string" ? tryParseIP(v) : undefined;
  if (!ip) throw new InvalidRangeError(field, `${field} ${quote(v)} is not an IP address`);
  if (!prefixContains(subnet, ip)) {
    throw new InvalidRangeError(field, `${field} "${formatIP(ip)}" is not in subnet "${formatPrefix(subnet)}"`);
  }
  return ip;
}

/** Validates a raw range and fills host-local's defaults; throws InvalidRangeError. */
export function canonicalizeRange(raw: RawRange): Range {
  if (raw.subnet === undefined || raw.subnet === "") {
    throw new InvalidRangeError("subnet", "subnet is required");
  }
  const cidr = typeof raw.subnet === "string" ? tryParseCIDR(raw.subnet) : undefined;
  if (!cidr) throw new InvalidRangeError("subnet", `subnet ${quote(raw.subnet)} is not a CIDR`);
  const subnet = cidr.prefix;
  const bits = subnet.network.family === 4 ? 32 : 128;
  // Network, gateway and (IPv4) broadcast leave nothing to hand out below /30 (/126).
  if (subnet.length > bits - 2) {
    throw new InvalidRangeError("subnet", `subnet "${raw.subnet}" is too small to allocate from (at most /${bits - 2})`);
  }
  if (!ipEquals(cidr.ip, subnet.network)) {
    throw new InvalidRangeError(
      "subnet",
      `subnet "${raw.subnet}" has host bits set: the network address for /${subnet.length} is "${formatIP(subnet.network)}"`,
    );
  }
  const first = ipAdd(subnet.network, 1n);
  const last = lastAddress(subnet);
  const rangeStart = optionalIP(raw, "rangeStart", subnet) ?? first;
  const rangeEnd = optionalIP(raw, "rangeEnd", subnet) ?? (subnet.network.family === 4 ? ipAdd(last, -1n) : last);
  if (compareIP(rangeStart, rangeEnd) > 0) {
    throw new InvalidRangeError(
      "rangeEnd",
      `rangeEnd "${formatIP(rangeEnd)}" is before rangeStart "${formatIP(rangeStart)}"`,
    );
  }
  const gateway = optionalIP(raw, "gateway", subnet) ?? first;
  return { subnet, rangeStart, rangeEnd, gateway };
}

/** True when `ip` lies between rangeStart and rangeEnd (whether or not it may be handed out). */
export function rangeContains(r: Range, ip: IP): boolean {
  return ip.family === r.rangeStart.family && ip.value >= r.rangeStart.value && ip.value <= r.rangeEnd.value;
}

/** Addresses of the subnet that are never handed out: network, gateway, IPv4 broadcast. */
export function isInfrastructure(r: Range, ip: IP): boolean {
  if (ip.value === r.subnet.network.value || ipEquals(ip, r.gateway)) return true;
  return ip.family === 4 && ip.value === lastAddress(r.subnet).value;
}

export function formatRange(r: Range): string {
  return `${formatIP(r.rangeStart)}-${formatIP(r.rangeEnd)}`;
}
