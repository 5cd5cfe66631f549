// One network's pool in the embedded store (layout and protocol: file_store.ts, docs/file-store.md).
import { closeSync, constants, existsSync, ftruncateSync, linkSync, mkdirSync, readFileSync, renameSync, statSync, unlinkSync,
  writeSync } from "node:fs";
import { joinPath } from "../../lib/path.ts";
import { type IP, ipFromHex, ipToHex, tryParseIP } from "../../ip/address.ts";
import type { FreeAddressFinder } from "../../ip/held_index.ts";
import { encodeRecord, identical } from "../record.ts";
import { type AddSnapshot, type Allocation, type ClaimOptions, type ClaimOutcome, type HeldWindow, type NetworkStore, type Owner,
  type Reservation, sameOwner, StoreError } from "../store.ts";
import { withFileLock } from "./flock.ts";
import { type HeldNames, type NamesByFamily, rank } from "./held_names.ts";
import { code, inode, ioError, linkMakingDir, listDir, openMakingDir, readRecord, removeFile, tolerateMissing, writeNew, writeTmp } from "./fs_ops.ts";
import { failpoint } from "../../lib/failpoint.ts";

/** How many addresses one heldBetween probes. */
const PROBE = 8n;

/** Debris (tmp files, owner entries of claims that never completed) is removed only when this old. */
const DEBRIS_AGE_MS = 60_000;

/** Where the network store reads the store-wide reservations from. */
export interface ReservationSource {
  readonly dataDir: string;
  reservations(): Promise<Reservation[]>;
}

/** Names no glob pattern reads as anything but themselves. */
const GLOB_LITERAL = /^[\w.%+=@:-]+$/;

/**
 * The names in `dir` that start with `prefix`. The directory is read whole either way (owners/ holds an
 * entry per address held), but a glob filters it natively: the names of other owners never become
 * JavaScript strings (at 4,000 entries, 0.7 ms instead of 1.3 to 1.8, at every ADD and DEL). A prefix a
 * glob would read otherwise (an interface name with "*" or "[" in it; container IDs cannot have them) is
 * filtered here instead.
 */
function namesStartingWith(dir: string, prefix: string): string[] {
  if (!GLOB_LITERAL.test(prefix)) return listDir(dir).filter((name) => name.startsWith(prefix));
  return tolerateMissing("list", dir, [] as string[], () => [...new Bun.Glob(`${prefix}*`).scanSync({ cwd: dir, dot: true, onlyFiles: false })]);
}

export class FileNetworkStore implements NetworkStore {
  readonly shared = false;
  readonly claimBeforeRead = false;
  readonly #store: ReservationSource;
  readonly #dir: string;
  readonly #ips: string;
  readonly #owners: string;
  readonly #cursors: string;
  readonly #tmp: string;

  /** What this process last saw held, shared by the FileStore across requests: the agent's view. None in a plugin run once. */
  readonly #seen: HeldNames | undefined;

  constructor(store: ReservationSource, readonly network: string, seen?: HeldNames) {
    this.#store = store;
    this.#seen = seen;
    this.#dir = joinPath(store.dataDir, network);
    this.#ips = joinPath(this.#dir, "ips");
    this.#owners = joinPath(this.#dir, "owners");
    this.#cursors = joinPath(this.#dir, "cursors");
    this.#tmp = joinPath(this.#dir, "tmp");
  }

  #ensureDirs(): void {
    for (const d of [this.#ips, this.#owners, this.#cursors, this.#tmp]) {
      try {
        mkdirSync(d, { recursive: true, mode: 0o755 });
      } catch (e) {
        throw ioError("create directory", d, e);
      }
    }
  }

  #locked<T>(fn: () => T): Promise<T> {
    this.#ensureDirs();
    return withFileLock(joinPath(this.#dir, "lock"), fn);
  }

  // Owner entries sit side by side in owners/, named "<containerID>:<ifName>:<hex>" (container IDs cannot
  // hold ":" and interface names may not, so the name is unambiguous). A directory per owner cost a
  // mkdir per ADD, and a new inode is what an ADD pays most for on ext4 (measured: 1.2 ms each with
  // pod churn); finding an owner's entries by name in one listing costs far less.
  #ownerPrefix(owner: Owner): string {
    return `${owner.containerID}:${owner.ifName}:`;
  }

  #ownerEntry(owner: Owner, hex: string): string {
    return joinPath(this.#owners, `${this.#ownerPrefix(owner)}${hex}`);
  }

  #ipPath(record: Allocation): string | undefined {
    const ip = tryParseIP(record.ip);
    return ip && joinPath(this.#ips, ipToHex(ip));
  }

  claim(ip: IP, record: Allocation, opts?: ClaimOptions): Promise<ClaimOutcome> {
    const hex = ipToHex(ip);
    const ownerEntry = this.#ownerEntry(record, hex);
    const ipPath = joinPath(this.#ips, hex);
    const text = encodeRecord(record);
    try {
      // The record is written as the owner entry, then linked to ips/<hex>: the claim.
      if (!writeNew(ownerEntry, text)) {
        // The owner already holds this address, or another attempt of theirs is under way (a runtime's
        // retry overlapping a slow first ADD) or was killed. Only an entry old enough to be debris is
        // replaced: replacing a live attempt's entry would let it publish this one's half-written record.
        if (inode(ipPath) === inode(ownerEntry)) return Promise.resolve({ claimed: false, holder: readRecord(ipPath) });
        if (!this.#isDebris(ownerEntry)) return Promise.resolve({ claimed: false });
        unlinkSync(ownerEntry);
        if (!writeNew(ownerEntry, text)) throw new Error(`"${ownerEntry}" was created again while being replaced`);
      }
      failpoint("file.claim.unlinked");
      try {
        linkMakingDir(ownerEntry, ipPath);
      } catch (e) {
        removeFile(ownerEntry);
        if (code(e) === "EEXIST") {
          this.#seen?.add(hex);
          return Promise.resolve({ claimed: false, holder: readRecord(ipPath) });
        }
        throw e;
      }
    } catch (e) {
      throw e instanceof StoreError ? e : ioError("claim address in", this.#dir, e);
    }
    if (opts?.cursorKey) this.#writeCursor(record.node, opts.cursorKey, hex);
    this.#seen?.add(hex);
    return Promise.resolve({ claimed: true });
  }

  #cursorPath(node: string, rangeSetKey: string): string {
    return joinPath(this.#cursors, `${encodeURIComponent(node)}.${rangeSetKey}`);
  }

  // Rewritten in place, not through tmp/ and a rename: a cursor is only a hint, so it needs no new
  // inode per ADD. Overwritten, then cut to length, never truncated first: every cursor of one file has
  // the same width, so a concurrent reader never finds it empty (O_TRUNC left it empty to 79% of the
  // reads of a tight loop, sending those scans back to the start of the range). A reader that meets a
  // garbled cursor just starts from the first address.
  #writeCursor(node: string, rangeSetKey: string, hex: string): void {
    const path = this.#cursorPath(node, rangeSetKey);
    try {
      const fd = openMakingDir(path, constants.O_WRONLY | constants.O_CREAT);
      try {
        writeSync(fd, hex, 0);
        ftruncateSync(fd, hex.length); // only a longer, damaged cursor is cut
      } finally {
        closeSync(fd);
      }
    } catch (e) {
      throw ioError("write", path, e);
    }
  }

  cursor(node: string, rangeSetKey: string): Promise<IP | undefined> {
    const path = this.#cursorPath(node, rangeSetKey);
    const hex = tolerateMissing("read", path, undefined, () => readFileSync(path, "utf8").trim());
    return Promise.resolve(hex === undefined ? undefined : ipFromHex(hex));
  }

  async countHeldBlocks(family: 4 | 6, from: bigint, to: bigint, size: bigint, blocks: number): Promise<number[]> {
    const held = this.#heldNames(family);
    const counts: number[] = [];
    for (let a = from, i = 0; a <= to && i < blocks; a += size, i++) {
      const b = a + size - 1n < to ? a + size - 1n : to;
      counts.push(rank(held, ipToHex({ family, value: b }), true) - rank(held, ipToHex({ family, value: a }), false));
    }
    return counts;
  }

  // The whole pool's listing, for counts across dense runs only: listing the pool at every ADD had cost
  // more than everything else an ADD does (+1.2 ms at 300 claims, +4 ms at 1,000). One listing serves a
  // whole scan (this object lives for one request); it also renews the process's view of what is held.
  #listing: NamesByFamily | undefined;

  #heldNames(family: 4 | 6): string[] {
    if (!this.#listing) {
      const names: NamesByFamily = { 4: [], 6: [] };
      for (const name of listDir(this.#ips)) {
        if (name.length === 8) names[4].push(name);
        else if (name.length === 32) names[6].push(name);
      }
      names[4].sort();
      names[6].sort();
      this.#listing = names;
      this.#seen?.replace(names, Date.now());
    }
    return this.#listing[family];
  }

  heldView(): FreeAddressFinder | undefined {
    return this.#seen?.view();
  }

  /**
   * Probes the first few addresses of the range one by one, as host-local does: the next address is
   * usually free, and a probe costs one syscall. A run found all held is crossed with counts.
   */
  heldBetween(family: 4 | 6, from: bigint, to: bigint): Promise<HeldWindow> {
    const through = from + PROBE - 1n < to ? from + PROBE - 1n : to;
    const held: IP[] = [];
    for (let v = from; v <= through; v++) {
      const ip: IP = { family, value: v };
      if (existsSync(joinPath(this.#ips, ipToHex(ip)))) held.push(ip);
    }
    return Promise.resolve({ held, through });
  }

  /** Owner entries (all, or those of `owner`), split into completed claims (same inode as ips/<hex>) and the rest. */
  #ownerEntries(owner?: Owner): { entry: string; ipPath: string; claimed: boolean }[] {
    const prefix = owner ? this.#ownerPrefix(owner) : "";
    const out: { entry: string; ipPath: string; claimed: boolean }[] = [];
    for (const name of namesStartingWith(this.#owners, prefix)) {
      const hex = name.slice(name.lastIndexOf(":") + 1);
      if (name.split(":").length !== 3 || !ipFromHex(hex)) continue; // not an owner entry
      const entry = joinPath(this.#owners, name);
      const ipPath = joinPath(this.#ips, hex);
      const ino = inode(entry);
      out.push({ entry, ipPath, claimed: ino !== undefined && ino === inode(ipPath) });
    }
    return out;
  }

  async prepareAdd(owner: Owner, node: string, rangeSetKeys: readonly string[]): Promise<AddSnapshot> {
    const cursors = await Promise.all(rangeSetKeys.map((key) => this.cursor(node, key)));
    return { held: await this.findByOwner(owner), cursors, reservations: await this.#store.reservations() };
  }

  findByOwner(owner: Owner): Promise<Allocation[]> {
    const found: Allocation[] = [];
    for (const { entry, claimed } of this.#ownerEntries(owner)) {
      const rec = claimed ? readRecord(entry) : undefined;
      if (rec && sameOwner(rec, owner)) found.push(rec);
    }
    return Promise.resolve(found);
  }

  #isDebris(path: string, now = Date.now()): boolean {
    try {
      return now - statSync(path).mtimeMs > DEBRIS_AGE_MS;
    } catch {
      return false;
    }
  }

  /** Moves `next` into place over the claim at `ipPath` (under the lock), fixing the owner index. */
  #swap(ipPath: string, expected: Allocation, next: Allocation): void {
    const tmp = writeTmp(this.#tmp, encodeRecord(next));
    try {
      const hex = ipPath.slice(ipPath.lastIndexOf("/") + 1);
      if (!next.parkedAt) {
        mkdirSync(this.#owners, { recursive: true });
        // A second link renamed over the entry: there is never a moment without one.
        const entryTmp = `${tmp}.owner`;
        linkSync(tmp, entryTmp);
        renameSync(entryTmp, this.#ownerEntry(next, hex));
      }
      renameSync(tmp, ipPath);
      if (next.parkedAt || !sameOwner(expected, next)) {
        removeFile(this.#ownerEntry(expected, hex));
      }
    } catch (e) {
      throw e instanceof StoreError ? e : ioError("replace", ipPath, e);
    } finally {
      removeFile(tmp);
    }
  }

  #delete(ipPath: string, record: Allocation): void {
    removeFile(ipPath);
    const hex = ipPath.slice(ipPath.lastIndexOf("/") + 1);
    this.#seen?.delete(hex);
    removeFile(this.#ownerEntry(record, hex));
  }

  releaseByOwner(owner: Owner): Promise<Allocation[]> {
    return this.#locked(() => {
      const released: Allocation[] = [];
      const now = new Date();
      for (const { entry, ipPath, claimed } of this.#ownerEntries(owner)) {
        if (!claimed) {
          // A claim that never completed holds nothing; one in progress is left alone.
          if (this.#isDebris(entry, now.getTime())) removeFile(entry);
          continue;
        }
        const rec = readRecord(ipPath);
        if (!rec) continue;
        if (rec.kind === "sticky") this.#swap(ipPath, rec, { ...rec, parkedAt: now.toISOString() });
        else this.#delete(ipPath, rec);
        released.push(rec);
      }
      return released;
    });
  }

  releaseIfUnchanged(record: Allocation): Promise<boolean> {
    const ipPath = this.#ipPath(record);
    if (!ipPath) return Promise.resolve(false);
    return this.#locked(() => {
      const current = readRecord(ipPath);
      if (!current || !identical(current, record)) return false;
      this.#delete(ipPath, record);
      return true;
    });
  }

  replace(expected: Allocation, next: Allocation): Promise<boolean> {
    const ipPath = this.#ipPath(expected);
    if (!ipPath || next.ip !== expected.ip) return Promise.resolve(false);
    return this.#locked(() => {
      const current = readRecord(ipPath);
      if (!current || !identical(current, expected)) return false;
      this.#swap(ipPath, expected, next);
      return true;
    });
  }

  async findSticky(podNamespace: string, podName: string): Promise<Allocation[]> {
    return (await this.list()).filter((a) => a.kind === "sticky" && a.podNamespace === podNamespace && a.podName === podName);
  }

  get(ip: IP): Promise<Allocation | undefined> {
    return Promise.resolve(readRecord(joinPath(this.#ips, ipToHex(ip))));
  }

  list(): Promise<Allocation[]> {
    const out: Allocation[] = [];
    for (const hex of listDir(this.#ips)) {
      const rec = readRecord(joinPath(this.#ips, hex));
      if (rec) out.push(rec);
    }
    return Promise.resolve(out);
  }

  /** Removes what killed processes left: files in tmp/ and owner entries whose claim never completed. */
  sweep(): Promise<void> {
    const now = Date.now();
    for (const name of listDir(this.#tmp)) {
      const path = joinPath(this.#tmp, name);
      if (this.#isDebris(path, now)) removeFile(path);
    }
    for (const { entry, claimed } of this.#ownerEntries()) {
      if (!claimed && this.#isDebris(entry, now)) removeFile(entry);
    }
    return Promise.resolve();
  }
}
