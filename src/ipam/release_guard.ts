// The guard against releasing on a wrong picture of the cluster. A kubeconfig that names another
// cluster, a freshly restored API server or an RBAC change can make the pod list valid and nearly empty:
// every pod then looks gone, and releasing their addresses would hand them to the next pods while the
// old ones still use them. So a run that would release more than a share of a network's pod addresses
// is refused, unless an operator raises the limit on purpose (`--max-release 100%`, `--max-release 500`).

/** `--max-release`: a share of a network's pod allocations, or a number of addresses. */
export type ReleaseLimit = { readonly percent: number } | { readonly count: number };

export const DEFAULT_RELEASE_LIMIT: ReleaseLimit = { percent: 50 };

/** A percentage limit never refuses this many releases or fewer: small networks churn too. */
export const ALWAYS_ALLOWED = 10;

/** One network where a run would release more than the limit allows. */
export interface Refusal {
  readonly network: string;
  /** Addresses the run would release there. */
  readonly release: number;
  /** Allocations there that belong to pods (a pod namespace and name recorded), parked ones included. */
  readonly total: number;
}

/** Whether releasing `release` of `total` pod allocations stays within `limit`. */
export function withinLimit(release: number, total: number, limit: ReleaseLimit): boolean {
  if ("count" in limit) return release <= limit.count;
  return release <= ALWAYS_ALLOWED || release * 100 <= limit.percent * total;
}

export function formatReleaseLimit(limit: ReleaseLimit): string {
  return "count" in limit ? String(limit.count) : `${limit.percent}%`;
}

/** Sentence for logs and errors: `network "n": 45 of 50 pod addresses`. */
export function describeRefusals(refusals: readonly Refusal[]): string {
  return refusals.map((r) => `network "${r.network}": ${r.release} of ${r.total} pod addresses`).join(", ");
}
