// CIDR prefixes: "10.0.0.0/24", plus the netmask forms annotations use ("255.255.0.0" or "16").
import { BITS, type Family, formatIP, type IP, tryParseIP } from "./address.ts";

export interface Prefix {
  /** The network address (host bits zero). */
  readonly network: IP;
  readonly length: number;
}

export interface ParsedCIDR {
  /** The address as written, host bits included ("10.0.0.5/24" -> 10.0.0.5). */
  readonly ip: IP;
  readonly prefix: Prefix;
}

function hostMask(family: Family, length: number): bigint {
  return (1n << BigInt(BITS[family] - length)) - 1n;
}

export function tryParseCIDR(s: string): ParsedCIDR | undefined {
  if (typeof s !== "string") return undefined;
  const slash = s.indexOf("/");
  if (slash < 0) return undefined;
  const ip = tryParseIP(s.slice(0, slash));
  const lenText = s.slice(slash + 1);
  if (!ip || !/^\d{1,3}$/.test(lenText)) return undefined;
  const length = Number(lenText);
  if (length > BITS[ip.family]) return undefined;
  const network = { family: ip.family, value: ip.value & ~hostMask(ip.family, length) };
  return { ip, prefix: { network, length } };
}

/** Parses "ADDR/LEN"; throws TypeError when malformed. */
export function parseCIDR(s: string): ParsedCIDR {
  const c = tryParseCIDR(s);
  if (!c) throw new TypeError(`Cannot parse CIDR "${s}"`);
  return c;
}

export function formatPrefix(p: Prefix): string {
  return `${formatIP(p.network)}/${p.length}`;
}

export function prefixContains(p: Prefix, ip: IP): boolean {
  return ip.family === p.network.family &&
    (ip.value & ~hostMask(ip.family, p.length)) === p.network.value;
}

/** The highest address of the prefix (the IPv4 broadcast address). */
export function lastAddress(p: Prefix): IP {
  return { family: p.network.family, value: p.network.value | hostMask(p.network.family, p.length) };
}

export function prefixSize(p: Prefix): bigint {
  return 1n << BigInt(BITS[p.network.family] - p.length);
}

/**
 * Parses a netmask as a prefix length: "24", "255.255.255.0", or "ffff:ffff::" for IPv6.
 * Returns undefined for a non-contiguous or malformed mask.
 */
export function tryParseNetmask(s: string, family: Family): number | undefined {
  const t = s.trim();
  if (/^\d{1,3}$/.test(t)) {
    const n = Number(t);
    return n <= BITS[family] ? n : undefined;
  }
  const mask = tryParseIP(t);
  if (!mask || mask.family !== family) return undefined;
  const bits = BITS[family];
  for (let len = 0; len <= bits; len++) {
    if (mask.value === ((1n << BigInt(bits)) - 1n) - hostMask(family, len)) return len;
  }
  return undefined;
}
