// STATUS: could an ADD succeed now? The store must answer and every range set have a free address.
import { CniError, ErrorCode } from "../cni/errors.ts";
import type { IpamConfig } from "../config/ipam_config.ts";
import { formatRangeSet } from "../ip/range_set.ts";
import type { NetworkStore, Store } from "../store/store.ts";
import { freeAddresses, poolsOf } from "./allocator.ts";
import { reservedAddresses } from "./reservations.ts";

export async function status(store: Store, net: NetworkStore, config: IpamConfig): Promise<void> {
  let reservations;
  try {
    await store.ping();
    reservations = await store.reservations();
  } catch (e) {
    throw new CniError(ErrorCode.NotAvailable, `Store ${store.location} is not usable: ${(e as Error).message}`, "", { cause: e });
  }
  for (const pool of poolsOf(config, reservedAddresses(reservations))) {
    const next = await freeAddresses(net, pool, undefined).next();
    if (next.done) {
      throw new CniError(ErrorCode.NotAvailable,
        `No free address in network "${config.network}" range set ${formatRangeSet(pool.set)}`);
    }
  }
}
