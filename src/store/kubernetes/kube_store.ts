// The store that needs nothing but the Kubernetes API: one IPAllocation object per held address, named
// after the network and the address. A claim is a create, which the API refuses with 409 AlreadyExists when
// anyone holds the address; a release is a delete with preconditions on the UID and resourceVersion read; a
// change of holder an update of that resourceVersion. No lock, no lease, nothing that a plugin killed at any
// instant can leave half done: every change is one request on one object. Labels index the objects (owner,
// sticky pod, block of 64 addresses), so each read selects what it needs instead of reading a pool.
// docs/kubernetes-store.md explains the objects and why each operation is correct.
import { existsSync } from "node:fs";
import { DEFAULT_KUBECONFIG, type KubernetesStoreConfig } from "../../config/store_config.ts";
import { type IP, ipFromHex, ipToHex, tryParseIP } from "../../ip/address.ts";
import type { FreeAddressFinder } from "../../ip/held_index.ts";
import { KubeClient } from "../../k8s/client.ts";
import { inClusterConfig, loadKubeConfig } from "../../k8s/kubeconfig.ts";
import { KubeConfigError, KubeUnavailableError } from "../../k8s/errors.ts";
import { decodeReservation, identical } from "../record.ts";
import { type AddSnapshot, type Allocation, type ClaimOptions, type ClaimOutcome, type ElectionOptions, type HeldWindow, type Leadership,
  type NetworkStore, NotLeaderError, type Owner, type Reservation, sameOwner, type Store, type StoreChange, type WriteConditions } from "../store.ts";
import { type Freshness, ObjectApi, type Precondition } from "./api.ts";
import { KubeLeaderElection } from "./leader.ts";
import { KubeHeldMirror } from "./held_mirror.ts";
import { outsideAnyDeadline } from "../../lib/deadline.ts";
import { ALLOCATIONS, allocationObject, CURSORS, cursorObject, type KubeObject, recordOf, RESERVATIONS, reservationObject } from "./objects.ts";
import { allocationName, BLOCK_BITS, BLOCK_SIZE, blockOf, containerHash, cursorName, dnsLabel, ipOfName, LABEL_BLOCK, LABEL_CONTAINER,
  LABEL_NETWORK, LABEL_OWNER, LABEL_STICKY, ownerHash, reservationName, stickyHash, ANNOTATION_NETWORK } from "./names.ts";

// The object each record handed out by this store was read from: compare-and-swap names its UID and
// resourceVersion, so a record is matched exactly as stored.
const readAt = new WeakMap<Allocation, Precondition>();

function decodeObject(object: KubeObject): Allocation | undefined {
  const rec = recordOf(object);
  if (rec) readAt.set(rec, { uid: object.metadata.uid, resourceVersion: object.metadata.resourceVersion });
  return rec;
}

/** The resourceVersion a record was read at, as the number it is (an etcd revision). */
function versionOf(record: Allocation): bigint | undefined {
  const v = readAt.get(record)?.resourceVersion;
  return v && /^\d+$/.test(v) ? BigInt(v) : undefined;
}

function decodeAll(objects: readonly KubeObject[], network: string): Allocation[] {
  return objects.map(decodeObject).filter((a): a is Allocation => a !== undefined && a.network === network);
}

/** How many blocks of 64 addresses one count request lists at most; larger blocks are counted as unknown. */
const COUNT_BLOCKS = 16;

class KubeNetworkStore implements NetworkStore {
  readonly shared = true;
  readonly claimBeforeRead = true;
  readonly #store: KubeStore;
  readonly #allocations: ObjectApi;
  readonly #cursors: ObjectApi;
  readonly #mirror: KubeHeldMirror | undefined;
  readonly #networkLabel: string;

  constructor(store: KubeStore, readonly network: string, mirror?: KubeHeldMirror) {
    this.#store = store;
    this.#allocations = store.allocations;
    this.#cursors = store.cursors;
    this.#mirror = mirror;
    this.#networkLabel = `${LABEL_NETWORK}=${dnsLabel(network)}`;
  }

  heldView(): FreeAddressFinder | undefined {
    return this.#mirror?.view();
  }

  #select(label: string, value: string): string {
    return `${this.#networkLabel},${label}=${value}`;
  }

  async #byLabel(label: string, value: string, freshness: Freshness): Promise<Allocation[]> {
    return decodeAll((await this.#allocations.list(this.#select(label, value), freshness)).items, this.network);
  }

  /**
   * The owner's records, the reservations and this node's cursors, read side by side, all from the API
   * server's cache: an earlier attempt's claim that the cache has not seen yet is found by the check after
   * the claim (see #claim), which reads a version at least as new as the claim.
   */
  async prepareAdd(owner: Owner, node: string, rangeSetKeys: readonly string[]): Promise<AddSnapshot> {
    // The agent's view knows an owner it has never seen holds nothing (as far as the view goes): no read.
    const known = this.#mirror?.mayHold(ownerHash(owner)) === false;
    const [held, reservations, cursors] = await Promise.all([
      known ? Promise.resolve([]) : this.#ownedBy(owner, "cached"),
      this.#store.reservations("cached"),
      rangeSetKeys.length ? this.#cursorsOf(node) : Promise.resolve(undefined),
    ]);
    return { held, reservations, cursors: rangeSetKeys.map((k) => cursors?.[k]) };
  }

  async #cursorsOf(node: string): Promise<Readonly<Record<string, IP | undefined>> | undefined> {
    const name = cursorName(this.network, node);
    const remembered = this.#store.cursorMemo?.get(name);
    if (remembered) return remembered;
    const object = await this.#cursors.get(name);
    const spec = object?.spec as { cursors?: Record<string, unknown> } | undefined;
    const cursors = Object.fromEntries(Object.entries(spec?.cursors ?? {}).map(([k, v]) => [k, typeof v === "string" ? ipFromHex(v) : undefined]));
    this.#store.cursorMemo?.set(name, cursors);
    return cursors;
  }

  async claim(ip: IP, record: Allocation, opts?: ClaimOptions): Promise<ClaimOutcome> {
    // Won or lost, the address will be held: the view learns it before the claim is sent, so that the other
    // ADDs this agent serves at the same moment try other addresses instead of losing this one's race.
    this.#mirror?.noteHeld(ip.family, ip.value);
    try {
      return await this.#claim(ip, record, opts);
    } catch (e) {
      this.#mirror?.noteFree(ip.family, ip.value); // not known to be held after all
      throw e;
    }
  }

  async #claim(ip: IP, record: Allocation, opts?: ClaimOptions): Promise<ClaimOutcome> {
    const created = await this.#allocations.create(allocationObject(record, ip));
    if ("object" in created) {
      const version = created.object.metadata.resourceVersion;
      readAt.set(record, { uid: created.object.metadata.uid, resourceVersion: version });
      // The owner's records as of now: an overlapping attempt of the same ADD shows up here, and the
      // allocator settles on the older claim, the one the API created first (resourceVersions of one
      // server are etcd revisions: they order writes). The cursor moves meanwhile (a lost cursor write
      // costs only round-robin order, never an address).
      const [owned] = await Promise.all([
        record.parkedAt ? Promise.resolve([]) : this.#ownedBy(record, { notOlderThan: version }),
        opts?.cursorKey ? this.#moveCursor(record.node, opts.cursorKey, ip) : Promise.resolve(),
      ]);
      const earlier = owned
        .map((a) => ({ a, at: versionOf(a) }))
        .filter(({ a, at }) => a.ip !== record.ip && at !== undefined && at < BigInt(version))
        .sort((x, y) => (x.at! < y.at! ? -1 : 1))
        .map(({ a }) => a);
      return earlier.length ? { claimed: true, earlier } : { claimed: true };
    }
    const window = opts?.readOnLoss;
    const [holder, read] = await Promise.all([
      this.get(ip),
      window ? this.heldBetween(window.family, window.from, window.to, window.limit) : Promise.resolve(undefined),
    ]);
    return { claimed: false, holder, window: read };
  }

  async #moveCursor(node: string, key: string, ip: IP): Promise<void> {
    const name = cursorName(this.network, node);
    const memo = this.#store.cursorMemo;
    if (memo) memo.set(name, { ...memo.get(name), [key]: ip });
    const cursors = { [key]: ipToHex(ip) };
    const patched = await this.#cursors.merge(name, { spec: { cursors } });
    if (!("gone" in patched)) return;
    const created = await this.#cursors.create(cursorObject(this.network, node, cursors));
    if ("exists" in created) await this.#cursors.merge(name, { spec: { cursors } });
  }

  /**
   * The held addresses of the blocks of 64 from `from`'s on, as many blocks as `limit` fills: one list of
   * names only, selected by the block label.
   */
  async heldBetween(family: 4 | 6, from: bigint, to: bigint, limit: number): Promise<HeldWindow> {
    const first = from >> BLOCK_BITS;
    const wanted = first + BigInt(Math.max(1, Math.ceil(limit / Number(BLOCK_SIZE)))) - 1n;
    const last = (to >> BLOCK_BITS) < wanted ? to >> BLOCK_BITS : wanted;
    const held = await this.#heldInBlocks(family, first, last);
    const through = ((last + 1n) << BLOCK_BITS) - 1n < to ? ((last + 1n) << BLOCK_BITS) - 1n : to;
    return { held: held.filter((ip) => ip.value >= from && ip.value <= through), through };
  }

  async #heldInBlocks(family: 4 | 6, first: bigint, last: bigint): Promise<IP[]> {
    const blocks: string[] = [];
    for (let b = first; b <= last; b++) blocks.push(blockOf(family, b << BLOCK_BITS));
    // From the cache: a claim decides, the scan only picks what to try.
    const objects = await this.#allocations.listMetadata(`${this.#networkLabel},${LABEL_BLOCK} in (${blocks.join(",")})`, "cached");
    return objects
      .filter((o) => o.metadata.annotations?.[ANNOTATION_NETWORK] === this.network)
      .map((o) => ipOfName(o.metadata.name))
      .filter((ip): ip is IP => ip !== undefined && ip.family === family)
      .sort((a, b) => (a.value < b.value ? -1 : a.value > b.value ? 1 : 0));
  }

  /**
   * Counted from one list of the names in blocks of 64, up to 16 of them. The API counts nothing by
   * itself, so a larger block is answered as 0 (not known to be full): the allocator then looks into it,
   * which costs requests, never an address. The node agent's view (heldView) spares all of this.
   */
  async countHeldBlocks(family: 4 | 6, from: bigint, to: bigint, size: bigint, blocks: number): Promise<number[]> {
    const counts: number[] = [];
    const span = size * BigInt(blocks);
    if (size % BLOCK_SIZE !== 0n || from % BLOCK_SIZE !== 0n || span > BLOCK_SIZE * BigInt(COUNT_BLOCKS)) {
      for (let a = from, i = 0; a <= to && i < blocks; a += size, i++) counts.push(0);
      return counts;
    }
    const end = from + span - 1n < to ? from + span - 1n : to;
    const held = await this.#heldInBlocks(family, from >> BLOCK_BITS, end >> BLOCK_BITS);
    for (let a = from, i = 0; a <= to && i < blocks; a += size, i++) {
      const b = a + size - 1n;
      counts.push(held.filter((ip) => ip.value >= a && ip.value <= b && ip.value <= to).length);
    }
    return counts;
  }

  findByOwner(owner: Owner): Promise<Allocation[]> {
    return this.#ownedBy(owner, "current");
  }

  #ownedBy(owner: Owner, freshness: Freshness): Promise<Allocation[]> {
    return this.#byLabel(LABEL_OWNER, ownerHash(owner), freshness)
      .then((records) => records.filter((r) => sameOwner(r, owner) && !r.parkedAt));
  }

  /**
   * Each of the owner's records (and those of its container imported from v0.2, without an interface) is
   * deleted, or parked when sticky, by its own conditional request: one the holder changed meanwhile (a
   * takeover) is left to its new holder.
   */
  async releaseByOwner(owner: Owner): Promise<Allocation[]> {
    // As of now: a DEL right after its ADD must find that ADD's claim.
    const records = (await this.#byLabel(LABEL_CONTAINER, containerHash(owner.containerID), "current"))
      .filter((r) => r.containerID === owner.containerID && (r.ifName === owner.ifName || r.ifName === "") && !r.parkedAt);
    const now = new Date().toISOString();
    const released = await Promise.all(records.map((r) =>
      r.kind === "sticky" ? this.replace(r, { ...r, parkedAt: now }) : this.releaseIfUnchanged(r)
    ));
    return records.filter((_, i) => released[i]);
  }

  async #precondition(record: Allocation, ip: IP): Promise<Precondition | undefined> {
    const known = readAt.get(record);
    if (known) return known;
    const current = await this.#allocations.get(allocationName(this.network, ip));
    const rec = current && recordOf(current);
    return rec && identical(rec, record) ? { uid: current.metadata.uid, resourceVersion: current.metadata.resourceVersion } : undefined;
  }

  async releaseIfUnchanged(record: Allocation, conditions?: WriteConditions): Promise<boolean> {
    const ip = tryParseIP(record.ip);
    if (!ip || record.network !== this.network) return false;
    const precondition = await this.#precondition(record, ip);
    if (!precondition) return false;
    await this.#store.fence(conditions);
    return (await this.#allocations.delete(allocationName(this.network, ip), precondition)) === "deleted";
  }

  async replace(expected: Allocation, next: Allocation, conditions?: WriteConditions): Promise<boolean> {
    const ip = tryParseIP(expected.ip);
    if (!ip || next.ip !== expected.ip || expected.network !== this.network) return false;
    const precondition = await this.#precondition(expected, ip);
    if (!precondition) return false;
    await this.#store.fence(conditions);
    const r = await this.#allocations.update(allocationObject(next, ip, precondition.resourceVersion));
    if (!("object" in r)) return false;
    readAt.set(next, { uid: r.object.metadata.uid, resourceVersion: r.object.metadata.resourceVersion });
    return true;
  }

  async findSticky(podNamespace: string, podName: string): Promise<Allocation[]> {
    return (await this.#byLabel(LABEL_STICKY, stickyHash(podNamespace, podName), "current"))
      .filter((r) => r.kind === "sticky" && r.podNamespace === podNamespace && r.podName === podName);
  }

  async get(ip: IP): Promise<Allocation | undefined> {
    const object = await this.#allocations.get(allocationName(this.network, ip));
    const rec = object && decodeObject(object);
    return rec?.network === this.network ? rec : undefined;
  }

  async list(): Promise<Allocation[]> {
    return decodeAll((await this.#allocations.list(this.#networkLabel)).items, this.network);
  }

  async cursor(node: string, rangeSetKey: string): Promise<IP | undefined> {
    return (await this.#cursorsOf(node))?.[rangeSetKey];
  }

  sweep(): Promise<void> {
    return Promise.resolve(); // every change is one request on one object: nothing half-written to clear
  }
}

export interface KubeStoreOptions {
  /** Keep a watch-fed view of each network's held addresses (the node agent). */
  readonly heldViews?: boolean;
}

/** The Lease the controllers elect their leader with. */
const LEASE_NAME = "kube-ipam-controller";

export class KubeStore implements Store {
  readonly location: string;
  readonly allocations: ObjectApi;
  readonly cursors: ObjectApi;
  readonly #reservations: ObjectApi;
  readonly #kube: KubeClient;
  readonly #leaseNamespace: string;
  readonly #mirrors: Map<string, KubeHeldMirror> | undefined;
  readonly #elections = new Set<KubeLeaderElection>();
  /**
   * The agent's memory of its nodes' cursors (IPCursor name -> cursors), read once and then written through.
   * A cursor orders the search only: one moved meanwhile by a plugin that ran without the agent costs
   * round-robin order, never an address.
   */
  readonly cursorMemo: Map<string, Readonly<Record<string, IP | undefined>>> | undefined;
  /** The agent's watch-fed copy of the reservations; undefined until listed, and after a break. */
  #reservationView: Reservation[] | undefined;
  readonly #stopped = new AbortController();

  constructor(kube: KubeClient, leaseNamespace: string, options: KubeStoreOptions = {}) {
    this.#kube = kube;
    this.#leaseNamespace = leaseNamespace;
    this.location = `Kubernetes API "${kube.server}"`;
    this.allocations = new ObjectApi(kube, ALLOCATIONS, "IPAllocation");
    this.cursors = new ObjectApi(kube, CURSORS, "IPCursor");
    this.#reservations = new ObjectApi(kube, RESERVATIONS, "IPReservation");
    this.#mirrors = options.heldViews ? new Map() : undefined;
    this.cursorMemo = options.heldViews ? new Map() : undefined;
    if (options.heldViews) void outsideAnyDeadline(() => this.#watchReservationView());
  }

  /**
   * Keeps #reservationView current: listed, then each change applied; none while a reservation cannot be read
   * (the API's own list then reports it, by name) and from a break until the next list.
   */
  async #watchReservationView(): Promise<void> {
    const byName = new Map<string, Reservation>();
    const damaged = new Set<string>();
    const publish = () => {
      this.#reservationView = damaged.size ? undefined : [...byName.values()];
    };
    await watchCollection(this.#reservations, this.#stopped.signal, (type, object) => {
      const name = object.metadata.name;
      byName.delete(name);
      damaged.delete(name);
      if (type !== "DELETED") {
        try {
          byName.set(name, decodeReservation(JSON.stringify(object.spec ?? null), `IPReservation "${name}"`));
        } catch {
          damaged.add(name);
        }
      }
      publish();
    }, () => {
      this.#reservationView = undefined;
    }, () => {
      byName.clear();
      damaged.clear();
      publish();
    });
  }

  /** The API that kubeSource picks; none is code 7 naming ipam.kubeConfig. */
  static async open(config: KubernetesStoreConfig, options: KubeStoreOptions = {}): Promise<KubeStore> {
    const source = kubeSource(config, { inPod: !!process.env.KUBERNETES_SERVICE_HOST, exists: existsSync });
    if (source.kind === "none") {
      throw new KubeConfigError("none", 'ipam.datastore is "kubernetes" but no Kubernetes API is configured: set ipam.kubeConfig ' +
        "to a kubeconfig file (the DaemonSet's install-cni writes one), or run inside a pod");
    }
    const kubeconfig = source.kind === "in-cluster" ? inClusterConfig() : await loadKubeConfig(source.path);
    return new KubeStore(new KubeClient(kubeconfig), config.leaseNamespace, options);
  }

  /** Throws NotLeaderError unless the leader of `conditions` still holds its term (see leader.ts). */
  async fence(conditions: WriteConditions | undefined): Promise<void> {
    const leader = conditions?.leader;
    if (!leader) return;
    const fence = leader.fence;
    if (!leader.isLeader || !fence) throw new NotLeaderError("Not the leader any more: the write was not made");
    const election = this.#elections.has(leader as KubeLeaderElection) ? leader as KubeLeaderElection : undefined;
    if (!election) throw new NotLeaderError("The leadership given was not won on this store: the write was not made");
    await election.fenceCheck(fence);
  }

  elect(identity: string, opts?: ElectionOptions): Leadership {
    const election = new KubeLeaderElection(this.#kube, this.#leaseNamespace, LEASE_NAME, identity, opts);
    this.#elections.add(election);
    return election;
  }

  network(name: string): NetworkStore {
    let mirror: KubeHeldMirror | undefined;
    if (this.#mirrors) {
      mirror = this.#mirrors.get(name);
      if (!mirror) this.#mirrors.set(name, mirror = new KubeHeldMirror(this.allocations, name));
    }
    return new KubeNetworkStore(this, name, mirror);
  }

  async networks(): Promise<string[]> {
    const objects = await this.allocations.listMetadata(LABEL_NETWORK);
    return [...new Set(objects.map((o) => o.metadata.annotations?.[ANNOTATION_NETWORK]).filter((n): n is string => !!n))].sort();
  }

  /** "cached" for an ADD (a reservation made a moment ago may be missed, as by an ADD already under way). */
  async reservations(freshness?: Freshness): Promise<Reservation[]> {
    if (freshness === "cached" && this.#reservationView) return this.#reservationView;
    const { items } = await this.#reservations.list(undefined, freshness);
    return items.map((o) => decodeReservation(JSON.stringify(o.spec ?? null), `IPReservation "${o.metadata.name}"`));
  }

  async putReservation(r: Reservation): Promise<void> {
    for (;;) {
      const created = await this.#reservations.create(reservationObject(r));
      if ("object" in created) return;
      const current = await this.#reservations.get(reservationName(r.name));
      if (!current) continue; // deleted in between: create again
      const updated = await this.#reservations.update(reservationObject(r, current.metadata.resourceVersion));
      if ("object" in updated) return;
    }
  }

  async deleteReservation(name: string): Promise<boolean> {
    const current = await this.#reservations.get(reservationName(name));
    const spec = current?.spec as { name?: unknown } | undefined;
    if (!current || spec?.name !== name) return false;
    return (await this.#reservations.delete(current.metadata.name, { uid: current.metadata.uid, resourceVersion: current.metadata.resourceVersion })) ===
      "deleted";
  }

  /** The API answers, kube-ipam's resources are installed and this identity may list them. */
  async ping(): Promise<void> {
    await this.allocations.listMetadata(`${LABEL_NETWORK}=kube-ipam-ping`);
  }

  /** Claims, releases and parkings of every network, from a list and a watch of the IPAllocations. */
  watchChanges(signal: AbortSignal, onChange: (c: StoreChange) => void, onReconnect?: (e: unknown) => void): Promise<void> {
    return watchAllocations(this.allocations, signal, onChange, onReconnect);
  }

  watchReservations(signal: AbortSignal, onChange: () => void, onReconnect?: (e: unknown) => void): Promise<void> {
    return watchCollection(this.#reservations, signal, () => onChange(), onReconnect, undefined, true);
  }

  close(): Promise<void> {
    this.#stopped.abort();
    for (const m of this.#mirrors?.values() ?? []) m.stop();
    this.#mirrors?.clear();
    return Promise.resolve();
  }
}

/**
 * Which API the store uses: `ipam.kubeConfig` when set, unless this is a pod that does not have that file
 * (the controller reads the nodes' network config, whose kubeConfig is a host path); then, inside a pod, the
 * pod's service account; else the seed's default kubeconfig when it exists. A configured file that is
 * missing outside a pod is that file (its error, code 7, names it), never a silent fallback.
 */
export function kubeSource(config: KubernetesStoreConfig, env: { inPod: boolean; exists: (path: string) => boolean }):
  { kind: "file"; path: string } | { kind: "in-cluster" } | { kind: "none" } {
  if (config.kubeConfig && (!env.inPod || env.exists(config.kubeConfig))) return { kind: "file", path: config.kubeConfig };
  if (env.inPod) return { kind: "in-cluster" };
  return env.exists(DEFAULT_KUBECONFIG) ? { kind: "file", path: DEFAULT_KUBECONFIG } : { kind: "none" };
}

/**
 * Lists, then watches from the list's version, until `signal` aborts. A broken watch is listed again (after
 * `beforeList`): a caller that keeps a copy of the collection is current again only then. With `resume`, it is
 * resumed from the last version seen instead, and listed again only when the API has forgotten that version
 * (410 Expired, e.g. after its restart): for feeds of changes (the dashboard's, the controller's counters),
 * which a new list would rob of what changed while the watch was away (a connection cut by a load balancer, an
 * API failing for a moment), where etcd's watch replays it.
 */
async function watchCollection(api: ObjectApi, signal: AbortSignal, onEvent: (type: string, object: KubeObject, listed: boolean) => void,
  onReconnect?: (e: unknown) => void, beforeList?: () => void, resume = false): Promise<void> {
  let version: string | undefined;
  while (!signal.aborted) {
    try {
      if (version === undefined) {
        const listed = await api.list();
        beforeList?.();
        for (const o of listed.items) onEvent("LISTED", o, true);
        version = listed.resourceVersion;
      }
      await api.kube.watch<KubeObject>(api.collection, `watch ${api.kind} objects`, { resourceVersion: version, allowWatchBookmarks: true,
        timeoutSeconds: 300, signal }, (e) => {
        if (e.object.metadata.resourceVersion) version = e.object.metadata.resourceVersion;
        if (e.type !== "BOOKMARK") onEvent(e.type, e.object as KubeObject, false);
      });
    } catch (e) {
      if (signal.aborted) return;
      if (!resume || (e instanceof KubeUnavailableError && e.status === 410)) version = undefined;
      onReconnect?.(e);
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
}

function watchAllocations(api: ObjectApi, signal: AbortSignal, onChange: (c: StoreChange) => void, onReconnect?: (e: unknown) => void): Promise<void> {
  // The watch gives no previous state: parked-or-not is remembered per object, to tell a parking from a renewal.
  const parked = new Map<string, boolean>();
  return watchCollection(api, signal, (type, object, listed) => {
    const rec = recordOf(object);
    const name = object.metadata.name;
    if (type === "DELETED") {
      parked.delete(name);
      if (rec) onChange({ network: rec.network, kind: "released", record: rec });
      return;
    }
    if (!rec) return;
    const was = parked.get(name);
    parked.set(name, !!rec.parkedAt);
    if (listed) return;
    if (!rec.parkedAt) onChange({ network: rec.network, kind: "allocated", record: was !== undefined ? { ...rec, conflicts: 0 } : rec });
    else if (!was) onChange({ network: rec.network, kind: "released", record: rec, parked: true });
  }, onReconnect, undefined, true);
}
