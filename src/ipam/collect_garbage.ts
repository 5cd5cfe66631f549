// Cluster-wide garbage collection: release addresses whose pod is gone from the Kubernetes API.
// Never on partial knowledge: the pod and StatefulSet lists must be complete or nothing happens.
// Each release is a compare-and-delete on the record as judged, so an allocation that changed
// since (re-used, taken over, re-claimed) is left alone.
import type { Pod, StatefulSet } from "../k8s/types.ts";
import { encodeRecord } from "../store/record.ts";
import type { Allocation, Store } from "../store/store.ts";
import { clusterView, judge } from "./leaks.ts";

export interface ClusterLister {
  /** Every pod; throws rather than return a partial list. */
  listPods(): Promise<Pod[]>;
  listStatefulSets(): Promise<StatefulSet[]>;
}

export interface GcOptions {
  readonly graceMs: number;
  readonly dryRun?: boolean;
  /**
   * Called for each leak before it is acted on; false defers it. The controller uses it to require
   * two observations of the same record.
   */
  readonly confirm?: (leak: Leak) => boolean;
  readonly now?: () => Date;
}

export interface Leak {
  readonly allocation: Allocation;
  readonly action: "release" | "park";
  readonly reason: string;
}

export interface GcReport {
  /** Acted on (or, in a dry run, would be). */
  readonly done: Leak[];
  /** Seen as leaks but deferred by `confirm`. */
  readonly deferred: Leak[];
  /** Changed between the judgement and the compare-and-delete: left alone. */
  readonly changed: Leak[];
}

/** A stable identity of one record, for "seen twice" bookkeeping. */
export function leakKey(leak: Leak): string {
  return `${leak.action}\u0000${encodeRecord(leak.allocation)}`;
}

export async function collectGarbage(store: Store, cluster: ClusterLister, opts: GcOptions): Promise<GcReport> {
  const now = opts.now ?? (() => new Date());
  const listedAt = now();
  const [pods, statefulSets] = await Promise.all([cluster.listPods(), cluster.listStatefulSets()]);
  const view = clusterView(listedAt, pods, statefulSets);
  const report: GcReport = { done: [], deferred: [], changed: [] };
  for (const network of await store.networks()) {
    const net = store.network(network);
    for (const allocation of await net.list()) {
      const verdict = judge(allocation, view, opts.graceMs);
      if (verdict.action === "keep") continue;
      const leak: Leak = { allocation, action: verdict.action, reason: verdict.reason };
      if (opts.confirm && !opts.confirm(leak)) {
        report.deferred.push(leak);
        continue;
      }
      if (opts.dryRun) {
        report.done.push(leak);
        continue;
      }
      const ok = leak.action === "park"
        ? await net.replace(allocation, { ...allocation, parkedAt: now().toISOString() })
        : await net.releaseIfUnchanged(allocation);
      (ok ? report.done : report.changed).push(leak);
    }
  }
  return report;
}
