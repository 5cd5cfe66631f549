// DEL: release what (container, interface) holds. Nothing to release is success: runtimes repeat DEL.
import type { Allocation, NetworkStore, Owner } from "../store/store.ts";

export function del(store: NetworkStore, owner: Owner): Promise<Allocation[]> {
  return store.releaseByOwner(owner);
}
