// Reservations as the allocator uses them: one interval set to skip, and the name that holds an address.
import type { IP } from "../ip/address.ts";
import { type Interval, IntervalSet, tryParseInterval } from "../ip/interval_set.ts";
import type { Reservation } from "../store/store.ts";

export interface ReservedAddresses {
  readonly all: IntervalSet;
  /** The reservation that holds `ip`, if any. */
  nameOf(ip: IP): string | undefined;
}

export function reservedAddresses(list: readonly Reservation[]): ReservedAddresses {
  const named: { name: string; set: IntervalSet }[] = list.map((r) => ({
    name: r.name,
    set: new IntervalSet(r.entries.map(tryParseInterval).filter((i): i is Interval => i !== undefined)),
  }));
  return {
    all: new IntervalSet(named.flatMap((n) => n.set.intervals)),
    nameOf: (ip) => named.find((n) => n.set.has(ip))?.name,
  };
}

export const NO_RESERVATIONS: ReservedAddresses = { all: IntervalSet.empty, nameOf: () => undefined };
