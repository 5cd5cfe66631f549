// kube-ipam v0.2 (the Go plugin, backend/etcd/backend.go and host-local's allocator), played by the test
// process against a real etcd, exactly as it works: a network lock put with a 10 s lease if absent (retried),
// then for each candidate address a get of used/IP and, if absent, a put (not atomic by itself), a put of
// lastReserved, and the lock's lease revoked by the value found in the lock key.
import { EtcdClient, createRevision, get, put } from "../../src/store/etcd/client.ts";
import { formatIP, type IP, tryParseIP } from "../../src/ip/address.ts";

export const V02_ROOT = "/etcd-cni/networks/";

export class V02Plugin {
  readonly root: string;

  private constructor(readonly etcd: EtcdClient, readonly network: string, readonly retryMs: number) {
    this.root = `${V02_ROOT}${network}`;
  }

  /** `retryMs`: v0.2 waits 2 s between lock attempts; tests may shorten it (20 attempts either way). */
  static async connect(endpoint: string, network: string, retryMs = 2000): Promise<V02Plugin> {
    return new V02Plugin(await EtcdClient.create({ endpoints: [endpoint] }), network, retryMs);
  }

  /** What v0.2 writes at every call: the network's range sets as JSON. */
  async init(ranges: unknown): Promise<void> {
    await this.etcd.put(this.root, JSON.stringify(ranges));
  }

  async lock(): Promise<void> {
    const key = `${this.root}/lock`;
    for (let i = 0; i < 20; i++) {
      const lease = await this.etcd.leaseGrant(10);
      const r = await this.etcd.txn().if(createRevision(key), "==", 0n).then(put(key, String(lease.id), { lease: lease.id })).else(get(key)).commit();
      if (r.succeeded) return;
      await Bun.sleep(this.retryMs);
    }
    throw new Error("Can not get lock");
  }

  /** v0.2's Unlock: revokes the lease named by the lock key's value, whoever's it is. */
  async unlock(): Promise<void> {
    const kv = await this.etcd.get(`${this.root}/lock`);
    if (kv) await this.etcd.leaseRevoke(BigInt(kv.value));
  }

  /** v0.2's Reserve: get, then put; false when used/IP exists. */
  async reserve(id: string, ip: string, rangeID: number): Promise<boolean> {
    if (await this.etcd.get(`${this.root}/used/${ip}`)) return false;
    await this.etcd.put(`${this.root}/used/${ip}`, id);
    await this.etcd.put(`${this.root}/lastReserved/${rangeID}`, ip);
    return true;
  }

  /** An ADD: lock, the next free address after lastReserved in [first, last], unlock. */
  async add(id: string, first: IP, last: IP): Promise<string | undefined> {
    await this.lock();
    try {
      const lastKv = await this.etcd.get(`${this.root}/lastReserved/0`);
      const from = (lastKv && tryParseIP(lastKv.value)?.value) ?? last.value;
      const size = last.value - first.value + 1n;
      for (let i = 1n; i <= size; i++) {
        const v = first.value + ((from - first.value + i) % size + size) % size;
        const ip = formatIP({ family: first.family, value: v });
        if (await this.reserve(id, ip, 0)) return ip;
      }
      return undefined;
    } finally {
      await this.unlock();
    }
  }

  /** v0.2's DEL: every used/ key whose value is the container ID, under the lock. */
  async del(id: string): Promise<void> {
    await this.lock();
    try {
      const { kvs } = await this.etcd.range(`${this.root}/used/`, { prefix: true });
      for (const kv of kvs) if (kv.value === id) await this.etcd.delete(kv.key);
    } finally {
      await this.unlock();
    }
  }

  /** used/ as a map from address to container ID. */
  async used(): Promise<Map<string, string>> {
    const prefix = `${this.root}/used/`;
    const { kvs } = await this.etcd.range(prefix, { prefix: true });
    return new Map(kvs.map((kv) => [kv.key.slice(prefix.length), kv.value]));
  }
}
