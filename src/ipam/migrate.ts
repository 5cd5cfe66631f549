// Importing kube-ipam v0.2's allocations (`kube-ipam migrate --from v0.2`): every address its layout holds
// becomes a claim of ours (kind "migrated": the container ID, the range set, nothing else). Each import is a
// compare-and-create, so it can run while plugins work, and running it again changes nothing.
import type { IpamConfig } from "../config/ipam_config.ts";
import { tryParseIP } from "../ip/address.ts";
import { rangeHolding } from "../ip/range_set.ts";
import type { Allocation, NetworkStore } from "../store/store.ts";

export interface MigrationEntry {
  readonly ip: string;
  readonly containerID: string;
  /** Where it went: imported now, held by that container already (an earlier run), held by another, or nowhere to put it. */
  readonly outcome: "imported" | "present" | "conflict" | "unplaced";
  /** For a conflict, who holds it in our layout; for unplaced, why. */
  readonly detail?: string;
}

/** Imports `holders` (from the v0.2 layout) into `net`; `dryRun` only says what would happen. */
export async function migrateV02(net: NetworkStore, config: IpamConfig, holders: readonly { ip: string; containerID: string }[],
  opts: { dryRun: boolean; now: Date }): Promise<MigrationEntry[]> {
  const out: MigrationEntry[] = [];
  for (const h of holders) {
    const ip = tryParseIP(h.ip);
    const rangeSet = ip ? config.rangeSets.findIndex((set) => rangeHolding(set, ip) !== undefined) : -1;
    if (!ip || rangeSet < 0) {
      out.push({ ...h, outcome: "unplaced", detail: ip ? `in no range of network "${config.network}"` : "not an IP address" });
      continue;
    }
    const held = await net.get(ip);
    if (held) {
      out.push(held.containerID === h.containerID ? { ...h, outcome: "present" } : { ...h, outcome: "conflict", detail: holderOf(held) });
      continue;
    }
    if (opts.dryRun) {
      out.push({ ...h, outcome: "imported" });
      continue;
    }
    const record: Allocation = {
      ip: h.ip, network: config.network, containerID: h.containerID, ifName: "", node: "", kind: "migrated", rangeSet,
      allocatedAt: opts.now.toISOString(),
    };
    const r = await net.claim(ip, record);
    if (r.claimed) out.push({ ...h, outcome: "imported" });
    else if (r.holder?.containerID === h.containerID) out.push({ ...h, outcome: "present" });
    else out.push({ ...h, outcome: "conflict", detail: r.holder ? holderOf(r.holder) : "taken meanwhile" });
  }
  return out;
}

/** Who holds an address an import or a move could not place (`held` says where: "held", "held there"). */
export function holderOf(a: Allocation, held = "held"): string {
  const pod = a.podName ? ` (pod ${a.podNamespace}/${a.podName})` : "";
  return `${held} by container ${a.containerID}${pod}, ${a.kind}`;
}
