// Addresses in the page: {family: 4 | 6, value: BigInt}, parsed and formatted as the server does
// (RFC 5952 for IPv6), so that blocks of a /64 are computed exactly.

export const BITS = { 4: 32, 6: 128 };

function parse4(s) {
  const parts = s.split(".");
  if (parts.length !== 4) return null;
  let v = 0n;
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p) || Number(p) > 255) return null;
    v = (v << 8n) | BigInt(p);
  }
  return v;
}

function parse6(s) {
  if (!/^[0-9a-fA-F:.]+$/.test(s)) return null;
  if (s.includes(".")) {
    const cut = s.lastIndexOf(":");
    const v4 = parse4(s.slice(cut + 1));
    if (v4 === null) return null;
    s = `${s.slice(0, cut + 1)}${(v4 >> 16n).toString(16)}:${(v4 & 0xffffn).toString(16)}`;
  }
  const halves = s.split("::");
  if (halves.length > 2) return null;
  const groups = (t) => (t === "" ? [] : t.split(":"));
  let all;
  if (halves.length === 2) {
    const head = groups(halves[0]), tail = groups(halves[1]);
    const missing = 8 - head.length - tail.length;
    if (missing < 1) return null;
    all = [...head, ...Array(missing).fill("0"), ...tail];
  } else {
    all = groups(s);
  }
  if (all.length !== 8 || !all.every((g) => /^[0-9a-fA-F]{1,4}$/.test(g))) return null;
  return all.reduce((v, g) => (v << 16n) | BigInt(parseInt(g, 16)), 0n);
}

/** {family, value} or null. */
export function parseIP(text) {
  const s = String(text).trim();
  if (s.includes(":")) {
    const v = parse6(s);
    return v === null ? null : { family: 6, value: v };
  }
  const v = parse4(s);
  return v === null ? null : { family: 4, value: v };
}

export function formatIP(family, value) {
  if (family === 4) return [24n, 16n, 8n, 0n].map((s) => String((value >> s) & 0xffn)).join(".");
  if (value >> 32n === 0xffffn) return `::ffff:${formatIP(4, value & 0xffffffffn)}`;
  const g = [];
  for (let i = 7; i >= 0; i--) g.push(Number((value >> BigInt(i * 16)) & 0xffffn));
  let best = -1, bestLen = 1;
  for (let i = 0; i < 8;) {
    if (g[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) { best = i; bestLen = j - i; }
    i = j;
  }
  const hex = g.map((x) => x.toString(16));
  if (best < 0) return hex.join(":");
  return `${hex.slice(0, best).join(":")}::${hex.slice(best + bestLen).join(":")}`;
}

/** "10.0.4.0/22", "a-b" or one address: {family, from, to} (BigInt), or null. */
export function parseWindow(text) {
  const s = String(text).trim();
  const slash = s.indexOf("/");
  if (slash >= 0) {
    const ip = parseIP(s.slice(0, slash));
    const len = Number(s.slice(slash + 1));
    if (!ip || !/^\d{1,3}$/.test(s.slice(slash + 1)) || len > BITS[ip.family]) return null;
    const host = BigInt(BITS[ip.family] - len);
    const from = (ip.value >> host) << host;
    return { family: ip.family, from, to: from + (1n << host) - 1n };
  }
  const dash = s.indexOf("-");
  if (dash > 0) {
    const a = parseIP(s.slice(0, dash)), b = parseIP(s.slice(dash + 1));
    if (!a || !b || a.family !== b.family || b.value < a.value) return null;
    return { family: a.family, from: a.value, to: b.value };
  }
  const ip = parseIP(s);
  return ip && { family: ip.family, from: ip.value, to: ip.value };
}

/** "10.0.4.0/22" when [from, to] is exactly a prefix, else "from-to". */
export function formatWindow(family, from, to) {
  const size = to - from + 1n;
  if (size > 0n && (size & (size - 1n)) === 0n && from % size === 0n) {
    let bits = 0;
    while (1n << BigInt(bits) < size) bits++;
    return `${formatIP(family, from)}/${BITS[family] - bits}`;
  }
  return `${formatIP(family, from)}-${formatIP(family, to)}`;
}
