// Which Kubernetes API the Kubernetes store uses (kubeSource): the configured kubeconfig, the pod's service
// account inside a pod that lacks that host file (the controller), the seed's default path, or none (code 7).
import { describe, expect, test } from "bun:test";
import { DEFAULT_KUBECONFIG, type KubernetesStoreConfig } from "../../src/config/store_config.ts";
import { kubeSource } from "../../src/store/kubernetes/kube_store.ts";

const HOST_FILE = "/etc/kube-ipam/kube-ipam.kubeconfig";
const configured: KubernetesStoreConfig = { kind: "kubernetes", kubeConfig: HOST_FILE, leaseNamespace: "kube-system" };
const unset: KubernetesStoreConfig = { kind: "kubernetes", leaseNamespace: "kube-system" };
const files = (...present: string[]) => (path: string) => present.includes(path);

describe("kubeSource", () => {
  test("on a node: the configured file, even when missing (its own error then names it)", () => {
    expect(kubeSource(configured, { inPod: false, exists: files(HOST_FILE) })).toEqual({ kind: "file", path: HOST_FILE });
    expect(kubeSource(configured, { inPod: false, exists: files() })).toEqual({ kind: "file", path: HOST_FILE });
  });

  test("in a pod: the configured file where the pod has it (the agent), else the service account (the controller)", () => {
    expect(kubeSource(configured, { inPod: true, exists: files(HOST_FILE) })).toEqual({ kind: "file", path: HOST_FILE });
    expect(kubeSource(configured, { inPod: true, exists: files(DEFAULT_KUBECONFIG) })).toEqual({ kind: "in-cluster" });
  });

  test("nothing configured: the service account in a pod, the seed's default path where it exists, else none", () => {
    expect(kubeSource(unset, { inPod: true, exists: files() })).toEqual({ kind: "in-cluster" });
    expect(kubeSource(unset, { inPod: false, exists: files(DEFAULT_KUBECONFIG) })).toEqual({ kind: "file", path: DEFAULT_KUBECONFIG });
    expect(kubeSource(unset, { inPod: false, exists: files() })).toEqual({ kind: "none" });
  });
});
