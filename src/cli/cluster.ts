// The Kubernetes API for commands that judge the whole cluster (gc, controller): --kubeconfig; else,
// inside a pod, the pod's service account; else the network config's kubeConfig or the default path.
// (Inside a pod the network config's kubeConfig names a file on the node, which the pod does not have.)
import type { IpamConfig } from "../config/ipam_config.ts";
import { KubeClient } from "../k8s/client.ts";
import { KubeConfigError } from "../k8s/errors.ts";
import { inClusterConfig, loadKubeConfig } from "../k8s/kubeconfig.ts";
import { kubeConfigPath } from "../plugin/kube_path.ts";

export async function clusterClient(config: IpamConfig, kubeconfigFlag: string | undefined): Promise<KubeClient> {
  let kube;
  if (kubeconfigFlag) kube = await loadKubeConfig(kubeconfigFlag);
  else if (process.env.KUBERNETES_SERVICE_HOST) kube = inClusterConfig();
  else {
    const path = kubeConfigPath(config);
    if (!path) {
      throw new KubeConfigError("none", "No Kubernetes API configured: pass --kubeconfig FILE, set ipam.kubeConfig, or run inside a pod");
    }
    kube = await loadKubeConfig(path);
  }
  return new KubeClient(kube, { timeoutMs: 10_000 });
}
