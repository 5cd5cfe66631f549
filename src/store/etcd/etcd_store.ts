// The cluster-wide store: one etcd key per address, claimed by a transaction that succeeds only if the
// key is absent and writes the record, the owner index entry (and the node's cursor) together.
// No lock of any kind: concurrent claimers of one address are ordered by etcd, exactly one wins.
// docs/etcd.md explains the layout and why each transaction is correct.
import type { EtcdStoreConfig } from "../../config/store_config.ts";
import { formatIP, type IP, ipFromHex, ipToHex, tryParseIP } from "../../ip/address.ts";
import { decodeRecord, decodeReservation, encodeRecord } from "../record.ts";
import { type AddSnapshot, type Allocation, type ClaimOptions, type ClaimOutcome, type CountRead, type ElectionOptions, type HeldRead, type HeldWindow,
  type LeaderFence, type Leadership, type NetworkStore, NotLeaderError, type Owner, type Reservation, type Store, type StoreChange,
  type WriteConditions, StoreError } from "../store.ts";
import { createRevision, del, EtcdClient, get, type KeyValue, modRevision, prefixEnd, put, type RangeOptions, type Txn, type TxnOp,
  value } from "./client.ts";
import { NetworkKeys, networksPrefix, reservationKey } from "./keys.ts";
import { type HeldLock, LegacyV02Keys, takeLock, usedDelete, usedEntries, usedWrites } from "./legacy_v02.ts";
import { EtcdLeaderElection } from "./leader.ts";
import { HeldMirror } from "./held_mirror.ts";
import type { FreeAddressFinder } from "../../ip/held_index.ts";

// The revision at which each record handed out by this store was read: compare-and-swap compares on
// it, so a record is matched exactly as stored, whatever fields a newer version may have added.
const readAt = new WeakMap<Allocation, bigint>();

function decodeKv(kv: KeyValue): Allocation | undefined {
  const rec = decodeRecord(kv.value);
  if (rec) readAt.set(rec, kv.modRevision);
  return rec;
}

/** Adds the compare "the claim at `key` is still exactly `record`": by revision when known, else by value. */
function ifUnchanged(txn: Txn, key: string, record: Allocation): Txn {
  const rev = readAt.get(record);
  return rev !== undefined ? txn.if(modRevision(key), "==", rev) : txn.if(value(key), "==", encodeRecord(record));
}

interface Fenced {
  readonly leader: Leadership;
  readonly fence: LeaderFence;
}

/** The fence a write must compare (WriteConditions.leader); throws when the caller no longer leads. */
function fenceOf(conditions: WriteConditions | undefined): Fenced | undefined {
  const leader = conditions?.leader;
  if (!leader) return undefined;
  const fence = leader.fence;
  if (!leader.isLeader || !fence) throw new NotLeaderError("Not the leader any more: the write was not made");
  return { leader, fence };
}

/**
 * Runs `txn` (the record compared, the writes set) only while the fence holds: the leader key is still the
 * one this leader created. A failed compare because of the fence throws; one because of the record is false.
 */
async function commitFenced(txn: Txn, fenced: Fenced | undefined): Promise<boolean> {
  if (!fenced) return (await txn.commit()).succeeded;
  const { leader, fence } = fenced;
  const r = await txn.if(createRevision(fence.key), "==", fence.revision).else(get(fence.key)).commit();
  if (r.succeeded) return true;
  const leaderKey = r.responses[0]?.kind === "range" ? r.responses[0].kvs[0] : undefined;
  if (leaderKey?.createRevision !== fence.revision) {
    leader.fenceLost?.(fence);
    throw new NotLeaderError(`Not the leader any more (the leader key "${fence.key}" is no longer this leader's): the write was not made`);
  }
  return false;
}

/** What is known of an address held in kube-ipam v0.2's layout only: its container ID. */
function v02HolderRecord(network: string, ip: string, containerID: string): Allocation {
  return { ip, network, containerID, ifName: "", node: "", kind: "migrated", rangeSet: -1, allocatedAt: "" };
}

function decodeAll(kvs: readonly KeyValue[]): Allocation[] {
  return kvs.map(decodeKv).filter((a): a is Allocation => a !== undefined);
}

class EtcdNetworkStore implements NetworkStore {
  readonly shared = true;
  readonly claimBeforeRead = true;
  readonly #etcd: EtcdClient;
  readonly #keys: NetworkKeys;
  readonly #prefix: string;
  /** kube-ipam v0.2's layout, honoured and written too (ipam.etcdConfig.legacyV02). */
  readonly #v02: LegacyV02Keys | undefined;

  /** The node agent's view of what is held (EtcdStore.open's `heldViews`). */
  readonly #mirror: HeldMirror | undefined;

  constructor(etcd: EtcdClient, prefix: string, readonly network: string, legacyV02 = false, mirror?: (keys: NetworkKeys) => HeldMirror) {
    this.#etcd = etcd;
    this.#prefix = prefix;
    this.#keys = new NetworkKeys(prefix, network);
    this.#v02 = legacyV02 ? new LegacyV02Keys(network) : undefined;
    this.#mirror = mirror?.(this.#keys);
  }

  heldView(): FreeAddressFinder | undefined {
    return this.#mirror?.view();
  }

  /** One transaction of reads: the owner index, the reservations and this node's cursors. */
  async prepareAdd(owner: Owner, node: string, rangeSetKeys: readonly string[]): Promise<AddSnapshot> {
    const cursorKeys = rangeSetKeys.map((key) => this.#keys.cursor(node, key));
    const r = await this.#etcd.txn()
      .then(
        get(this.#keys.ownerPrefix(owner), { prefix: true }),
        get(reservationKey(this.#prefix, ""), { prefix: true }),
        ...cursorKeys.map((k) => get(k)),
        ...(this.#v02 ? [get(this.#v02.usedPrefix(), { prefix: true, keysOnly: true })] : []),
      )
      .commit();
    const kvs = r.responses.map((x) => (x.kind === "range" ? x.kvs : []));
    const v02 = this.#v02;
    return {
      ...(v02 && {
        heldElsewhere: usedEntries(v02, kvs[2 + cursorKeys.length] ?? []).map((u) => tryParseIP(u.ip)).filter((ip): ip is IP => !!ip),
      }),
      held: decodeAll(kvs[0] ?? []),
      reservations: (kvs[1] ?? []).map((kv) => decodeReservation(kv.value, `etcd key "${kv.key}"`)),
      cursors: cursorKeys.map((_, i) => {
        const kv = kvs[2 + i]?.[0];
        return kv && ipFromHex(kv.value);
      }),
    };
  }

  /** The writes that make `record` the holder of `ip`: claim key, owner entry, sticky index. */
  #holderWrites(ip: IP, record: Allocation): TxnOp[] {
    const v = encodeRecord(record);
    const ops = [put(this.#keys.ip(ip), v)];
    if (!record.parkedAt) ops.push(put(this.#keys.owner(record, ip), v));
    if (record.kind === "sticky" && record.podNamespace && record.podName) {
      ops.push(put(this.#keys.sticky(record.podNamespace, record.podName, ip), this.#keys.ip(ip)));
    }
    return ops;
  }

  /** The owner index entry of `record`; parked records have none. */
  #ownerKey(ip: IP, record: Allocation): string | undefined {
    return record.parkedAt ? undefined : this.#keys.owner(record, ip);
  }

  /** The sticky index entry of `record`, if it is sticky. */
  #stickyKey(ip: IP, record: Allocation): string | undefined {
    return record.kind === "sticky" && record.podNamespace && record.podName
      ? this.#keys.sticky(record.podNamespace, record.podName, ip)
      : undefined;
  }

  /** Deletes of the index entries of `record` (not the claim key). */
  #indexDeletes(ip: IP, record: Allocation): TxnOp[] {
    return [this.#ownerKey(ip, record), this.#stickyKey(ip, record)].filter((k): k is string => !!k).map((k) => del(k));
  }

  async claim(ip: IP, record: Allocation, opts?: ClaimOptions): Promise<ClaimOutcome> {
    const v02 = this.#v02;
    if (!v02) return this.#claim(ip, record, opts);
    // v0.2 plugins claim with a get and a put under their lock: holding it, nothing of theirs interleaves.
    const lock = await takeLock(this.#etcd, v02);
    try {
      return await this.#claim(ip, record, opts, lock);
    } finally {
      await lock.release();
    }
  }

  async #claim(ip: IP, record: Allocation, opts?: ClaimOptions, v02Lock?: HeldLock): Promise<ClaimOutcome> {
    const outcome = await this.#claimOnce(ip, record, opts, v02Lock);
    // Won or lost, the address is held now: the view learns it before the watch says so.
    this.#mirror?.noteHeld(ip.family, ip.value);
    return outcome;
  }

  async #claimOnce(ip: IP, record: Allocation, opts?: ClaimOptions, v02Lock?: HeldLock): Promise<ClaimOutcome> {
    const key = this.#keys.ip(ip);
    const writes = this.#holderWrites(ip, record);
    if (opts?.cursorKey) writes.push(put(this.#keys.cursor(record.node, opts.cursorKey), ipToHex(ip)));
    const { readOnLoss: window, countOnLoss: counts } = opts ?? {};
    const v02 = v02Lock && this.#v02;
    let txn = this.#etcd.txn().if(createRevision(key), "==", 0n);
    if (v02) {
      // Held in v0.2's layout is held; and the claim commits only while the lock is still ours.
      txn = v02Lock.fence(txn.if(createRevision(v02.used(formatIP(ip))), "==", 0n));
      writes.push(...usedWrites(v02, formatIP(ip), record.containerID, record.rangeSet));
    }
    // The owner's entries as of this commit, read by the same transaction: an overlapping attempt of the
    // same ADD shows up here, and the allocator settles on the older claim (no extra round trip).
    const ownerRead = get(this.#keys.ownerPrefix(record), { prefix: true });
    const r = await txn
      .then(...writes, ...(record.parkedAt ? [] : [ownerRead]))
      .else(get(key), ...(window ? [get(...this.#heldRange(window))] : []), ...(counts ? this.#countReads(counts) : []),
        ...(v02 ? [get(v02.used(formatIP(ip)))] : []))
      .commit();
    if (r.succeeded) {
      const owned = r.responses.at(-1);
      const earlier = owned?.kind === "range" && !record.parkedAt
        ? owned.kvs.filter((kv) => kv.createRevision < r.revision).sort((a, b) => (a.createRevision < b.createRevision ? -1 : 1))
        : [];
      return earlier.length ? { claimed: true, earlier: decodeAll(earlier) } : { claimed: true };
    }
    const [held, ...reads] = r.responses;
    const kv = held?.kind === "range" ? held.kvs[0] : undefined;
    const windowRead = window ? reads.shift() : undefined;
    const v02Read = v02 ? reads.pop() : undefined;
    const v02Holder = v02Read?.kind === "range" ? v02Read.kvs[0] : undefined;
    if (v02 && !kv && !v02Holder) {
      throw new StoreError(`Lost kube-ipam v0.2's lock "${v02.lock()}" while claiming ${formatIP(ip)}: its lease expired or was revoked`, true);
    }
    return {
      claimed: false,
      holder: kv ? decodeKv(kv) : v02Holder && v02HolderRecord(this.network, formatIP(ip), v02Holder.value),
      window: window && windowRead?.kind === "range" ? this.#heldWindow(windowRead.kvs, window) : undefined,
      counts: counts ? reads.map((x) => (x.kind === "range" ? x.count : 0)) : undefined,
    };
  }

  /** The keys-only range read behind heldBetween. */
  #heldRange({ family, from, to, limit }: HeldRead): [string, RangeOptions] {
    const end = `${this.#keys.ip({ family, value: to })}\u0000`;
    return [this.#keys.ip({ family, value: from }), { end, limit, keysOnly: true }];
  }

  #heldWindow(kvs: readonly KeyValue[], { to, limit }: HeldRead): HeldWindow {
    const held = kvs.map((kv) => this.#keys.ipOf(kv.key)).filter((ip): ip is IP => ip !== undefined);
    return { held, through: kvs.length >= limit && held.length > 0 ? held[held.length - 1]!.value : to };
  }

  async heldBetween(family: 4 | 6, from: bigint, to: bigint, limit: number): Promise<HeldWindow> {
    const read: HeldRead = { family, from, to, limit };
    return this.#heldWindow((await this.#etcd.range(...this.#heldRange(read))).kvs, read);
  }

  /** One transaction of count-only range reads, one per block. */
  async countHeldBlocks(family: 4 | 6, from: bigint, to: bigint, size: bigint, blocks: number): Promise<number[]> {
    const r = await this.#etcd.txn().then(...this.#countReads({ family, from, to, size, blocks })).commit();
    return r.responses.map((x) => (x.kind === "range" ? x.count : 0));
  }

  #countReads({ family, from, to, size, blocks }: CountRead): TxnOp[] {
    const reads: TxnOp[] = [];
    for (let a = from, i = 0; a <= to && i < blocks; a += size, i++) {
      const b = a + size - 1n < to ? a + size - 1n : to;
      reads.push(get(this.#keys.ip({ family, value: a }), { end: `${this.#keys.ip({ family, value: b })}\u0000`, countOnly: true }));
    }
    return reads;
  }

  async #ownerEntries(owner: Owner): Promise<KeyValue[]> {
    return (await this.#etcd.range(this.#keys.ownerPrefix(owner), { prefix: true })).kvs;
  }

  /** The owner's entries, and those of its container imported from v0.2 (no interface): a DEL releases both. */
  async #releasableEntries(owner: Owner): Promise<KeyValue[]> {
    if (owner.ifName === "") return this.#ownerEntries(owner);
    const r = await this.#etcd.txn().then(
      get(this.#keys.ownerPrefix(owner), { prefix: true }),
      get(this.#keys.ownerPrefix({ containerID: owner.containerID, ifName: "" }), { prefix: true }),
    ).commit();
    return r.responses.flatMap((x) => (x.kind === "range" ? x.kvs : []));
  }

  async findByOwner(owner: Owner): Promise<Allocation[]> {
    return decodeAll(await this.#ownerEntries(owner));
  }

  /**
   * What DEL does to one owner entry: delete the claim, or park it when sticky. The entry and its claim
   * were written by one transaction and share a mod revision; the caller guards on it, so a claim made
   * later by someone else is never touched.
   */
  #releaseOps(entry: KeyValue, record: Allocation, now: string): { guard: string; ops: TxnOp[] } | undefined {
    const ip = tryParseIP(record.ip);
    if (!ip) return undefined;
    const claimKey = this.#keys.ip(ip);
    if (record.kind === "sticky") {
      const parked = { ...record, parkedAt: now };
      return { guard: claimKey, ops: [...this.#holderWrites(ip, parked), del(entry.key), ...this.#v02Ops(record, parked)] };
    }
    return { guard: claimKey, ops: [del(claimKey), ...this.#indexDeletes(ip, record), ...this.#v02Ops(record)] };
  }

  /**
   * kube-ipam v0.2's view of a release (`next` undefined) or a change of holder: in compatibility mode, and
   * for records imported from it, `used/IP` follows. A parked address keeps a value no v0.2 DEL matches.
   */
  #v02Ops(record: Allocation, next?: Allocation): TxnOp[] {
    const v02 = this.#v02 ?? (record.kind === "migrated" ? new LegacyV02Keys(this.network) : undefined);
    if (!v02) return [];
    if (!next) return [usedDelete(v02, record.ip)];
    if (!this.#v02) return [];
    const holder = next.parkedAt ? `kube-ipam-parked:${next.podNamespace}/${next.podName}` : next.containerID;
    return [put(v02.used(next.ip), holder)];
  }

  async releaseByOwner(owner: Owner): Promise<Allocation[]> {
    const entries = await this.#releasableEntries(owner);
    if (entries.length === 0) return [];
    const now = new Date().toISOString();
    const plans = entries.map((kv) => {
      const record = decodeKv(kv);
      return { kv, record, plan: record && this.#releaseOps(kv, record, now) };
    });
    const txn = this.#etcd.txn();
    const ops: TxnOp[] = [];
    for (const { kv, plan } of plans) {
      if (plan) {
        txn.if(modRevision(plan.guard), "==", kv.modRevision);
        ops.push(...plan.ops);
      } else {
        ops.push(del(kv.key)); // an unreadable entry guards nothing: drop it
      }
    }
    const r = await txn.then(...ops).commit();
    if (r.succeeded) return plans.map((p) => p.record).filter((a): a is Allocation => a !== undefined);
    // Rare: some claim changed under us (a concurrent release or takeover). Settle each entry on its own.
    const released: Allocation[] = [];
    for (const { kv, record, plan } of plans) {
      if (!record || !plan) continue;
      const one = await this.#etcd.txn().if(modRevision(plan.guard), "==", kv.modRevision).then(...plan.ops).commit();
      if (one.succeeded) {
        released.push(record);
      } else {
        // The claim moved on: drop this stale owner entry, unless it was rewritten meanwhile too.
        await this.#etcd.txn().if(modRevision(kv.key), "==", kv.modRevision).then(del(kv.key)).commit();
      }
    }
    return released;
  }

  async releaseIfUnchanged(record: Allocation, conditions?: WriteConditions): Promise<boolean> {
    const fence = fenceOf(conditions);
    const ip = tryParseIP(record.ip);
    if (!ip) return false;
    const key = this.#keys.ip(ip);
    const txn = ifUnchanged(this.#etcd.txn(), key, record).then(del(key), ...this.#indexDeletes(ip, record), ...this.#v02Ops(record));
    return commitFenced(txn, fence);
  }

  async replace(expected: Allocation, next: Allocation, conditions?: WriteConditions): Promise<boolean> {
    const fence = fenceOf(conditions);
    const ip = tryParseIP(expected.ip);
    if (!ip || next.ip !== expected.ip) return false;
    const key = this.#keys.ip(ip);
    // Index entries `next` no longer has; etcd refuses a txn that names one key twice, so an entry
    // that `next` rewrites is not deleted first.
    const writes = this.#holderWrites(ip, next);
    const rewritten = new Set(writes.map((op) => JSON.stringify(op.request.key)));
    const stale = this.#indexDeletes(ip, expected).filter((op) => !rewritten.has(JSON.stringify(op.request.key)));
    return commitFenced(ifUnchanged(this.#etcd.txn(), key, expected).then(...stale, ...writes, ...this.#v02Ops(expected, next)), fence);
  }

  async findSticky(podNamespace: string, podName: string): Promise<Allocation[]> {
    const index = await this.#etcd.range(this.#keys.stickyPrefix(podNamespace, podName), { prefix: true });
    if (index.kvs.length === 0) return [];
    // The claims the index points at, all in one transaction of reads.
    const claims = await this.#etcd.txn().then(...index.kvs.map((kv) => get(kv.value))).commit();
    return claims.responses
      .flatMap((r) => (r.kind === "range" ? r.kvs : []))
      .map(decodeKv)
      .filter((rec): rec is Allocation =>
        rec !== undefined && rec.kind === "sticky" && rec.podNamespace === podNamespace && rec.podName === podName
      );
  }

  async get(ip: IP): Promise<Allocation | undefined> {
    const kv = (await this.#etcd.range(this.#keys.ip(ip))).kvs[0];
    return kv && decodeKv(kv);
  }

  async list(): Promise<Allocation[]> {
    return decodeAll((await this.#etcd.range(this.#keys.ips(), { prefix: true })).kvs);
  }

  async cursor(node: string, rangeSetKey: string): Promise<IP | undefined> {
    const kv = (await this.#etcd.range(this.#keys.cursor(node, rangeSetKey))).kvs[0];
    return kv && ipFromHex(kv.value);
  }

  sweep(): Promise<void> {
    return Promise.resolve(); // every etcd change is one transaction: nothing half-written to clear
  }
}

export interface EtcdStoreOptions {
  /**
   * Keep a view of each network's held addresses, listed once and then watched (held_mirror.ts), from which
   * ADDs pick the address to claim: for a long-lived process (the node agent), not a plugin run once.
   */
  readonly heldViews?: boolean;
}

export class EtcdStore implements Store {
  readonly location: string;
  readonly #etcd: EtcdClient;
  /** One per network, started by the first request for it (heldViews only). */
  readonly #mirrors: Map<string, HeldMirror> | undefined;

  private constructor(etcd: EtcdClient, readonly prefix: string, readonly legacyV02 = false, options: EtcdStoreOptions = {}) {
    this.#etcd = etcd;
    this.location = `etcd ${etcd.endpoints.join(",")} (prefix "${prefix}")`;
    this.#mirrors = options.heldViews ? new Map() : undefined;
  }

  static async open(config: EtcdStoreConfig, options: EtcdStoreOptions = {}): Promise<EtcdStore> {
    const etcd = await EtcdClient.create({
      endpoints: config.endpoints,
      certFile: config.certFile,
      keyFile: config.keyFile,
      caFile: config.caFile,
    });
    return new EtcdStore(etcd, config.prefix, config.legacyV02 === true, options);
  }

  get retries(): number {
    return this.#etcd.retries;
  }

  elect(identity: string, opts?: ElectionOptions): Leadership {
    return new EtcdLeaderElection(this.#etcd, `${this.prefix}/controller/leader`, identity, opts);
  }

  /** Claims, releases and parkings under `<prefix>/networks/`, from etcd's watch (with prev_kv). */
  watchChanges(signal: AbortSignal, onChange: (c: StoreChange) => void, onReconnect?: (e: unknown) => void): Promise<void> {
    const base = networksPrefix(this.prefix);
    return this.#etcd.watch(base, { end: prefixEnd(base), signal, onReconnect }, (events) => {
      for (const e of events) {
        const [network, section] = e.key.slice(base.length).split("/");
        if (section !== "ips" || !network) continue;
        if (e.type === "DELETE") {
          onChange({ network, kind: "released", record: e.prevValue === undefined ? undefined : decodeRecord(e.prevValue) });
          continue;
        }
        const rec = decodeRecord(e.value);
        if (!rec) continue;
        const prev = e.prevValue === undefined ? undefined : decodeRecord(e.prevValue);
        if (!rec.parkedAt) onChange({ network, kind: "allocated", record: prev ? { ...rec, conflicts: 0 } : rec });
        else if (!prev?.parkedAt) onChange({ network, kind: "released", record: rec, parked: true });
      }
    });
  }

  /** Any change under `<prefix>/reserved/` (the dashboard). */
  watchReservations(signal: AbortSignal, onChange: () => void, onReconnect?: (e: unknown) => void): Promise<void> {
    const base = reservationKey(this.prefix, "");
    return this.#etcd.watch(base, { end: prefixEnd(base), signal, onReconnect }, () => onChange());
  }

  async legacyV02Holders(network: string): Promise<{ ip: string; containerID: string }[]> {
    const keys = new LegacyV02Keys(network);
    return usedEntries(keys, (await this.#etcd.range(keys.usedPrefix(), { prefix: true })).kvs);
  }

  network(name: string): NetworkStore {
    const mirrors = this.#mirrors;
    const mirror = mirrors && ((keys: NetworkKeys) => {
      let m = mirrors.get(name);
      if (!m) mirrors.set(name, m = new HeldMirror(this.#etcd, keys));
      return m;
    });
    return new EtcdNetworkStore(this.#etcd, this.prefix, name, this.legacyV02, mirror);
  }

  async networks(): Promise<string[]> {
    const base = networksPrefix(this.prefix);
    const names = new Set<string>();
    const { kvs } = await this.#etcd.range(base, { end: prefixEnd(base), keysOnly: true });
    for (const kv of kvs) names.add(kv.key.slice(base.length).split("/")[0]!);
    return [...names].sort();
  }

  async reservations(): Promise<Reservation[]> {
    const { kvs } = await this.#etcd.range(reservationKey(this.prefix, ""), { prefix: true });
    return kvs.map((kv) => decodeReservation(kv.value, `etcd key "${kv.key}"`));
  }

  async putReservation(r: Reservation): Promise<void> {
    await this.#etcd.put(reservationKey(this.prefix, r.name), JSON.stringify(r));
  }

  async deleteReservation(name: string): Promise<boolean> {
    return (await this.#etcd.delete(reservationKey(this.prefix, name))).deleted > 0;
  }

  /** Reads answer, and no alarm stops writes: under NOSPACE (or CORRUPT) etcd serves reads and refuses ADD's claims. */
  async ping(): Promise<void> {
    const [, alarms] = await Promise.all([this.#etcd.range(`${this.prefix}/`, { prefix: true, countOnly: true }), this.#etcd.alarms()]);
    if (alarms.length > 0) {
      const raised = [...new Set(alarms.map((a) => a.alarm))].join(", ");
      throw new StoreError(`etcd at ${this.#etcd.endpoints.map((e) => `"${e}"`).join(", ")} has raised alarm ${raised}` +
        (raised.includes("NOSPACE") ? ": it is out of space (--quota-backend-bytes) and refuses every write that adds data, " +
          "until an operator compacts and defragments it and disarms the alarm (etcdctl alarm disarm)" : ""), true);
    }
  }

  close(): Promise<void> {
    for (const m of this.#mirrors?.values() ?? []) m.stop();
    this.#mirrors?.clear();
    return Promise.resolve();
  }
}
