// Picks the store the config names. The etcd and Kubernetes stores are loaded only when configured.
import type { StoreConfig } from "../config/store_config.ts";
import { FileStore } from "./file/file_store.ts";
import type { Store } from "./store.ts";

export interface OpenOptions {
  /** For a long-lived process (the node agent): keep views of what is held (NetworkStore.heldView). */
  readonly heldViews?: boolean;
}

export async function openStore(config: StoreConfig, options: OpenOptions = {}): Promise<Store> {
  if (config.kind === "file") return new FileStore(config.dataDir, options);
  if (config.kind === "kubernetes") {
    const { KubeStore } = await import("./kubernetes/kube_store.ts");
    return KubeStore.open(config, options);
  }
  const { EtcdStore } = await import("./etcd/etcd_store.ts");
  return EtcdStore.open(config, options);
}
