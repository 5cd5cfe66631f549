// The node agent's view of one network's held addresses on etcd: the claim keys listed once, then kept
// current by a watch from the listing's revision. It only picks the first address an ADD claims (see
// NetworkStore.heldView), so it may lag: a stale view costs a lost claim and the usual reads, never a
// wrong answer. Until the listing is in, and from a broken watch until the next listing, there is no view.
import { HeldIndex } from "../../ip/held_index.ts";
import { outsideAnyDeadline } from "../../lib/deadline.ts";
import type { EtcdClient } from "./client.ts";
import { prefixEnd } from "./codec.ts";
import type { NetworkKeys } from "./keys.ts";

/** After a failed listing, how long before the next attempt. */
const RELIST_AFTER_MS = 1000;

export class HeldMirror {
  readonly #etcd: EtcdClient;
  readonly #keys: NetworkKeys;
  readonly #stopped = new AbortController();
  #index: HeldIndex | undefined;

  constructor(etcd: EtcdClient, keys: NetworkKeys) {
    this.#etcd = etcd;
    this.#keys = keys;
    // Started by a request, it outlives it: outside that request's budget, or every listing after the
    // request's deadline would fail at once.
    void outsideAnyDeadline(() => this.#run());
  }

  /** The current view; undefined while there is none. */
  view(): HeldIndex | undefined {
    return this.#index;
  }

  /** Records what this process learnt without waiting for the watch: a claim it made, or lost. */
  noteHeld(family: 4 | 6, value: bigint): void {
    this.#index?.add(family, value);
  }

  stop(): void {
    this.#stopped.abort();
    this.#index = undefined;
  }

  async #run(): Promise<void> {
    const prefix = this.#keys.ips();
    while (!this.#stopped.signal.aborted) {
      // One watch per listing: when the stream breaks, events may have been compacted away, so the view
      // is dropped and rebuilt from a new listing rather than resumed.
      const attempt = new AbortController();
      const stop = () => attempt.abort();
      this.#stopped.signal.addEventListener("abort", stop);
      try {
        const listed = await this.#etcd.range(prefix, { prefix: true, keysOnly: true });
        const index = new HeldIndex(listed.kvs.map((kv) => this.#keys.ipOf(kv.key)).filter((ip) => ip !== undefined));
        this.#index = index;
        await this.#etcd.watch(prefix, {
          end: prefixEnd(prefix),
          startRevision: listed.revision + 1n,
          signal: attempt.signal,
          onReconnect: stop,
        }, (events) => {
          for (const e of events) {
            const ip = this.#keys.ipOf(e.key);
            if (!ip) continue;
            if (e.type === "DELETE") index.delete(ip.family, ip.value);
            else index.add(ip.family, ip.value);
          }
        });
      } catch {
        // etcd unreachable: no view until a listing succeeds; ADDs read the store as without an agent.
      } finally {
        this.#stopped.signal.removeEventListener("abort", stop);
        this.#index = undefined;
      }
      if (!this.#stopped.signal.aborted) await Bun.sleep(RELIST_AFTER_MS);
    }
  }
}
