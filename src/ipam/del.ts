// DEL: release what (container, interface) holds. Nothing to release is success: runtimes repeat DEL.
import type { Allocation, NetworkStore, Owner } from "../store/store.ts";
import { failpoint } from "../lib/failpoint.ts";

export async function del(store: NetworkStore, owner: Owner): Promise<Allocation[]> {
  const released = await store.releaseByOwner(owner);
  failpoint("release.committed");
  return released;
}
