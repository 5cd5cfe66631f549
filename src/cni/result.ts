// The IPAM result and its shape in each CNI version: ip4/ip6 objects up to 0.2.0, `ips` with a
// `version` field for 0.3.x/0.4.0, `ips` without it from 1.0.0 on.
import { type Family, formatIP, type IP } from "../ip/address.ts";
import { compareVersions, type CniVersion } from "./version.ts";

export interface IPConfig {
  readonly ip: IP;
  readonly prefixLength: number;
  readonly gateway?: IP;
}

export interface Route {
  readonly dst: string;
  readonly gw?: string;
  /** CNI 1.1.0 route attributes, passed through as configured. */
  readonly extra?: Readonly<Record<string, unknown>>;
}

export interface Dns {
  readonly nameservers?: readonly string[];
  readonly domain?: string;
  readonly search?: readonly string[];
  readonly options?: readonly string[];
}

export interface IpamResult {
  readonly ips: readonly IPConfig[];
  readonly routes: readonly Route[];
  readonly dns: Dns;
}

type Json = Record<string, unknown>;

function dnsJSON(dns: Dns): Json | undefined {
  const out: Json = {};
  if (dns.nameservers?.length) out.nameservers = [...dns.nameservers];
  if (dns.domain) out.domain = dns.domain;
  if (dns.search?.length) out.search = [...dns.search];
  if (dns.options?.length) out.options = [...dns.options];
  return Object.keys(out).length > 0 ? out : undefined;
}

function routeJSON(r: Route, version: CniVersion): Json {
  const out: Json = { dst: r.dst };
  if (r.gw) out.gw = r.gw;
  if (r.extra && compareVersions(version, "1.1.0") >= 0) Object.assign(out, r.extra);
  return out;
}

function address(c: IPConfig): string {
  return `${formatIP(c.ip)}/${c.prefixLength}`;
}

function routeFamily(r: Route): Family {
  return r.dst.includes(":") ? 6 : 4;
}

function legacyJSON(result: IpamResult, version: CniVersion): Json {
  const out: Json = { cniVersion: version };
  for (const family of [4, 6] as const) {
    const c = result.ips.find((x) => x.ip.family === family);
    if (!c) continue;
    const entry: Json = { ip: address(c) };
    if (c.gateway) entry.gateway = formatIP(c.gateway);
    const routes = result.routes.filter((r) => routeFamily(r) === family);
    if (routes.length > 0) entry.routes = routes.map((r) => routeJSON(r, version));
    out[`ip${family}`] = entry;
  }
  const dns = dnsJSON(result.dns);
  if (dns) out.dns = dns;
  return out;
}

/** The result as the runtime expects it for `version`. */
export function resultToJSON(result: IpamResult, version: CniVersion): Json {
  if (compareVersions(version, "0.3.0") < 0) return legacyJSON(result, version);
  const withFamily = compareVersions(version, "1.0.0") < 0;
  const out: Json = {
    cniVersion: version,
    ips: result.ips.map((c) => {
      const entry: Json = withFamily ? { version: String(c.ip.family), address: address(c) } : { address: address(c) };
      if (c.gateway) entry.gateway = formatIP(c.gateway);
      return entry;
    }),
  };
  if (result.routes.length > 0) out.routes = result.routes.map((r) => routeJSON(r, version));
  const dns = dnsJSON(result.dns);
  if (dns) out.dns = dns;
  return out;
}

/** Addresses ("10.0.0.2/24" without the length) found in a prevResult of any version. */
export function prevResultAddresses(prev: unknown): string[] {
  if (!prev || typeof prev !== "object") return [];
  const p = prev as Json;
  const cidrs: unknown[] = [];
  if (Array.isArray(p.ips)) for (const x of p.ips) cidrs.push((x as Json)?.address);
  for (const k of ["ip4", "ip6"]) if (p[k] && typeof p[k] === "object") cidrs.push((p[k] as Json).ip);
  return cidrs.filter((c): c is string => typeof c === "string").map((c) => c.split("/")[0]!);
}
