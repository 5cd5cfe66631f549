// The agent's Resources: what a plugin opens for one request, kept open across requests. Stores by
// their config (etcd connections stay alive, TLS sessions are reused), Kubernetes clients by kubeconfig,
// and, when the agent has its own identity, per node a cache of the node's pods read with it, so that an ADD
// reads its pod's annotations from memory. A config that changes gets new ones at the next request: entries are keyed by the config
// and by the modification times of the files it names (rotated certificates, a rewritten kubeconfig).
import { statSync } from "node:fs";
import type { StoreConfig } from "../config/store_config.ts";
import { KubeClient } from "../k8s/client.ts";
import { PodCache } from "../k8s/pod_cache.ts";
import type { Logger } from "../log/logger.ts";
import { apiLiveness, getPod, kubeClient } from "../plugin/pod_lookup.ts";
import type { KubeView, Resources, StoreLease } from "../plugin/resources.ts";
import { openStore } from "../store/open.ts";
import type { Store } from "../store/store.ts";

function stamp(paths: readonly (string | undefined)[]): string {
  return paths.map((p) => {
    if (!p) return "";
    try {
      const st = statSync(p);
      return `${st.mtimeMs}:${st.size}`;
    } catch {
      return "missing";
    }
  }).join("|");
}

const RETIRE_AFTER_MS = 120_000;

interface Entry<T> {
  readonly stamp: string;
  readonly value: Promise<T>;
}

export interface PodLookups {
  hits: number;
  misses: number;
}

export class WarmResources implements Resources {
  readonly #stores = new Map<string, Entry<Store>>();
  readonly #clients = new Map<string, Entry<KubeClient>>();
  /** By node name. */
  readonly #pods = new Map<string, PodCache>();
  readonly #log: Logger;
  /** Pod reads served from the cache (hits) and from the API (misses). */
  readonly podLookups: PodLookups = { hits: 0, misses: 0 };

  /** The agent's own identity: when set, every pod read goes through it and its cache. */
  readonly #podClient: KubeClient | undefined;

  constructor(log: Logger, podClient?: KubeClient) {
    this.#log = log;
    this.#podClient = podClient;
  }

  async store(config: StoreConfig): Promise<StoreLease> {
    const key = JSON.stringify(config);
    // A changed certificate or kubeconfig file opens the store anew.
    const files = config.kind === "etcd" ? [config.certFile, config.keyFile, config.caFile]
      : config.kind === "kubernetes" ? [config.kubeConfig] : [];
    const store = await this.#cached(this.#stores, key, stamp(files), () => openStore(config, { heldViews: true }), (s) => s.close());
    return { store, done: () => Promise.resolve() };
  }

  async kube(path: string): Promise<KubeView> {
    // With its own identity the agent reads pods as itself, whichever kubeconfig the network config names, and
    // keeps the node's pods in a cache. Without one it reads each pod as the plugin would: the plugin's
    // identity may GET a pod but not list or watch a node's.
    const own = this.#podClient;
    const client = own ?? await this.#cached(this.#clients, path, stamp([path]), () => kubeClient(path), () => Promise.resolve());
    return {
      pod: async (ref, node) => {
        // Only a pod the runtime names by UID (K8S_POD_UID) is taken from the cache: by name alone, a
        // watch that lags could answer with the pod this one replaces (a StatefulSet pod re-created under
        // its name), and the allocation would record the wrong pod.
        const cached = own && ref.uid ? this.#podCache(own, node).lookup(ref.namespace!, ref.name!, ref.uid) : undefined;
        if (cached) {
          this.podLookups.hits++;
          return cached;
        }
        this.podLookups.misses++;
        return getPod(client, ref);
      },
      liveness: apiLiveness(client),
    };
  }

  /** The pod cache of `node`, read with the agent's own identity, started on first use. */
  #podCache(client: KubeClient, node: string): PodCache {
    const have = this.#pods.get(node);
    if (have) return have;
    const cache = new PodCache(client, node, {
      onError: (e) => this.#log.warn("pod cache: reconnecting", { node, server: client.server, error: String((e as Error)?.message ?? e) }),
    });
    cache.start();
    this.#pods.set(node, cache);
    return cache;
  }

  /** The value for `key` made under `stamp`; a failure is not kept, so the next request tries again. */
  async #cached<T>(map: Map<string, Entry<T>>, key: string, stamp: string, make: () => Promise<T>,
    close: (v: T) => Promise<void>): Promise<T> {
    const have = map.get(key);
    if (have?.stamp === stamp) return have.value;
    // Requests in flight may still use the old one: it is closed once they have surely ended.
    if (have) setTimeout(() => void have.value.then(close, () => undefined), RETIRE_AFTER_MS).unref();
    const value = make();
    map.set(key, { stamp, value });
    value.catch(() => {
      if (map.get(key)?.value === value) map.delete(key);
    });
    return value;
  }

  async close(): Promise<void> {
    await Promise.all([...this.#pods.values()].map((cache) => cache.stop()));
    const stores = [...this.#stores.values()].map((e) => e.value.then((s) => s.close(), () => undefined));
    this.#pods.clear();
    this.#stores.clear();
    this.#clients.clear();
    await Promise.all(stores);
  }
}
