// The dashboard's reads of the store, shared by its requests: each list is read at most once per
// `maxAgeMs` (and once at a time), and read again at once after the change stream says it changed. A page
// that asks for the usage, the map and an address after one change costs the store one read per list.
import { IntervalSet } from "../ip/interval_set.ts";
import { type ReservedAddresses, reservedAddresses } from "../ipam/reservations.ts";
import type { Allocation, Reservation, Store } from "../store/store.ts";

interface Cached<T> {
  readonly at: number;
  readonly value: Promise<T>;
}

export interface Reservations {
  readonly list: readonly Reservation[];
  readonly reserved: ReservedAddresses;
  readonly all: IntervalSet;
}

export class StoreView {
  readonly #store: Store;
  readonly #configured: string;
  readonly #maxAgeMs: number;
  readonly #lists = new Map<string, Cached<Allocation[]>>();
  #networks: Cached<string[]> | undefined;
  #reservations: Cached<Reservations> | undefined;

  /** `configured`: the network of the controller's --conf, listed even before anything is held in it. */
  constructor(store: Store, configured: string, maxAgeMs: number) {
    this.#store = store;
    this.#configured = configured;
    this.#maxAgeMs = maxAgeMs;
  }

  #fresh<T>(c: Cached<T> | undefined, read: () => Promise<T>, keep: (c: Cached<T>) => void): Promise<T> {
    if (c && Date.now() - c.at < this.#maxAgeMs) return c.value;
    // A failed read is not kept: the next request tries again.
    const entry: Cached<T> = {
      at: Date.now(),
      value: read().catch((e: unknown) => {
        this.#forget(entry);
        throw e;
      }),
    };
    keep(entry);
    return entry.value;
  }

  #forget(entry: Cached<unknown>): void {
    if (this.#networks === entry) this.#networks = undefined;
    if (this.#reservations === entry) this.#reservations = undefined;
    for (const [k, v] of this.#lists) if (v === entry) this.#lists.delete(k);
  }

  /** Every network in the store, and the configured one; sorted. */
  networks(): Promise<string[]> {
    return this.#fresh(this.#networks, async () => {
      const names = new Set(await this.#store.networks());
      names.add(this.#configured);
      return [...names].sort();
    }, (c) => (this.#networks = c));
  }

  /** The network's allocations (the records as stored, in no particular order). */
  allocations(network: string): Promise<Allocation[]> {
    return this.#fresh(this.#lists.get(network), () => this.#store.network(network).list(), (c) => this.#lists.set(network, c));
  }

  reservations(): Promise<Reservations> {
    return this.#fresh(this.#reservations, async () => {
      const list = await this.#store.reservations();
      const reserved = reservedAddresses(list);
      return { list, reserved, all: reserved.all };
    }, (c) => (this.#reservations = c));
  }

  /** Every network's allocations, by network. */
  async everything(): Promise<Map<string, Allocation[]>> {
    const names = await this.networks();
    return new Map(await Promise.all(names.map(async (n) => [n, await this.allocations(n)] as const)));
  }

  /** A change in `network` was seen: its list (and the network list, for a new network) are read again. */
  changed(network: string): void {
    this.#lists.delete(network);
    this.#networks = undefined;
  }

  reservationsChanged(): void {
    this.#reservations = undefined;
  }

  /** Everything is read again (the change stream was down for a while). */
  reset(): void {
    this.#lists.clear();
    this.#networks = undefined;
    this.#reservations = undefined;
  }
}
