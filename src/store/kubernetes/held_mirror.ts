// The node agent's view of one network's held addresses on the Kubernetes store: the IPAllocations' names
// listed once (metadata only), then kept current by a watch from the list's resourceVersion, resumed from
// the last version seen and listed again only after a 410. As the etcd mirror's, it only picks the first
// address an ADD claims: a stale view costs a lost claim and the usual reads, never a wrong answer. It also
// knows which owners hold addresses (their owner label), so that an ADD of an owner it has never seen skips
// reading the owner's allocations first: the check after the claim, which reads a version at least as new as
// the claim, still finds an earlier attempt's claim.
import { HeldIndex } from "../../ip/held_index.ts";
import { KubeUnavailableError } from "../../k8s/errors.ts";
import { outsideAnyDeadline } from "../../lib/deadline.ts";
import { METADATA, type ObjectApi } from "./api.ts";
import { ANNOTATION_NETWORK, dnsLabel, ipOfName, LABEL_NETWORK, LABEL_OWNER } from "./names.ts";
import type { KubeObject } from "./objects.ts";

/** After a failure, how long before the next attempt. */
const RETRY_AFTER_MS = 1000;

export class KubeHeldMirror {
  readonly #api: ObjectApi;
  readonly #network: string;
  readonly #stopped = new AbortController();
  #index: HeldIndex | undefined;
  /** Owner label -> names of the allocations that carry it, for the current view. */
  #owners = new Map<string, Set<string>>();
  /** Object name -> its owner label, to undo an entry when the object changes or goes. */
  #ownerOf = new Map<string, string>();

  constructor(api: ObjectApi, network: string) {
    this.#api = api;
    this.#network = network;
    // Started by a request, it outlives it: outside that request's budget.
    void outsideAnyDeadline(() => this.#run());
  }

  view(): HeldIndex | undefined {
    return this.#index;
  }

  noteHeld(family: 4 | 6, value: bigint): void {
    this.#index?.add(family, value);
  }

  noteFree(family: 4 | 6, value: bigint): void {
    this.#index?.delete(family, value);
  }

  /** False only when the view is current and no allocation carries this owner label. */
  mayHold(ownerLabel: string): boolean {
    return !this.#index || this.#owners.has(ownerLabel);
  }

  #noteOwner(o: KubeObject, gone: boolean): void {
    const name = o.metadata.name;
    const before = this.#ownerOf.get(name);
    if (before !== undefined) {
      const names = this.#owners.get(before);
      names?.delete(name);
      if (names?.size === 0) this.#owners.delete(before);
      this.#ownerOf.delete(name);
    }
    const owner = o.metadata.labels?.[LABEL_OWNER];
    if (gone || owner === undefined) return;
    this.#ownerOf.set(name, owner);
    let names = this.#owners.get(owner);
    if (!names) this.#owners.set(owner, names = new Set());
    names.add(name);
  }

  stop(): void {
    this.#stopped.abort();
    this.#index = undefined;
  }

  #ours(o: KubeObject): boolean {
    return o.metadata.annotations?.[ANNOTATION_NETWORK] === this.#network;
  }

  async #run(): Promise<void> {
    const selector = `${LABEL_NETWORK}=${dnsLabel(this.#network)}`;
    const signal = this.#stopped.signal;
    let version: string | undefined;
    let index: HeldIndex | undefined;
    while (!signal.aborted) {
      try {
        if (version === undefined || !index) {
          const listed = await this.#api.listMetadataVersioned(selector);
          const items = listed.items.filter((o) => this.#ours(o));
          index = new HeldIndex(items.map((o) => ipOfName(o.metadata.name)).filter((ip) => ip !== undefined));
          this.#owners = new Map();
          this.#ownerOf = new Map();
          for (const o of items) this.#noteOwner(o, false);
          version = listed.resourceVersion;
          this.#index = index;
        }
        const current = index;
        await this.#api.kube.watch<KubeObject>(this.#api.collection, `watch ${this.#api.kind} objects`, {
          resourceVersion: version, labelSelector: selector, accept: METADATA, allowWatchBookmarks: true,
          timeoutSeconds: Math.round(300 * (1 + Math.random())), signal,
        }, (e) => {
          version = e.object.metadata.resourceVersion ?? version;
          if (e.type === "BOOKMARK" || !this.#ours(e.object as KubeObject)) return;
          this.#noteOwner(e.object as KubeObject, e.type === "DELETED");
          const ip = ipOfName(e.object.metadata.name);
          if (!ip) return;
          if (e.type === "DELETED") current.delete(ip.family, ip.value);
          else current.add(ip.family, ip.value);
        });
      } catch (e) {
        if (signal.aborted) break;
        // Forgotten version: the view is rebuilt from a new list. Anything else: resumed, the view kept
        // meanwhile (stale at worst, which a claim corrects).
        if (!(e instanceof KubeUnavailableError) || e.status === 410 || e.status === undefined) {
          version = undefined;
          this.#index = undefined;
        }
        await new Promise((r) => setTimeout(r, RETRY_AFTER_MS));
      }
    }
    this.#index = undefined;
  }
}
