// The dashboard's search: a pod name, namespace, node, container ID, address or CIDR (or A-B range),
// across every network, narrowed by kind, node and network. Pure.
import { compareIP, formatIP, type IP, tryParseIP } from "../ip/address.ts";
import { tryParseInterval } from "../ip/interval_set.ts";
import { type HeldJSON, heldJSON } from "../ipam/allocation_json.ts";
import type { Allocation } from "../store/store.ts";
import { kindOf } from "./network_view.ts";

export const KINDS = ["dynamic", "requested", "fixed", "sticky", "parked", "migrated"] as const;

export interface SearchQuery {
  readonly q: string;
  /** One of KINDS ("sticky": live sticky addresses, "parked": parked ones). */
  readonly kind?: string;
  readonly node?: string;
  readonly network?: string;
  readonly limit: number;
}

export interface SearchHit {
  readonly network: string;
  readonly ip: string;
  /** The holder's kind, "parked", or, for an address nobody holds, what the map calls it ("free", "reserved", ...). */
  readonly state: string;
  readonly held: HeldJSON | null;
}

export interface SearchResult {
  readonly hits: SearchHit[];
  /** More matched than `limit`. */
  readonly truncated: boolean;
}

function matcher(q: string): (a: Allocation, ip: IP) => boolean {
  const text = q.trim().toLowerCase();
  if (text === "") return () => true;
  const ip = tryParseIP(text);
  if (ip) return (_, held) => compareIP(held, ip) === 0;
  const interval = text.includes("/") || /^[0-9a-f.:]+\s*-\s*[0-9a-f.:]+$/.test(text) ? tryParseInterval(text) : undefined;
  if (interval) return (_, held) => held.family === interval.family && held.value >= interval.start && held.value <= interval.end;
  return (a) => {
    const pod = a.podName ? `${a.podNamespace ?? ""}/${a.podName}`.toLowerCase() : "";
    return pod.includes(text) || a.node.toLowerCase().includes(text) || a.containerID.toLowerCase().startsWith(text) ||
      a.ip.startsWith(text);
  };
}

/** Allocations of `networks` that match, ordered by network and address. */
export function search(networks: ReadonlyMap<string, readonly Allocation[]>, query: SearchQuery): SearchResult {
  const matches = matcher(query.q);
  const hits: { hit: SearchHit; ip: IP }[] = [];
  let truncated = false;
  for (const name of [...networks.keys()].sort()) {
    if (query.network && name !== query.network) continue;
    for (const a of networks.get(name)!) {
      const ip = tryParseIP(a.ip);
      if (!ip || !matches(a, ip)) continue;
      if (query.kind && kindOf(a) !== query.kind) continue;
      if (query.node && a.node !== query.node) continue;
      hits.push({ hit: { network: name, ip: formatIP(ip), state: kindOf(a), held: heldJSON(a) }, ip });
    }
  }
  hits.sort((x, y) => (x.hit.network < y.hit.network ? -1 : x.hit.network > y.hit.network ? 1 : compareIP(x.ip, y.ip)));
  if (hits.length > query.limit) {
    truncated = true;
    hits.length = query.limit;
  }
  return { hits: hits.map((h) => h.hit), truncated };
}

/** The address `q` names, if it is one: the search also says what an address nobody holds is. */
export function searchedAddress(q: string): IP | undefined {
  return tryParseIP(q.trim());
}
