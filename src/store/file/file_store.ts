// The embedded store: plain files under dataDir, safe for many plugin processes on one host and for
// a process killed at any instant. No locks: every state change is one atomic link/unlink/rename.
//
//   <dataDir>/<network>/ips/<hex>                        the claim: record JSON, one file per address
//   <dataDir>/<network>/owners/<containerID>/<ifName>/<hex>  hard link to the same inode (owner index)
//   <dataDir>/<network>/cursors/<node>.<rangeSet>        last address handed out by that node
//   <dataDir>/<network>/tmp/                             records being written
//
// Claim: write the record to tmp/, link it into owners/, then link it to ips/<hex>; link(2) fails
// with EEXIST when the address is held, so exactly one claimer wins and the record is complete
// before anyone can see it. Release: unlink the owner entry first; only the process whose unlink
// succeeds goes on to unlink ips/<hex>, and only if that is still the same inode. A crash leaves at
// worst a tmp file or an owner entry whose ips/ link was never made; neither holds an address.
import { closeSync, fsyncSync, linkSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync,
  rmdirSync, statSync, unlinkSync, writeSync } from "node:fs";
import { join } from "node:path";
import { type IP, ipFromHex, ipToHex, tryParseIP } from "../../ip/address.ts";
import { type Allocation, type ClaimOptions, type ClaimOutcome, type NetworkStore, type Owner, sameOwner,
  type Store, StoreError } from "../store.ts";
import { decodeRecord, encodeRecord, sameRecord } from "../record.ts";

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

let tmpCounter = 0;

class FileNetworkStore implements NetworkStore {
  readonly shared = false;
  readonly #dir: string;
  readonly #ips: string;
  readonly #owners: string;
  readonly #cursors: string;
  readonly #tmp: string;

  constructor(dataDir: string, readonly network: string) {
    this.#dir = join(dataDir, network);
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

  #ownerDir(owner: Owner): string {
    return join(this.#owners, owner.containerID, owner.ifName);
  }

  /** Writes `text` durably to a fresh file in tmp/ and returns its path. */
  #writeTmp(text: string): string {
    const path = join(this.#tmp, `${process.pid}.${Date.now()}.${tmpCounter++}`);
    try {
      const fd = openSync(path, "wx", 0o644);
      try {
        writeSync(fd, text);
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
    } catch (e) {
      throw ioError("write", path, e);
    }
    return path;
  }

  #readRecord(path: string): Allocation | undefined {
    const text = tolerateMissing("read", path, undefined, () => readFileSync(path, "utf8"));
    return text === undefined ? undefined : decodeRecord(text);
  }

  #inode(path: string): number | undefined {
    return tolerateMissing("stat", path, undefined, () => statSync(path).ino);
  }

  claim(ip: IP, record: Allocation, opts?: ClaimOptions): Promise<ClaimOutcome> {
    this.#ensureDirs();
    const hex = ipToHex(ip);
    const tmp = this.#writeTmp(encodeRecord(record));
    const ownerDir = this.#ownerDir(record);
    const ownerEntry = join(ownerDir, hex);
    const ipPath = join(this.#ips, hex);
    try {
      mkdirSync(ownerDir, { recursive: true });
      try {
        linkSync(tmp, ownerEntry);
      } catch (e) {
        if (code(e) !== "EEXIST") throw e;
        // Left by an earlier attempt of the same owner that never completed: it holds nothing.
        if (this.#inode(ipPath) === this.#inode(ownerEntry)) return Promise.resolve({ claimed: false, holder: this.#readRecord(ipPath) });
        unlinkSync(ownerEntry);
        linkSync(tmp, ownerEntry);
      }
      try {
        linkSync(tmp, ipPath);
      } catch (e) {
        unlinkSync(ownerEntry);
        if (code(e) === "EEXIST") return Promise.resolve({ claimed: false, holder: this.#readRecord(ipPath) });
        throw e;
      }
    } catch (e) {
      throw e instanceof StoreError ? e : ioError("claim address in", this.#dir, e);
    } finally {
      tolerateMissing("remove", tmp, undefined, () => unlinkSync(tmp));
    }
    if (opts?.advanceCursor) this.#writeCursor(record.node, record.rangeSet, hex);
    return Promise.resolve({ claimed: true });
  }

  #cursorPath(node: string, rangeSet: number): string {
    return join(this.#cursors, `${encodeURIComponent(node)}.${rangeSet}`);
  }

  #writeCursor(node: string, rangeSet: number, hex: string): void {
    const tmp = this.#writeTmp(hex);
    const path = this.#cursorPath(node, rangeSet);
    try {
      renameSync(tmp, path);
    } catch (e) {
      throw ioError("write", path, e);
    }
  }

  cursor(node: string, rangeSet: number): Promise<IP | undefined> {
    const path = this.#cursorPath(node, rangeSet);
    const hex = tolerateMissing("read", path, undefined, () => readFileSync(path, "utf8").trim());
    return Promise.resolve(hex === undefined ? undefined : ipFromHex(hex));
  }

  #heldHexes(): string[] {
    return tolerateMissing("list", this.#ips, [] as string[], () => readdirSync(this.#ips));
  }

  heldBetween(family: 4 | 6, from: bigint, to: bigint, limit: number): Promise<IP[]> {
    const held: IP[] = [];
    for (const hex of this.#heldHexes()) {
      const ip = ipFromHex(hex);
      if (ip && ip.family === family && ip.value >= from && ip.value <= to) held.push(ip);
    }
    held.sort((a, b) => (a.value < b.value ? -1 : a.value > b.value ? 1 : 0));
    return Promise.resolve(held.slice(0, limit));
  }

  /** Owner entries that are really claimed: same inode as ips/<hex>. */
  #ownerEntries(owner: Owner): { hex: string; entry: string; ino: number }[] {
    const dir = this.#ownerDir(owner);
    const out: { hex: string; entry: string; ino: number }[] = [];
    for (const hex of tolerateMissing("list", dir, [] as string[], () => readdirSync(dir))) {
      const entry = join(dir, hex);
      const ino = this.#inode(entry);
      if (ino !== undefined) out.push({ hex, entry, ino });
    }
    return out;
  }

  findByOwner(owner: Owner): Promise<Allocation[]> {
    const found: Allocation[] = [];
    for (const { hex, entry, ino } of this.#ownerEntries(owner)) {
      if (this.#inode(join(this.#ips, hex)) !== ino) continue;
      const rec = this.#readRecord(entry);
      if (rec && sameOwner(rec, owner)) found.push(rec);
    }
    return Promise.resolve(found);
  }

  /** The release protocol: whoever unlinks the owner entry is the one releaser of that claim. */
  #releaseEntry(hex: string, entry: string, ino: number): boolean {
    const won = tolerateMissing("remove", entry, false, () => (unlinkSync(entry), true));
    if (!won) return false;
    const ipPath = join(this.#ips, hex);
    if (this.#inode(ipPath) !== ino) return false; // that claim never completed
    tolerateMissing("remove", ipPath, undefined, () => unlinkSync(ipPath));
    return true;
  }

  #pruneOwnerDir(owner: Owner): void {
    for (const d of [this.#ownerDir(owner), join(this.#owners, owner.containerID)]) {
      try {
        rmdirSync(d);
      } catch { /* not empty or already gone: fine */ }
    }
  }

  releaseByOwner(owner: Owner): Promise<Allocation[]> {
    const released: Allocation[] = [];
    for (const { hex, entry, ino } of this.#ownerEntries(owner)) {
      const rec = this.#readRecord(entry);
      if (this.#releaseEntry(hex, entry, ino) && rec) released.push(rec);
    }
    this.#pruneOwnerDir(owner);
    return Promise.resolve(released);
  }

  releaseIfUnchanged(record: Allocation): Promise<boolean> {
    const ip = tryParseIP(record.ip);
    if (!ip) return Promise.resolve(false);
    const hex = ipToHex(ip);
    const current = this.#readRecord(join(this.#ips, hex));
    if (!current || !sameRecord(current, record)) return Promise.resolve(false);
    const entry = join(this.#ownerDir(record), hex);
    const ino = this.#inode(entry);
    if (ino === undefined || ino !== this.#inode(join(this.#ips, hex))) return Promise.resolve(false);
    const done = this.#releaseEntry(hex, entry, ino);
    this.#pruneOwnerDir(record);
    return Promise.resolve(done);
  }

  get(ip: IP): Promise<Allocation | undefined> {
    return Promise.resolve(this.#readRecord(join(this.#ips, ipToHex(ip))));
  }

  list(): Promise<Allocation[]> {
    const out: Allocation[] = [];
    for (const hex of this.#heldHexes()) {
      const rec = this.#readRecord(join(this.#ips, hex));
      if (rec) out.push(rec);
    }
    return Promise.resolve(out);
  }

  /**
   * Removes what killed processes left: files in tmp/ and owner entries whose claim never completed.
   * Only debris older than a minute, so that a claim in progress (microseconds) is never touched.
   */
  sweep(now = Date.now()): Promise<void> {
    const old = (path: string) => {
      try {
        return now - statSync(path).mtimeMs > DEBRIS_AGE_MS;
      } catch {
        return false;
      }
    };
    for (const name of tolerateMissing("list", this.#tmp, [] as string[], () => readdirSync(this.#tmp))) {
      const path = join(this.#tmp, name);
      if (old(path)) tolerateMissing("remove", path, undefined, () => unlinkSync(path));
    }
    for (const containerID of tolerateMissing("list", this.#owners, [] as string[], () => readdirSync(this.#owners))) {
      const cdir = join(this.#owners, containerID);
      for (const ifName of tolerateMissing("list", cdir, [] as string[], () => readdirSync(cdir))) {
        const owner = { containerID, ifName };
        const dir = this.#ownerDir(owner);
        for (const hex of tolerateMissing("list", dir, [] as string[], () => readdirSync(dir))) {
          const entry = join(dir, hex);
          const ino = this.#inode(entry);
          if (ino !== undefined && ino !== this.#inode(join(this.#ips, hex)) && old(entry)) {
            tolerateMissing("remove", entry, undefined, () => unlinkSync(entry));
          }
        }
        this.#pruneOwnerDir(owner);
      }
    }
    return Promise.resolve();
  }
}

export class FileStore implements Store {
  readonly location: string;

  constructor(readonly dataDir: string) {
    this.location = dataDir;
  }

  network(name: string): FileNetworkStore {
    return new FileNetworkStore(this.dataDir, name);
  }

  networks(): Promise<string[]> {
    return Promise.resolve(tolerateMissing("list", this.dataDir, [] as string[], () => readdirSync(this.dataDir)));
  }

  ping(): Promise<void> {
    const probe = join(this.dataDir, `.probe.${process.pid}`);
    try {
      mkdirSync(this.dataDir, { recursive: true });
      const fd = openSync(probe, "w", 0o600);
      closeSync(fd);
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
