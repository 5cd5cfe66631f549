// Claiming an address someone may already hold (fixed, requested, sticky). A holder whose pod is gone
// from the Kubernetes API (node lost, DEL never called) is replaced by compare-and-swap on its record;
// a live holder is refused, by name, and the runtime retries until its DEL releases the address.
import { formatIP, type IP } from "../ip/address.ts";
import { type Allocation, type NetworkStore, sameOwner } from "../store/store.ts";
import { AddressInUseError } from "./errors.ts";
import { failpoint } from "../lib/failpoint.ts";

/** Answers whether the pod recorded in an allocation still exists (the same pod: same UID). */
export interface HolderLiveness {
  isGone(holder: Allocation): Promise<boolean>;
}

/** Without the Kubernetes API nobody can be judged gone: every holder counts as live. */
export const ASSUME_LIVE: HolderLiveness = { isGone: () => Promise.resolve(false) };

function samePodName(a: Allocation, b: Allocation): boolean {
  return a.podName !== undefined && a.podName === b.podName && a.podNamespace === b.podNamespace;
}

/** May `record` replace `holder`? */
export async function mayTakeOver(holder: Allocation, record: Allocation, liveness: HolderLiveness): Promise<boolean> {
  if (holder.parkedAt) return samePodName(holder, record); // kept for that pod name, and nobody else
  if (holder.podName === undefined) return false; // not a pod we can look up
  if (samePodName(holder, record)) {
    // The same pod with a new sandbox (re-created after a crash), or a new pod of that name: pod
    // names are unique among live pods, so a different UID means the old pod is gone.
    if (holder.podUID && record.podUID && holder.podUID !== record.podUID) return true;
    return holder.ifName === record.ifName;
  }
  return liveness.isGone(holder);
}

/**
 * Claims `ip` for `record`, taking it over from a holder that is gone. Returns the record now held
 * (the owner's own earlier claim when it already had it).
 */
export async function claimOrTakeOver(store: NetworkStore, ip: IP, record: Allocation, liveness: HolderLiveness): Promise<Allocation> {
  let holder: Allocation | undefined;
  for (let attempt = 0; attempt < 5; attempt++) {
    const outcome = await store.claim(ip, record);
    if (outcome.claimed) return record;
    holder = outcome.holder;
    if (!holder) continue; // released between our claim and the read: try again
    if (sameOwner(holder, record) && !holder.parkedAt) return holder;
    if (!(await mayTakeOver(holder, record, liveness))) break;
    if (await store.replace(holder, record)) {
      failpoint("takeover.replaced");
      return record;
    }
    // The record changed meanwhile (released, or taken by someone else): look again.
  }
  throw new AddressInUseError(formatIP(ip), record.network, holder);
}
