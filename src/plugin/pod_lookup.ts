// The Kubernetes side of an ADD: the pod (for its annotations and owners) and, for takeovers, whether
// the pod recorded in another allocation still exists. With a kubeconfig configured, an API that
// cannot answer fails the ADD (code 11): never a silent dynamic address for a pod that may want a
// fixed one.
import { CniError, ErrorCode } from "../cni/errors.ts";
import type { PodRef } from "../ipam/add.ts";
import type { HolderLiveness } from "../ipam/takeover.ts";
import { KubeClient } from "../k8s/client.ts";
import { loadKubeConfig } from "../k8s/kubeconfig.ts";
import type { Pod } from "../k8s/types.ts";
import type { Allocation } from "../store/store.ts";

export async function kubeClient(path: string): Promise<KubeClient> {
  return new KubeClient(await loadKubeConfig(path), { timeoutMs: 3000 });
}

/** The pod being set up; an error when the API does not know it (it may not have synced yet). */
export async function getPod(client: KubeClient, ref: PodRef): Promise<Pod> {
  const pod = await client.getPod(ref.namespace!, ref.name!);
  if (!pod) {
    throw new CniError(ErrorCode.TryAgainLater,
      `Pod "${ref.namespace}/${ref.name}" is not in the Kubernetes API at "${client.server}": cannot read its kube-ipam annotations`);
  }
  return pod;
}

/** A holder is gone when its pod is no longer in the API, is another pod of that name, or has finished. */
export function apiLiveness(client: KubeClient): HolderLiveness {
  return {
    async isGone(holder: Allocation): Promise<boolean> {
      if (!holder.podNamespace || !holder.podName) return false;
      const pod = await client.getPod(holder.podNamespace, holder.podName);
      if (!pod) return true;
      if (holder.podUID && pod.metadata.uid !== holder.podUID) return true;
      return pod.status?.phase === "Succeeded" || pod.status?.phase === "Failed";
    },
  };
}
