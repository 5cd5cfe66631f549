// The embedded store: plain files under dataDir, safe for many plugin processes on one host and for
// a process killed at any instant.
//
//   <dataDir>/<network>/ips/<hex>                            the claim: record JSON, one file per address
//   <dataDir>/<network>/owners/<containerID>/<ifName>/<hex>  hard link to the same inode (owner index)
//   <dataDir>/<network>/cursors/<node>.<rangeSet>            last address handed out by that node
//   <dataDir>/<network>/tmp/                                 records being written
//   <dataDir>/<network>/lock                                 flock(2) for changes to existing claims
//   <dataDir>/_reserved/<name>.json                          reservations, shared by every network
//
// Claims take no lock: the record is written to tmp/, linked into owners/, then linked to ips/<hex>;
// link(2) fails with EEXIST when the address is held, so exactly one claimer wins, and the record is
// complete before anyone can see it. Changes to an existing claim (release, park, takeover) run under
// the network's flock, which the kernel drops when a process dies; claims cannot interfere with them,
// since a claim only ever creates a name that is absent.
// See docs/file-store.md.
import { closeSync, fsyncSync, linkSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmdirSync,
  statSync, unlinkSync, writeSync } from "node:fs";
import { join } from "node:path";
import { type IP, ipFromHex, ipToHex, tryParseIP } from "../../ip/address.ts";
import { decodeRecord, decodeReservation, encodeRecord, identical } from "../record.ts";
import { type AddSnapshot, type Allocation, type ClaimOptions, type ClaimOutcome, type NetworkStore, type Owner, type Reservation,
  sameOwner, type Store, StoreError } from "../store.ts";
import { withFileLock } from "./flock.ts";

/** Debris (tmp files, owner entries of claims that never completed) is removed only when this old. */
const DEBRIS_AGE_MS = 60_000;

function code(e: unknown): string | undefined {
  return (e as NodeJS.ErrnoException)?.code;
}

function ioError(action: string, path: string, e: unknown): StoreError {
  return new StoreError(`Cannot ${action} "${path}": ${(e as Error).message}`, false, { cause: e });
}

/** Runs `fn`, turning ENOENT into `fallback` and other failures into a StoreError naming the path. */
function tolerateMissing<T>(action: string, path: string, fallback: T, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (code(e) === "ENOENT") return fallback;
    throw ioError(action, path, e);
  }
}

function listDir(path: string): string[] {
  return tolerateMissing("list", path, [] as string[], () => readdirSync(path));
}

function removeFile(path: string): void {
  tolerateMissing("remove", path, undefined, () => unlinkSync(path));
}

function inode(path: string): number | undefined {
  return tolerateMissing("stat", path, undefined, () => statSync(path).ino);
}

function readRecord(path: string): Allocation | undefined {
  const text = tolerateMissing("read", path, undefined, () => readFileSync(path, "utf8"));
  return text === undefined ? undefined : decodeRecord(text);
}

/** link(2), creating the target's directory on first use (one syscall in the common case). */
function linkMakingDir(from: string, to: string): void {
  try {
    linkSync(from, to);
  } catch (e) {
    if (code(e) !== "ENOENT") throw e;
    mkdirSync(to.slice(0, to.lastIndexOf("/")), { recursive: true });
    linkSync(from, to);
  }
}

let tmpCounter = 0;

/**
 * Writes `text` to a fresh file in `dir` and returns its path; `durable` fsyncs it (records, so that
 * a power loss cannot leave an empty claim behind; a cursor is only a hint and skips it).
 */
function writeTmp(dir: string, text: string, durable = true): string {
  const path = join(dir, `${process.pid}.${Date.now()}.${tmpCounter++}`);
  try {
    let fd: number;
    try {
      fd = openSync(path, "wx", 0o644);
    } catch (e) {
      if (code(e) !== "ENOENT") throw e;
      mkdirSync(dir, { recursive: true });
      fd = openSync(path, "wx", 0o644);
    }
    try {
      writeSync(fd, text);
      if (durable) fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch (e) {
    throw ioError("write", path, e);
  }
  return path;
}

class FileNetworkStore implements NetworkStore {
  readonly shared = false;
  readonly #store: FileStore;
  readonly #dir: string;
  readonly #ips: string;
  readonly #owners: string;
  readonly #cursors: string;
  readonly #tmp: string;

  constructor(store: FileStore, readonly network: string) {
    this.#store = store;
    this.#dir = join(store.dataDir, network);
    this.#ips = join(this.#dir, "ips");
    this.#owners = join(this.#dir, "owners");
    this.#cursors = join(this.#dir, "cursors");
    this.#tmp = join(this.#dir, "tmp");
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
    return withFileLock(join(this.#dir, "lock"), fn);
  }

  #ownerDir(owner: Owner): string {
    return join(this.#owners, owner.containerID, owner.ifName);
  }

  #ipPath(record: Allocation): string | undefined {
    const ip = tryParseIP(record.ip);
    return ip && join(this.#ips, ipToHex(ip));
  }

  claim(ip: IP, record: Allocation, opts?: ClaimOptions): Promise<ClaimOutcome> {
    const hex = ipToHex(ip);
    const tmp = writeTmp(this.#tmp, encodeRecord(record));
    const ownerDir = this.#ownerDir(record);
    const ownerEntry = join(ownerDir, hex);
    const ipPath = join(this.#ips, hex);
    try {
      mkdirSync(ownerDir, { recursive: true });
      try {
        linkSync(tmp, ownerEntry);
      } catch (e) {
        if (code(e) !== "EEXIST") throw e;
        // The owner already holds this address, or an earlier attempt of theirs never completed.
        if (inode(ipPath) === inode(ownerEntry)) return Promise.resolve({ claimed: false, holder: readRecord(ipPath) });
        unlinkSync(ownerEntry);
        linkSync(tmp, ownerEntry);
      }
      try {
        linkMakingDir(tmp, ipPath);
      } catch (e) {
        unlinkSync(ownerEntry);
        if (code(e) === "EEXIST") return Promise.resolve({ claimed: false, holder: readRecord(ipPath) });
        throw e;
      }
    } catch (e) {
      throw e instanceof StoreError ? e : ioError("claim address in", this.#dir, e);
    } finally {
      removeFile(tmp);
    }
    if (opts?.advanceCursor) this.#writeCursor(record.node, record.rangeSet, hex);
    return Promise.resolve({ claimed: true });
  }

  #cursorPath(node: string, rangeSet: number): string {
    return join(this.#cursors, `${encodeURIComponent(node)}.${rangeSet}`);
  }

  #writeCursor(node: string, rangeSet: number, hex: string): void {
    const tmp = writeTmp(this.#tmp, hex, false);
    const path = this.#cursorPath(node, rangeSet);
    try {
      try {
        renameSync(tmp, path);
      } catch (e) {
        if (code(e) !== "ENOENT") throw e;
        mkdirSync(this.#cursors, { recursive: true });
        renameSync(tmp, path);
      }
    } catch (e) {
      throw ioError("write", path, e);
    }
  }

  cursor(node: string, rangeSet: number): Promise<IP | undefined> {
    const path = this.#cursorPath(node, rangeSet);
    const hex = tolerateMissing("read", path, undefined, () => readFileSync(path, "utf8").trim());
    return Promise.resolve(hex === undefined ? undefined : ipFromHex(hex));
  }

  async countHeld(family: 4 | 6, from: bigint, to: bigint): Promise<number> {
    return (await this.heldBetween(family, from, to, Number.MAX_SAFE_INTEGER)).length;
  }

  // One directory listing serves a whole scan: a scan reads window after window, and the listing is
  // only a guide anyway (the claim's link decides). Refreshed after a second for long-lived callers.
  #listing: { at: number; ips: IP[] } | undefined;

  #held(): IP[] {
    const now = Date.now();
    if (!this.#listing || now - this.#listing.at > 1000) {
      const ips = listDir(this.#ips).map(ipFromHex).filter((ip): ip is IP => ip !== undefined);
      ips.sort((a, b) => a.family - b.family || (a.value < b.value ? -1 : a.value > b.value ? 1 : 0));
      this.#listing = { at: now, ips };
    }
    return this.#listing.ips;
  }

  heldBetween(family: 4 | 6, from: bigint, to: bigint, limit: number): Promise<IP[]> {
    const out: IP[] = [];
    for (const ip of this.#held()) {
      if (ip.family !== family || ip.value < from) continue;
      if (ip.value > to || out.length >= limit) break;
      out.push(ip);
    }
    return Promise.resolve(out);
  }

  /** The owner's entries, split into completed claims (same inode as ips/<hex>) and the rest. */
  #ownerEntries(owner: Owner): { entry: string; ipPath: string; claimed: boolean }[] {
    const dir = this.#ownerDir(owner);
    return listDir(dir).map((hex) => {
      const entry = join(dir, hex);
      const ipPath = join(this.#ips, hex);
      const ino = inode(entry);
      return { entry, ipPath, claimed: ino !== undefined && ino === inode(ipPath) };
    });
  }

  async prepareAdd(owner: Owner, node: string, rangeSets: number): Promise<AddSnapshot> {
    const cursors = await Promise.all(Array.from({ length: rangeSets }, (_, i) => this.cursor(node, i)));
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

  #pruneOwnerDir(owner: Owner): void {
    for (const d of [this.#ownerDir(owner), join(this.#owners, owner.containerID)]) {
      try {
        rmdirSync(d);
      } catch { /* not empty or already gone: fine */ }
    }
  }

  /** Moves `next` into place over the claim at `ipPath` (under the lock), fixing the owner index. */
  #swap(ipPath: string, expected: Allocation, next: Allocation): void {
    const tmp = writeTmp(this.#tmp, encodeRecord(next));
    try {
      const hex = ipPath.slice(ipPath.lastIndexOf("/") + 1);
      if (!next.parkedAt) {
        mkdirSync(this.#ownerDir(next), { recursive: true });
        // A second link renamed over the entry: there is never a moment without one.
        const entryTmp = `${tmp}.owner`;
        linkSync(tmp, entryTmp);
        renameSync(entryTmp, join(this.#ownerDir(next), hex));
      }
      renameSync(tmp, ipPath);
      if (next.parkedAt || !sameOwner(expected, next)) {
        removeFile(join(this.#ownerDir(expected), hex));
        this.#pruneOwnerDir(expected);
      }
    } catch (e) {
      throw e instanceof StoreError ? e : ioError("replace", ipPath, e);
    } finally {
      removeFile(tmp);
    }
  }

  #delete(ipPath: string, record: Allocation): void {
    removeFile(ipPath);
    removeFile(join(this.#ownerDir(record), ipPath.slice(ipPath.lastIndexOf("/") + 1)));
    this.#pruneOwnerDir(record);
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
      this.#pruneOwnerDir(owner);
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
    return Promise.resolve(readRecord(join(this.#ips, ipToHex(ip))));
  }

  list(): Promise<Allocation[]> {
    const out: Allocation[] = [];
    for (const hex of listDir(this.#ips)) {
      const rec = readRecord(join(this.#ips, hex));
      if (rec) out.push(rec);
    }
    return Promise.resolve(out);
  }

  /** Removes what killed processes left: files in tmp/ and owner entries whose claim never completed. */
  sweep(): Promise<void> {
    const now = Date.now();
    for (const name of listDir(this.#tmp)) {
      const path = join(this.#tmp, name);
      if (this.#isDebris(path, now)) removeFile(path);
    }
    for (const containerID of listDir(this.#owners)) {
      for (const ifName of listDir(join(this.#owners, containerID))) {
        const owner = { containerID, ifName };
        for (const { entry, claimed } of this.#ownerEntries(owner)) {
          if (!claimed && this.#isDebris(entry, now)) removeFile(entry);
        }
        this.#pruneOwnerDir(owner);
      }
    }
    return Promise.resolve();
  }
}

const RESERVED_DIR = "_reserved"; // network names start with a letter or digit, so this cannot clash

export class FileStore implements Store {
  readonly location: string;

  constructor(readonly dataDir: string) {
    this.location = dataDir;
  }

  network(name: string): FileNetworkStore {
    return new FileNetworkStore(this, name);
  }

  networks(): Promise<string[]> {
    return Promise.resolve(listDir(this.dataDir).filter((n) => n !== RESERVED_DIR && !n.startsWith(".")).sort());
  }

  #reservedDir(): string {
    return join(this.dataDir, RESERVED_DIR);
  }

  reservations(): Promise<Reservation[]> {
    const dir = this.#reservedDir();
    const out: Reservation[] = [];
    for (const name of listDir(dir).filter((n) => n.endsWith(".json"))) {
      const path = join(dir, name);
      const text = tolerateMissing("read", path, undefined, () => readFileSync(path, "utf8"));
      if (text !== undefined) out.push(decodeReservation(text, `file "${path}"`));
    }
    return Promise.resolve(out.sort((a, b) => a.name.localeCompare(b.name)));
  }

  putReservation(r: Reservation): Promise<void> {
    const dir = this.#reservedDir();
    const tmp = writeTmp(join(dir, ".tmp"), JSON.stringify(r));
    try {
      renameSync(tmp, join(dir, `${r.name}.json`));
    } catch (e) {
      throw ioError("write reservation in", dir, e);
    }
    return Promise.resolve();
  }

  deleteReservation(name: string): Promise<boolean> {
    const path = join(this.#reservedDir(), `${name}.json`);
    return Promise.resolve(tolerateMissing("remove", path, false, () => (unlinkSync(path), true)));
  }

  ping(): Promise<void> {
    const probe = join(this.dataDir, `.probe.${process.pid}`);
    try {
      mkdirSync(this.dataDir, { recursive: true });
      closeSync(openSync(probe, "w", 0o600));
      unlinkSync(probe);
    } catch (e) {
      throw ioError("write to data directory", this.dataDir, e);
    }
    return Promise.resolve();
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
