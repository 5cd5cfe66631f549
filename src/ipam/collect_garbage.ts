// Cluster-wide garbage collection: release addresses whose pod is gone from the Kubernetes API.
// Never on partial knowledge: the pod and StatefulSet lists must be complete or nothing happens.
// Never on a wrong picture of the cluster either: a run that would release more than `maxRelease` of a
// network's pod addresses is refused as a whole (release_guard.ts). Each release is a compare-and-delete
// on the record as judged, so an allocation that changed since (re-used, taken over, re-claimed) is
// left alone; with `leader`, each write also holds only while that leader still leads.
import type { Pod, StatefulSet } from "../k8s/types.ts";
import { encodeRecord } from "../store/record.ts";
import { type Allocation, type Leadership, NotLeaderError, type Store } from "../store/store.ts";
import { clusterView, judge } from "./leaks.ts";
import { type Refusal, type ReleaseLimit, withinLimit } from "./release_guard.ts";
import { failpoint } from "../lib/failpoint.ts";

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
  /** Refuse the whole run when it would release more than this in any network; no limit when absent. */
  readonly maxRelease?: ReleaseLimit;
  /** Write only while this leader leads (the store compares its fence in every write); NotLeaderError otherwise. */
  readonly leader?: Leadership;
  /** Called after each release or parking is made (not in a dry run), even if the run fails later. */
  readonly onDone?: (leak: Leak) => void;
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
  /** The networks whose releases exceeded `maxRelease`; when any, nothing was done anywhere. */
  readonly refusals: Refusal[];
  /** What the run would have done had it not been refused (empty unless `refusals` is not). */
  readonly withheld: Leak[];
}

/** A stable identity of one record, for "seen twice" bookkeeping. */
export function leakKey(leak: Leak): string {
  return `${leak.action}\u0000${encodeRecord(leak.allocation)}`;
}

interface NetworkPlan {
  readonly network: string;
  /** Confirmed leaks: what this run acts on. */
  readonly leaks: Leak[];
  /** Allocations that belong to pods. */
  podAllocations: number;
}

export async function collectGarbage(store: Store, cluster: ClusterLister, opts: GcOptions): Promise<GcReport> {
  const now = opts.now ?? (() => new Date());
  const listedAt = now();
  const [pods, statefulSets] = await Promise.all([cluster.listPods(), cluster.listStatefulSets()]);
  const view = clusterView(listedAt, pods, statefulSets);
  const report: GcReport = { done: [], deferred: [], changed: [], refusals: [], withheld: [] };

  // Judge every network first, then act: the guard needs the whole run's counts before any write.
  const plans: NetworkPlan[] = [];
  for (const network of await store.networks()) {
    const plan: NetworkPlan = { network, leaks: [], podAllocations: 0 };
    for (const allocation of await store.network(network).list()) {
      if (allocation.podNamespace && allocation.podName) plan.podAllocations++;
      const verdict = judge(allocation, view, opts.graceMs);
      if (verdict.action === "keep") continue;
      const leak: Leak = { allocation, action: verdict.action, reason: verdict.reason };
      if (opts.confirm && !opts.confirm(leak)) report.deferred.push(leak);
      else plan.leaks.push(leak);
    }
    plans.push(plan);
  }

  // The guard is decided per network (each has its own size), but one refusal stops the whole run: every
  // network was judged against the same pod list, and a list that looks wrong for one network is no more
  // trustworthy for the others. All-or-nothing also leaves the store as it was, so the operator who checks
  // the cluster and reruns with a higher --max-release acts on the complete, unchanged picture.
  if (opts.maxRelease) {
    for (const p of plans) {
      const release = p.leaks.filter((l) => l.action === "release").length;
      if (!withinLimit(release, p.podAllocations, opts.maxRelease)) {
        report.refusals.push({ network: p.network, release, total: p.podAllocations });
      }
    }
    if (report.refusals.length > 0) {
      report.withheld.push(...plans.flatMap((p) => p.leaks));
      return report;
    }
  }

  for (const p of plans) {
    const net = store.network(p.network);
    for (const leak of p.leaks) {
      if (opts.dryRun) {
        report.done.push(leak);
        continue;
      }
      const conditions = opts.leader ? { leader: opts.leader } : undefined;
      if (opts.leader && !opts.leader.isLeader) throw new NotLeaderError("Leadership lost during garbage collection");
      const ok = leak.action === "park"
        ? await net.replace(leak.allocation, { ...leak.allocation, parkedAt: now().toISOString() }, conditions)
        : await net.releaseIfUnchanged(leak.allocation, conditions);
      (ok ? report.done : report.changed).push(leak);
      if (ok) {
        failpoint("gc.released");
        opts.onDone?.(leak);
      }
    }
    // What killed plugins left behind that holds no address (the embedded store's unlinked owner entries).
    if (!opts.dryRun) await net.sweep();
  }
  return report;
}
