// Which allocations have leaked, judged against one complete view of the cluster. Pure: the caller
// lists pods and StatefulSets (all of them, or fails) and applies the verdicts.
import type { Pod, StatefulSet } from "../k8s/types.ts";
import type { Allocation } from "../store/store.ts";
import { podPolicy } from "./pod_policy.ts";

export interface ClusterView {
  /** When the lists were requested: anything allocated after this cannot be judged by them. */
  readonly listedAt: Date;
  readonly pods: ReadonlyMap<string, Pod>;
  readonly statefulSets: ReadonlyMap<string, StatefulSet>;
}

export type Verdict =
  | { readonly action: "keep" }
  | { readonly action: "release" | "park"; readonly reason: string };

export function clusterView(listedAt: Date, pods: readonly Pod[], statefulSets: readonly StatefulSet[]): ClusterView {
  const key = (o: Pod | StatefulSet) => `${o.metadata.namespace ?? "default"}/${o.metadata.name}`;
  return {
    listedAt,
    pods: new Map(pods.map((p) => [key(p), p])),
    statefulSets: new Map(statefulSets.map((s) => [key(s), s])),
  };
}

const KEEP: Verdict = { action: "keep" };

/** Whether the StatefulSet recorded with `a` still exists (the same one: same UID). */
function statefulSetLives(a: Allocation, view: ClusterView): boolean {
  if (!a.statefulSet) return false;
  const sts = view.statefulSets.get(`${a.podNamespace}/${a.statefulSet}`);
  return sts !== undefined && (!a.statefulSetUID || sts.metadata.uid === a.statefulSetUID);
}

function stillSticky(pod: Pod, ifName: string): boolean {
  try {
    return podPolicy(pod, ifName).sticky;
  } catch {
    return true; // a malformed annotation is no reason to take an address away
  }
}

/**
 * The verdict on one allocation. Only allocations made by a pod (namespace and name recorded) and older
 * than the grace period before the lists were read are judged; the rest are kept.
 */
export function judge(a: Allocation, view: ClusterView, graceMs: number): Verdict {
  if (!a.podNamespace || !a.podName) return KEEP;
  const since = Date.parse(a.parkedAt ?? a.allocatedAt);
  if (!(since <= view.listedAt.getTime() - graceMs)) return KEEP;
  const ref = `${a.podNamespace}/${a.podName}`;
  const pod = view.pods.get(ref);

  if (a.parkedAt) {
    if (a.statefulSet) {
      if (!statefulSetLives(a, view)) return { action: "release", reason: `StatefulSet "${a.podNamespace}/${a.statefulSet}" is gone` };
      if (pod && !stillSticky(pod, a.ifName)) return { action: "release", reason: `pod "${ref}" is no longer sticky` };
      return KEEP;
    }
    // Sticky by annotation only: kept while a sticky pod of that name exists.
    if (!pod) return { action: "release", reason: `pod "${ref}" is gone and no StatefulSet keeps its name` };
    if (!stillSticky(pod, a.ifName)) return { action: "release", reason: `pod "${ref}" is no longer sticky` };
    return KEEP;
  }

  const samePod = pod !== undefined && (!a.podUID || pod.metadata.uid === a.podUID);
  if (samePod) return KEEP; // alive, or terminating: its own DEL will come
  const why = pod ? `pod "${ref}" is now another pod (UID ${pod.metadata.uid}, recorded ${a.podUID})` : `pod "${ref}" is gone`;
  if (a.kind === "sticky" && statefulSetLives(a, view)) return { action: "park", reason: `${why}; kept for StatefulSet "${a.podNamespace}/${a.statefulSet}"` };
  return { action: "release", reason: why };
}
