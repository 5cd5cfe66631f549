// Kubernetes objects as a test writes them, before any server has seen them: a Pod or a StatefulSet with
// the fields kube-ipam reads. test/support/kube_apiserver.ts creates them in a real API server (which
// gives them their real uid, resourceVersion and timestamps); the stand-in (k8s_api.ts) stores them as given.
import type { Pod, StatefulSet } from "../../src/k8s/types.ts";

export interface MakePodOptions {
  readonly namespace?: string;
  readonly name: string;
  readonly uid?: string;
  readonly annotations?: Record<string, string>;
  /** The StatefulSet (or its name) that controls the pod. */
  readonly ownerStatefulSet?: string | StatefulSet;
  readonly nodeName?: string;
  readonly phase?: "Pending" | "Running" | "Succeeded" | "Failed" | "Unknown";
  /** Marks the pod terminating. */
  readonly deletionTimestamp?: string;
  readonly podIPs?: readonly string[];
}

/** A pod as the API would return it: random uid, timestamps, StatefulSet labels and owner reference. */
export function makePod(options: MakePodOptions): Pod {
  const { namespace = "default", name, nodeName = "node-1", phase = "Running", podIPs = [] } = options;
  const owner = options.ownerStatefulSet;
  const ownerName = typeof owner === "string" ? owner : owner?.metadata.name;
  const ownerUid = typeof owner === "object" ? owner.metadata.uid : crypto.randomUUID();
  const labels: Record<string, string> = { app: ownerName ?? name };
  if (ownerName) {
    labels["controller-revision-hash"] = `${ownerName}-5d8f7c9b6d`;
    labels["statefulset.kubernetes.io/pod-name"] = name;
    const index = name.slice(ownerName.length + 1);
    if (/^\d+$/.test(index)) labels["apps.kubernetes.io/pod-index"] = index;
  }
  return {
    apiVersion: "v1",
    kind: "Pod",
    metadata: {
      name,
      namespace,
      uid: options.uid ?? crypto.randomUUID(),
      creationTimestamp: new Date().toISOString().replace(/\.\d+Z$/, "Z"),
      labels,
      ...(options.annotations ? { annotations: options.annotations } : {}),
      ...(options.deletionTimestamp
        ? { deletionTimestamp: options.deletionTimestamp, deletionGracePeriodSeconds: 30 }
        : {}),
      ...(ownerName
        ? {
          ownerReferences: [{
            apiVersion: "apps/v1", kind: "StatefulSet", name: ownerName, uid: ownerUid,
            controller: true, blockOwnerDeletion: true,
          }],
        }
        : {}),
    },
    spec: { nodeName },
    status: {
      phase,
      ...(podIPs.length ? { podIP: podIPs[0], podIPs: podIPs.map((ip) => ({ ip })) } : {}),
    },
  };
}

export function makeStatefulSet(options: { namespace?: string; name: string; uid?: string; replicas?: number }): StatefulSet {
  const { namespace = "default", name, replicas = 1 } = options;
  return {
    apiVersion: "apps/v1",
    kind: "StatefulSet",
    metadata: {
      name,
      namespace,
      uid: options.uid ?? crypto.randomUUID(),
      creationTimestamp: new Date().toISOString().replace(/\.\d+Z$/, "Z"),
    },
    spec: { replicas, serviceName: name },
    status: { replicas },
  };
}
