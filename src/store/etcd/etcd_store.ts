// The cluster-wide store: one etcd key per address, claimed by a transaction that succeeds only if the
// key is absent and writes the record, the owner index entry (and the node's cursor) together.
// No lock of any kind: concurrent claimers of one address are ordered by etcd, exactly one wins.
import type { EtcdStoreConfig } from "../../config/store_config.ts";
import { type IP, ipFromHex, ipToHex, tryParseIP } from "../../ip/address.ts";
import { decodeRecord, encodeRecord, sameRecord } from "../record.ts";
import { type Allocation, type ClaimOptions, type ClaimOutcome, type NetworkStore, type Owner, type Store } from "../store.ts";
import { createRevision, del, EtcdClient, get, type KeyValue, modRevision, prefixEnd, put, type TxnOp } from "./client.ts";
import { NetworkKeys, networksPrefix } from "./keys.ts";

class EtcdNetworkStore implements NetworkStore {
  readonly shared = true;
  readonly #etcd: EtcdClient;
  readonly #keys: NetworkKeys;

  constructor(etcd: EtcdClient, prefix: string, readonly network: string) {
    this.#etcd = etcd;
    this.#keys = new NetworkKeys(prefix, network);
  }

  async claim(ip: IP, record: Allocation, opts?: ClaimOptions): Promise<ClaimOutcome> {
    const key = this.#keys.ip(ip);
    const value = encodeRecord(record);
    const writes: TxnOp[] = [put(key, value), put(this.#keys.owner(record, ip), value)];
    if (opts?.advanceCursor) writes.push(put(this.#keys.cursor(record.node, record.rangeSet), ipToHex(ip)));
    const r = await this.#etcd.txn()
      .if(createRevision(key), "==", 0n)
      .then(...writes)
      .else(get(key))
      .commit();
    if (r.succeeded) return { claimed: true };
    const held = r.responses[0];
    const kv = held?.kind === "range" ? held.kvs[0] : undefined;
    return { claimed: false, holder: kv ? decodeRecord(kv.value) : undefined };
  }

  async heldBetween(family: 4 | 6, from: bigint, to: bigint, limit: number): Promise<IP[]> {
    const start = this.#keys.ip({ family, value: from });
    const end = `${this.#keys.ip({ family, value: to })}\u0000`;
    const { kvs } = await this.#etcd.range(start, { end, limit, keysOnly: true });
    return kvs.map((kv) => this.#keys.ipOf(kv.key)).filter((ip): ip is IP => ip !== undefined);
  }

  async #ownerEntries(owner: Owner): Promise<KeyValue[]> {
    return (await this.#etcd.range(this.#keys.ownerPrefix(owner), { prefix: true })).kvs;
  }

  async findByOwner(owner: Owner): Promise<Allocation[]> {
    return (await this.#ownerEntries(owner)).map((kv) => decodeRecord(kv.value)).filter((a): a is Allocation => !!a);
  }

  /**
   * The owner index entry and the claim were written by one transaction, so they share a mod revision:
   * deleting both only while the claim still has it can never remove a later claim by someone else.
   */
  #releaseOps(entry: KeyValue, record: Allocation): { guard: string; rev: bigint; ops: TxnOp[] } | undefined {
    const ip = tryParseIP(record.ip);
    if (!ip) return undefined;
    const claimKey = this.#keys.ip(ip);
    return { guard: claimKey, rev: entry.modRevision, ops: [del(claimKey), del(entry.key)] };
  }

  async releaseByOwner(owner: Owner): Promise<Allocation[]> {
    const entries = await this.#ownerEntries(owner);
    if (entries.length === 0) return [];
    const plans = entries.map((kv) => ({ kv, record: decodeRecord(kv.value) }));
    const txn = this.#etcd.txn();
    const ops: TxnOp[] = [];
    for (const { kv, record } of plans) {
      const plan = record && this.#releaseOps(kv, record);
      if (plan) {
        txn.if(modRevision(plan.guard), "==", plan.rev);
        ops.push(...plan.ops);
      } else {
        ops.push(del(kv.key)); // an unreadable entry guards nothing: drop it
      }
    }
    const r = await txn.then(...ops).commit();
    if (r.succeeded) return plans.map((p) => p.record).filter((a): a is Allocation => !!a);
    // Rare: some claim changed under us (a concurrent release). Settle each entry on its own.
    const released: Allocation[] = [];
    for (const { kv, record } of plans) {
      if (record && (await this.#releaseEntry(kv, record))) released.push(record);
    }
    return released;
  }

  async #releaseEntry(entry: KeyValue, record: Allocation): Promise<boolean> {
    const plan = this.#releaseOps(entry, record);
    if (!plan) return false;
    const r = await this.#etcd.txn().if(modRevision(plan.guard), "==", plan.rev).then(...plan.ops)
      .else(del(entry.key)).commit();
    return r.succeeded;
  }

  async releaseIfUnchanged(record: Allocation): Promise<boolean> {
    const ip = tryParseIP(record.ip);
    if (!ip) return false;
    const entry = (await this.#etcd.range(this.#keys.owner(record, ip))).kvs[0];
    const current = entry && decodeRecord(entry.value);
    if (!entry || !current || !sameRecord(current, record)) return false;
    const plan = this.#releaseOps(entry, record)!;
    const r = await this.#etcd.txn().if(modRevision(plan.guard), "==", plan.rev).then(...plan.ops).commit();
    return r.succeeded;
  }

  async get(ip: IP): Promise<Allocation | undefined> {
    const kv = (await this.#etcd.range(this.#keys.ip(ip))).kvs[0];
    return kv && decodeRecord(kv.value);
  }

  async list(): Promise<Allocation[]> {
    const { kvs } = await this.#etcd.range(this.#keys.ips(), { prefix: true });
    return kvs.map((kv) => decodeRecord(kv.value)).filter((a): a is Allocation => !!a);
  }

  async cursor(node: string, rangeSet: number): Promise<IP | undefined> {
    const kv = (await this.#etcd.range(this.#keys.cursor(node, rangeSet))).kvs[0];
    return kv && ipFromHex(kv.value);
  }

  sweep(): Promise<void> {
    return Promise.resolve(); // every etcd change is one transaction: nothing half-written to clear
  }
}

export class EtcdStore implements Store {
  readonly location: string;
  readonly #etcd: EtcdClient;

  private constructor(etcd: EtcdClient, readonly prefix: string) {
    this.#etcd = etcd;
    this.location = `etcd ${etcd.endpoints.join(",")} (prefix "${prefix}")`;
  }

  static async open(config: EtcdStoreConfig): Promise<EtcdStore> {
    const etcd = await EtcdClient.create({
      endpoints: config.endpoints,
      certFile: config.certFile,
      keyFile: config.keyFile,
      caFile: config.caFile,
    });
    return new EtcdStore(etcd, config.prefix);
  }

  get client(): EtcdClient {
    return this.#etcd;
  }

  network(name: string): NetworkStore {
    return new EtcdNetworkStore(this.#etcd, this.prefix, name);
  }

  async networks(): Promise<string[]> {
    const base = networksPrefix(this.prefix);
    const names = new Set<string>();
    const { kvs } = await this.#etcd.range(base, { end: prefixEnd(base), keysOnly: true });
    for (const kv of kvs) names.add(kv.key.slice(base.length).split("/")[0]!);
    return [...names].sort();
  }

  async ping(): Promise<void> {
    await this.#etcd.range(`${this.prefix}/`, { prefix: true, countOnly: true });
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
