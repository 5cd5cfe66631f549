// Letting go of one record: sticky addresses are parked for their pod name, others released.
// Both are compare-and-swap on the record, so a record that changed meanwhile is left alone.
import type { Allocation, NetworkStore } from "../store/store.ts";

export function releaseOrPark(store: NetworkStore, record: Allocation, now: Date): Promise<boolean> {
  if (record.kind === "sticky") {
    if (record.parkedAt) return Promise.resolve(false);
    return store.replace(record, { ...record, parkedAt: now.toISOString() });
  }
  return store.releaseIfUnchanged(record);
}
