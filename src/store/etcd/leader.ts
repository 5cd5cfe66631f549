// Leader election through an etcd lease: the leader holds a key bound to its lease and renews the
// lease; when it dies the lease expires, the key vanishes and a follower's create-if-absent wins.
// A leader that cannot renew in time counts itself out before its lease can expire. It can still learn
// late that its lease is gone (revoked, or expired while the process was stopped): its fence (the leader
// key's creation revision) lets the writes it makes as leader compare that the key is still its own.
import { sleep } from "../../lib/sleep.ts";
import type { ElectionOptions, LeaderFence, Leadership } from "../store.ts";
import { createRevision, type EtcdClient, put } from "./client.ts";

export class EtcdLeaderElection implements Leadership {
  readonly #etcd: EtcdClient;
  readonly #key: string;
  readonly #identity: string;
  readonly #ttl: number;
  readonly #campaignMs: number;
  readonly #onChange: ElectionOptions["onChange"];
  #lease: bigint | undefined;
  /** The revision at which this leader created the leader key. */
  #revision = 0n;
  #validUntil = 0;

  constructor(etcd: EtcdClient, key: string, identity: string, opts: ElectionOptions = {}) {
    this.#etcd = etcd;
    this.#key = key;
    this.#identity = identity;
    this.#ttl = opts.ttlSeconds ?? 5;
    this.#campaignMs = opts.campaignIntervalMs ?? 1000;
    this.#onChange = opts.onChange;
  }

  get isLeader(): boolean {
    return this.#lease !== undefined && Date.now() < this.#validUntil;
  }

  get fence(): LeaderFence | undefined {
    return this.isLeader ? { key: this.#key, revision: this.#revision } : undefined;
  }

  fenceLost(fence: LeaderFence): void {
    if (fence.key === this.#key && fence.revision === this.#revision) this.#lose();
  }

  /** Leadership is good until a little before the lease could expire, counted from before the renewal. */
  #renewedAt(started: number): void {
    this.#validUntil = started + this.#ttl * 1000 - 1000;
  }

  async #campaign(): Promise<void> {
    const started = Date.now();
    const lease = await this.#etcd.leaseGrant(this.#ttl);
    const r = await this.#etcd.txn()
      .if(createRevision(this.#key), "==", 0n)
      .then(put(this.#key, this.#identity, { lease: lease.id }))
      .commit();
    if (r.succeeded) {
      this.#lease = lease.id;
      this.#revision = r.revision;
      this.#renewedAt(started);
      this.#onChange?.(true);
      return;
    }
    // Someone else leads (or our own earlier campaign, whose answer was lost: its lease runs out).
    await this.#etcd.leaseRevoke(lease.id).catch(() => undefined);
  }

  async #renew(): Promise<void> {
    const started = Date.now();
    const ttl = await this.#etcd.leaseKeepAliveOnce(this.#lease!);
    if (ttl <= 0) return this.#lose();
    this.#renewedAt(started);
  }

  #lose(): void {
    if (this.#lease === undefined) return;
    this.#lease = undefined;
    this.#validUntil = 0;
    this.#onChange?.(false);
  }

  async run(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      try {
        if (this.#lease === undefined) await this.#campaign();
        else await this.#renew();
      } catch {
        // etcd unreachable: a leader keeps trying until its time is up, a follower until it can win.
      }
      if (this.#lease !== undefined && Date.now() >= this.#validUntil) this.#lose();
      await sleep(this.#lease !== undefined ? (this.#ttl * 1000) / 3 : this.#campaignMs, signal);
    }
    const lease = this.#lease;
    this.#lose();
    if (lease !== undefined) await this.#etcd.leaseRevoke(lease).catch(() => undefined); // hand over at once
  }
}
