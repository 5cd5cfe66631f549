// The GC verb: release this node's allocations in this network that the runtime no longer lists
// in cni.dev/valid-attachments. Sticky addresses belong to a pod name, not an attachment: they are
// parked, as DEL would, and the cluster-wide garbage collector decides about them.
import type { Attachment } from "../config/ipam_config.ts";
import type { Allocation, NetworkStore } from "../store/store.ts";
import { releaseOrPark } from "./release.ts";

export async function gcAttachments(store: NetworkStore, node: string, valid: readonly Attachment[]): Promise<Allocation[]> {
  const keep = new Set(valid.map((a) => `${a.containerID}\u0000${a.ifName}`));
  const stale = (await store.list()).filter((a) =>
    a.node === node && !a.parkedAt && !keep.has(`${a.containerID}\u0000${a.ifName}`)
  );
  const released: Allocation[] = [];
  const now = new Date();
  for (const a of stale) {
    if (await releaseOrPark(store, a, now)) released.push(a);
  }
  await store.sweep();
  return released;
}
