// Leader election through a coordination.k8s.io Lease, as client-go's leaderelection does it: the leader
// renews the Lease's renewTime; a follower takes it over only after it has seen the same record, unchanged,
// for a whole leaseDurationSeconds by its own clock (no trust in other hosts' clocks), and every write is
// an update of the resourceVersion read, so two followers cannot both win.
// The fence of a term is the Lease's leaseTransitions, which every takeover increments. A write made as
// leader reads the Lease first and is not made unless the term is still this leader's (fenceCheck). Unlike
// etcd's, that check and the write are two requests: a leader stopped between them for longer than the
// lease could still write once; docs/kubernetes-store.md says so.
import { sleep } from "../../lib/sleep.ts";
import type { KubeClient } from "../../k8s/client.ts";
import { type ElectionOptions, type LeaderFence, type Leadership, NotLeaderError } from "../store.ts";
import { ObjectApi } from "./api.ts";
import type { KubeObject } from "./objects.ts";

interface LeaseSpec {
  holderIdentity?: string;
  leaseDurationSeconds?: number;
  acquireTime?: string;
  renewTime?: string;
  leaseTransitions?: number;
}

/** Kubernetes' MicroTime: RFC 3339 with microseconds. */
function microTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, ".$1000Z");
}

export class KubeLeaderElection implements Leadership {
  readonly #leases: ObjectApi;
  readonly #name: string;
  readonly #identity: string;
  readonly #ttl: number;
  readonly #campaignMs: number;
  readonly #onChange: ElectionOptions["onChange"];
  readonly #key: string;
  /** The Lease as last read or written, and when (local clock) its record last changed. */
  #seen: KubeObject | undefined;
  #seenChangedAt = 0;
  #term: number | undefined;
  #validUntil = 0;

  constructor(kube: KubeClient, namespace: string, name: string, identity: string, opts: ElectionOptions = {}) {
    this.#leases = new ObjectApi(kube, `/apis/coordination.k8s.io/v1/namespaces/${encodeURIComponent(namespace)}/leases`, "Lease");
    this.#name = name;
    this.#key = `Lease ${namespace}/${name}`;
    this.#identity = identity;
    this.#ttl = opts.ttlSeconds ?? 15;
    this.#campaignMs = opts.campaignIntervalMs ?? 1000;
    this.#onChange = opts.onChange;
  }

  get isLeader(): boolean {
    return this.#term !== undefined && Date.now() < this.#validUntil;
  }

  get fence(): LeaderFence | undefined {
    return this.isLeader ? { key: this.#key, revision: BigInt(this.#term!) } : undefined;
  }

  fenceLost(fence: LeaderFence): void {
    if (fence.key === this.#key && this.#term !== undefined && fence.revision === BigInt(this.#term)) this.#lose();
  }

  /** Throws NotLeaderError unless the Lease still names this leader in the term of `fence`. */
  async fenceCheck(fence: LeaderFence): Promise<void> {
    const lease = await this.#leases.get(this.#name);
    const spec = (lease?.spec ?? {}) as LeaseSpec;
    if (spec.holderIdentity === this.#identity && BigInt(spec.leaseTransitions ?? 0) === fence.revision && this.isLeader) return;
    this.fenceLost(fence);
    throw new NotLeaderError(`Not the leader any more (${this.#key} is held by "${spec.holderIdentity ?? ""}" ` +
      `in term ${spec.leaseTransitions ?? 0}, not by "${this.#identity}" in term ${fence.revision}): the write was not made`);
  }

  #spec(now: number, transitions: number, acquired: string): LeaseSpec {
    return { holderIdentity: this.#identity, leaseDurationSeconds: this.#ttl, acquireTime: acquired, renewTime: microTime(now),
      leaseTransitions: transitions };
  }

  #object(spec: LeaseSpec, resourceVersion?: string) {
    return { apiVersion: "coordination.k8s.io/v1", kind: "Lease", metadata: { name: this.#name, ...(resourceVersion && { resourceVersion }) }, spec };
  }

  /** Leadership is good until a little before the lease could be taken over, counted from before the write. */
  #won(lease: KubeObject, started: number): void {
    const first = this.#term === undefined;
    this.#seen = lease;
    this.#seenChangedAt = started;
    this.#term = (lease.spec as LeaseSpec).leaseTransitions ?? 0;
    this.#validUntil = started + this.#ttl * 1000 - 1000;
    if (first) this.#onChange?.(true);
  }

  async #campaign(): Promise<void> {
    const started = Date.now();
    const lease = await this.#leases.get(this.#name);
    if (!lease) {
      const created = await this.#leases.create(this.#object(this.#spec(started, 0, microTime(started))));
      if ("object" in created) this.#won(created.object, started);
      return;
    }
    const spec = (lease.spec ?? {}) as LeaseSpec;
    if (this.#seen?.metadata.resourceVersion !== lease.metadata.resourceVersion) {
      this.#seen = lease;
      this.#seenChangedAt = started;
    }
    const duration = (spec.leaseDurationSeconds ?? this.#ttl) * 1000;
    const free = !spec.holderIdentity || spec.holderIdentity === this.#identity || started - this.#seenChangedAt >= duration;
    if (!free) return;
    const transitions = (spec.leaseTransitions ?? 0) + (spec.holderIdentity === this.#identity ? 0 : 1);
    const r = await this.#leases.update(this.#object(this.#spec(started, transitions, microTime(started)), lease.metadata.resourceVersion));
    if ("object" in r) this.#won(r.object, started);
  }

  async #renew(): Promise<void> {
    const started = Date.now();
    const seen = this.#seen!;
    const spec = seen.spec as LeaseSpec;
    const r = await this.#leases.update(this.#object(this.#spec(started, this.#term!, spec.acquireTime ?? microTime(started)),
      seen.metadata.resourceVersion));
    if ("object" in r) this.#won(r.object, started);
    else this.#lose(); // changed or deleted behind our back: someone else's now
  }

  #lose(): void {
    if (this.#term === undefined) return;
    this.#term = undefined;
    this.#validUntil = 0;
    this.#onChange?.(false);
  }

  async run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      try {
        if (this.#term === undefined) await this.#campaign();
        else await this.#renew();
      } catch {
        // The API unreachable: a leader keeps trying until its time is up, a follower until it can win.
      }
      if (this.#term !== undefined && Date.now() >= this.#validUntil) this.#lose();
      await sleep(this.#term !== undefined ? (this.#ttl * 1000) / 3 : this.#campaignMs, signal);
    }
    const held = this.#term !== undefined ? this.#seen : undefined;
    this.#lose();
    if (held) {
      // Hand over at once, as client-go's ReleaseOnCancel: an empty holder is free to take.
      const spec = { ...(held.spec as LeaseSpec), holderIdentity: "", leaseDurationSeconds: 1 };
      await this.#leases.update(this.#object(spec, held.metadata.resourceVersion)).catch(() => undefined);
    }
  }
}
