// IP addresses as (family, bigint): arithmetic and ordering stay exact for IPv6,
// and the fixed-width hex form sorts in address order (used for store keys).

export type Family = 4 | 6;

export interface IP {
  readonly family: Family;
  readonly value: bigint;
}

export const BITS: Record<Family, number> = { 4: 32, 6: 128 };

function parseIPv4(s: string): bigint | undefined {
  const parts = s.split(".");
  if (parts.length !== 4) return undefined;
  let v = 0n;
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p)) return undefined;
    const n = Number(p);
    if (n > 255 || (p.length > 1 && p[0] === "0")) return undefined;
    v = (v << 8n) | BigInt(n);
  }
  return v;
}

function parseGroups(s: string): number[] | undefined {
  if (s === "") return [];
  const groups: number[] = [];
  for (const g of s.split(":")) {
    if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return undefined;
    groups.push(parseInt(g, 16));
  }
  return groups;
}

function parseIPv6(s: string): bigint | undefined {
  if (!/^[0-9a-fA-F:.]+$/.test(s)) return undefined;
  // An embedded IPv4 tail ("::ffff:1.2.3.4") is rewritten as its two hex groups.
  if (s.includes(".")) {
    const cut = s.lastIndexOf(":");
    const v4 = parseIPv4(s.slice(cut + 1));
    if (v4 === undefined) return undefined;
    s = `${s.slice(0, cut + 1)}${(v4 >> 16n).toString(16)}:${(v4 & 0xffffn).toString(16)}`;
  }
  const halves = s.split("::");
  if (halves.length > 2) return undefined;
  let groups: number[];
  if (halves.length === 2) {
    const head = parseGroups(halves[0]!);
    const rest = parseGroups(halves[1]!);
    if (!head || !rest) return undefined;
    const missing = 8 - head.length - rest.length;
    if (missing < 1) return undefined;
    groups = [...head, ...new Array<number>(missing).fill(0), ...rest];
  } else {
    const all = parseGroups(s);
    if (!all || all.length !== 8) return undefined;
    groups = all;
  }
  let v = 0n;
  for (const g of groups) v = (v << 16n) | BigInt(g);
  return v;
}

/** Parses an IPv4 or IPv6 address; returns undefined when `s` is not one. */
export function tryParseIP(s: string): IP | undefined {
  if (typeof s !== "string") return undefined;
  if (s.includes(":")) {
    const value = parseIPv6(s);
    return value === undefined ? undefined : { family: 6, value };
  }
  const value = parseIPv4(s);
  return value === undefined ? undefined : { family: 4, value };
}

/** Parses an IPv4 or IPv6 address, e.g. `parseIP("10.0.0.1")`. */
export function parseIP(s: string): IP {
  const ip = tryParseIP(s);
  if (!ip) throw new TypeError(`Cannot parse IP address "${s}"`);
  return ip;
}

function formatIPv6(v: bigint): string {
  // RFC 5952 section 5: IPv4-mapped addresses keep their dotted tail.
  if (v >> 32n === 0xffffn) return `::ffff:${formatIP({ family: 4, value: v & 0xffffffffn })}`;
  const groups: number[] = [];
  for (let i = 7; i >= 0; i--) groups.push(Number((v >> BigInt(i * 16)) & 0xffffn));
  // RFC 5952: compress the longest run (>= 2) of zero groups, the first one on ties.
  let bestStart = -1, bestLen = 1;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) { bestStart = i; bestLen = j - i; }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(":");
  return `${hex.slice(0, bestStart).join(":")}::${hex.slice(bestStart + bestLen).join(":")}`;
}

/** Canonical text: dotted quad, or RFC 5952 IPv6. */
export function formatIP(ip: IP): string {
  if (ip.family === 4) {
    const v = ip.value;
    return [24n, 16n, 8n, 0n].map((s) => String((v >> s) & 0xffn)).join(".");
  }
  return formatIPv6(ip.value);
}

/** Fixed-width lowercase hex (8 or 32 digits): sorts in address order. */
export function ipToHex(ip: IP): string {
  return ip.value.toString(16).padStart(BITS[ip.family] / 4, "0");
}

export function ipFromHex(hex: string): IP | undefined {
  if (!/^[0-9a-f]+$/.test(hex) || (hex.length !== 8 && hex.length !== 32)) return undefined;
  return { family: hex.length === 8 ? 4 : 6, value: BigInt(`0x${hex}`) };
}

export function ipEquals(a: IP, b: IP): boolean {
  return a.family === b.family && a.value === b.value;
}

export function compareIP(a: IP, b: IP): number {
  if (a.family !== b.family) return a.family - b.family;
  return a.value < b.value ? -1 : a.value > b.value ? 1 : 0;
}

export function ipAdd(ip: IP, n: bigint): IP {
  return { family: ip.family, value: ip.value + n };
}

export function familyName(f: Family): "IPv4" | "IPv6" {
  return f === 4 ? "IPv4" : "IPv6";
}
