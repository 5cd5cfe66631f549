// An allocation as the JSON outputs show it (`kube-ipam ls -o json`, `show -o json`, the dashboard's API):
// the holder's fields an operator reads, in a fixed order, absent ones as null.
import type { Allocation } from "../store/store.ts";

export interface AllocationJSON {
  ip: string;
  network: string;
  containerID: string;
  ifName: string;
  podNamespace: string | null;
  podName: string | null;
  node: string;
  kind: string;
  allocatedAt: string;
}

/** AllocationJSON plus when a sticky address was parked (kept for its pod name without a container). */
export interface HeldJSON extends AllocationJSON {
  parkedAt: string | null;
}

export function allocationJSON(a: Allocation): AllocationJSON {
  return {
    ip: a.ip,
    network: a.network,
    containerID: a.containerID,
    ifName: a.ifName,
    podNamespace: a.podNamespace ?? null,
    podName: a.podName ?? null,
    node: a.node,
    kind: a.kind,
    allocatedAt: a.allocatedAt,
  };
}

export function heldJSON(a: Allocation): HeldJSON {
  return { ...allocationJSON(a), parkedAt: a.parkedAt ?? null };
}
