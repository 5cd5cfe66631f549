// kube-ipam v0.2's etcd layout (the Go plugin this project succeeds; backend/etcd/backend.go), honoured and
// written while old plugins may still run beside new ones (ipam.etcdConfig.legacyV02, docs/operations.md):
//
//   /etcd-cni/networks/NAME/used/IP          the container ID holding IP (IP as Go prints it)
//   /etcd-cni/networks/NAME/lastReserved/N   the last address handed out in range set N
//   /etcd-cni/networks/NAME/lock             v0.2's network lock: put with a 10 s lease, only if absent
//
// v0.2 claims with a get of used/IP and then a put, atomic only under its lock. So a claim here takes that
// very lock, the way v0.2 takes it, and commits only while the lock is still its own; releases need no lock
// (freeing an address cannot make two holders).
import { StoreError } from "../store.ts";
import { type EtcdClient, createRevision, del, get, type KeyValue, put, type Txn, type TxnOp, value } from "./client.ts";
import { budgetLeft } from "../../lib/deadline.ts";

export const V02_PREFIX = "/etcd-cni/networks/";
/** v0.2's lease on its lock, never kept alive. */
const LOCK_TTL_SECONDS = 10;
/** How long a claim waits for the lock at most (within the invocation's budget). v0.2 waits 20 x 2 s. */
const LOCK_WAIT_MS = 40_000;

export class LegacyV02Keys {
  readonly root: string;

  constructor(network: string) {
    this.root = `${V02_PREFIX}${network}`;
  }

  used(ipText: string): string {
    return `${this.root}/used/${ipText}`;
  }

  usedPrefix(): string {
    return `${this.root}/used/`;
  }

  lastReserved(rangeSet: number): string {
    return `${this.root}/lastReserved/${rangeSet}`;
  }

  lock(): string {
    return `${this.root}/lock`;
  }
}

/** The v0.2 lock, held: `fence` makes a transaction commit only while it is still ours. */
export interface HeldLock {
  fence(txn: Txn): Txn;
  release(): Promise<void>;
}

/**
 * Takes v0.2's lock as v0.2 does: grant a 10 s lease, put the lock key (value: the lease ID in decimal) with
 * it if the key is absent. Unlike v0.2 it polls quickly (20 ms, doubling to 500 ms, jittered) rather than
 * every 2 s, which changes nothing for v0.2 plugins waiting beside it.
 */
export async function takeLock(etcd: EtcdClient, keys: LegacyV02Keys): Promise<HeldLock> {
  const key = keys.lock();
  const deadline = Date.now() + budgetLeft(LOCK_WAIT_MS);
  for (let round = 0; ; round++) {
    const lease = await etcd.leaseGrant(LOCK_TTL_SECONDS);
    const r = await etcd.txn()
      .if(createRevision(key), "==", 0n)
      .then(put(key, String(lease.id), { lease: lease.id }))
      .else(get(key))
      .commit();
    if (r.succeeded) {
      const mine = String(lease.id);
      return {
        fence: (txn) => txn.if(value(key), "==", mine),
        release: () => etcd.leaseRevoke(lease.id),
      };
    }
    await etcd.leaseRevoke(lease.id);
    const holder = r.responses[0]?.kind === "range" ? r.responses[0].kvs[0] : undefined;
    const wait = Math.min(500, 20 * 2 ** round) * (0.5 + Math.random() / 2);
    if (Date.now() + wait > deadline) {
      throw new StoreError(`Cannot take kube-ipam v0.2's lock "${key}" (ipam.etcdConfig.legacyV02)` +
        `${holder ? `: held by lease ${holder.value}` : ""}; another plugin holds it longer than expected`, true);
    }
    await Bun.sleep(wait);
  }
}

/** The puts that make `containerID` the v0.2-visible holder of `ipText` (and range set's last address). */
export function usedWrites(keys: LegacyV02Keys, ipText: string, containerID: string, rangeSet: number): TxnOp[] {
  return [put(keys.used(ipText), containerID), put(keys.lastReserved(rangeSet), ipText)];
}

export function usedDelete(keys: LegacyV02Keys, ipText: string): TxnOp {
  return del(keys.used(ipText));
}

/** Addresses v0.2's layout holds, with their container IDs. */
export function usedEntries(keys: LegacyV02Keys, kvs: readonly KeyValue[]): { ip: string; containerID: string }[] {
  const prefix = keys.usedPrefix();
  return kvs.filter((kv) => kv.key.startsWith(prefix)).map((kv) => ({ ip: kv.key.slice(prefix.length), containerID: kv.value }));
}
