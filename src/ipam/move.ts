// Moving a network's allocations from one store to another (`kube-ipam migrate --from etcd --to kubernetes`
// and back). Each record is copied by the target's own claim, a compare-and-create: an address someone holds
// in the target is never overwritten, and a second run finds everything present. The source keeps its
// records (a way back), and is frozen first: a reservation covering the network's ranges stops it from
// handing out new addresses, so that nothing is given out in the source after it was copied, while nodes
// whose config still names the source get "no free address" (code 100) and the kubelet retries them until
// their config names the target. A target frozen by an earlier move the other way (moving back) holds only
// stale copies of this network: they give way to the source's records, the rest of them are released, and
// the target's freeze is lifted at the end. docs/kubernetes-store.md has the procedure.
import type { IpamConfig } from "../config/ipam_config.ts";
import { formatIP, tryParseIP } from "../ip/address.ts";
import { rangeHolding } from "../ip/range_set.ts";
import { identical } from "../store/record.ts";
import { holderOf } from "./migrate.ts";
import { type Allocation, sameOwner, type Store } from "../store/store.ts";

export interface MoveEntry {
  readonly ip: string;
  readonly containerID: string;
  readonly pod?: string;
  /** moved now; present: the target holds this very allocation already (an earlier run); conflict: another holds it there; unplaced: not an address. */
  readonly outcome: "moved" | "present" | "conflict" | "unplaced";
  readonly detail?: string;
}

export interface MoveReport {
  readonly network: string;
  /** The reservation that freezes the network in the source, when one was written or found. */
  readonly freeze?: string;
  readonly reservations: { readonly name: string; readonly outcome: "moved" | "present" }[];
  readonly entries: MoveEntry[];
  /** Moving back into a store an earlier move froze: its stale records not in the source, released. */
  readonly staleReleased: number;
}

export interface MoveOptions {
  readonly dryRun: boolean;
  /** Freeze the source before copying (the default); false copies while the source keeps allocating. */
  readonly freeze: boolean;
  /** After freezing: let ADDs that began before it end (they read the reservations before it existed). */
  readonly settle: () => Promise<void>;
  readonly now: Date;
}

/** The name of the reservation that freezes `network` in a source store. */
export function freezeName(network: string): string {
  return `kube-ipam-moved-${network}`.slice(0, 250);
}


export async function moveNetwork(from: Store, to: Store, config: IpamConfig, opts: MoveOptions): Promise<MoveReport> {
  const network = config.network;
  const freeze = freezeName(network);
  // Reservations are the operator's: they go along (all of them: they are store-wide), except freezes. They
  // go before the freeze: no plugin writes them, and a target that refuses them (an identity that may not
  // write reservations, as deploy/'s ServiceAccount) then fails the move before the source stops handing out
  // addresses, instead of leaving the network frozen with nothing copied.
  const targetReservations = new Map((await to.reservations()).map((r) => [r.name, r]));
  const reservations: MoveReport["reservations"] = [];
  for (const r of await from.reservations()) {
    if (r.name.startsWith("kube-ipam-moved-")) continue;
    const there = targetReservations.get(r.name);
    if (there && there.entries.join() === r.entries.join()) {
      reservations.push({ name: r.name, outcome: "present" });
      continue;
    }
    if (!opts.dryRun) await to.putReservation(r);
    reservations.push({ name: r.name, outcome: "moved" });
  }

  if (opts.freeze && !opts.dryRun) {
    const entries = config.rangeSets.flat().map((r) => `${formatIP(r.rangeStart)}-${formatIP(r.rangeEnd)}`);
    const existing = (await from.reservations()).find((r) => r.name === freeze);
    if (!existing || existing.entries.join() !== entries.join()) {
      await from.putReservation({ name: freeze, entries, createdAt: opts.now.toISOString() });
      await opts.settle();
    }
  }

  const source = from.network(network);
  const target = to.network(network);
  const targetFrozen = (await to.reservations()).some((r) => r.name === freeze);
  const records = await source.list();
  let staleReleased = 0;
  if (targetFrozen && !opts.dryRun) {
    const kept = new Set(records.map((r) => r.ip));
    for (const stale of await target.list()) {
      if (!kept.has(stale.ip) && await target.releaseIfUnchanged(stale)) staleReleased++;
    }
  }
  const entries: MoveEntry[] = [];
  for (const record of records) {
    const base = { ip: record.ip, containerID: record.containerID, ...(record.podName && { pod: `${record.podNamespace}/${record.podName}` }) };
    const ip = tryParseIP(record.ip);
    if (!ip) {
      entries.push({ ...base, outcome: "unplaced", detail: "not an IP address" });
      continue;
    }
    const outside = config.rangeSets.every((set) => rangeHolding(set, ip) === undefined) ? "outside the configured ranges" : undefined;
    if (opts.dryRun) {
      const held = await target.get(ip);
      entries.push(!held ? { ...base, outcome: "moved", ...(outside && { detail: outside }) }
        : identical(held, record) || sameOwner(held, record) ? { ...base, outcome: "present" }
        : { ...base, outcome: "conflict", detail: holderOf(held, "held there") });
      continue;
    }
    const r = await target.claim(ip, record);
    const same = (held: Allocation) => identical(held, record) || (sameOwner(held, record) && !!held.parkedAt === !!record.parkedAt);
    if (!r.claimed && r.holder && !same(r.holder) && targetFrozen && await target.replace(r.holder, record)) {
      entries.push({ ...base, outcome: "moved", detail: "replaced the stale copy of an earlier move" });
    } else if (r.claimed) entries.push({ ...base, outcome: "moved", ...(outside && { detail: outside }) });
    else if (r.holder && same(r.holder)) {
      entries.push({ ...base, outcome: "present" });
    } else entries.push({ ...base, outcome: "conflict", detail: r.holder ? holderOf(r.holder, "held there") : "taken meanwhile" });
  }
  // The target serves the network from now on.
  if (targetFrozen && !opts.dryRun) await to.deleteReservation(freeze);
  return { network, ...(opts.freeze && { freeze }), reservations, entries, staleReleased };
}
