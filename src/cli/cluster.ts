// The Kubernetes API for commands that judge the whole cluster (gc, controller): --kubeconfig, else
// the network config's kubeConfig, else the default path when it exists, else the pod's service account.
import type { IpamConfig } from "../config/ipam_config.ts";
import { KubeClient } from "../k8s/client.ts";
import { inClusterConfig, loadKubeConfig } from "../k8s/kubeconfig.ts";
import { kubeConfigPath } from "../plugin/kube_path.ts";

export async function clusterClient(config: IpamConfig, kubeconfigFlag: string | undefined): Promise<KubeClient> {
  const path = kubeconfigFlag ?? kubeConfigPath(config);
  const kube = path ? await loadKubeConfig(path) : inClusterConfig();
  return new KubeClient(kube, { timeoutMs: 10_000 });
}
