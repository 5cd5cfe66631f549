// What a CNI request uses beyond its own input: the store and the Kubernetes API. The plugin opens them
// for one request and closes them after; the node agent keeps them open across requests (warm
// connections, a pod cache). Both run the same request code (run.ts) with their own Resources.
import type { StoreConfig } from "../config/store_config.ts";
import type { PodRef } from "../ipam/add.ts";
import type { HolderLiveness } from "../ipam/takeover.ts";
import type { Pod } from "../k8s/types.ts";
import { openStore } from "../store/open.ts";
import type { Store } from "../store/store.ts";

/** A store to use for one request; `done()` after it (closes it, or gives it back). */
export interface StoreLease {
  readonly store: Store;
  done(): Promise<void>;
}

/** The Kubernetes API through one kubeconfig. */
export interface KubeView {
  /** The pod being set up, on node `node`; throws a CNI error (code 11) when the API does not know it. */
  pod(ref: PodRef, node: string): Promise<Pod>;
  readonly liveness: HolderLiveness;
}

export interface Resources {
  store(config: StoreConfig): Promise<StoreLease>;
  kube(kubeconfigPath: string): Promise<KubeView>;
}

/** One request's resources, made for it and closed after it: the plugin running on its own. */
export const oneShot: Resources = {
  async store(config) {
    const store = await openStore(config);
    return { store, done: () => store.close() };
  },
  async kube(path) {
    // Loaded only for pods on a cluster with a kubeconfig: a plugin without one never pays for it.
    const { apiLiveness, getPod, kubeClient } = await import("./pod_lookup.ts");
    const client = await kubeClient(path);
    return { pod: (ref) => getPod(client, ref), liveness: apiLiveness(client) };
  },
};
