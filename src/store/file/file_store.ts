// The embedded store: plain files under dataDir, safe for many plugin processes on one host and for
// a process killed at any instant.
//
//   <dataDir>/<network>/ips/<hex>                            the claim: record JSON, one file per address
//   <dataDir>/<network>/owners/<containerID>:<ifName>:<hex>  the same inode, hard-linked (owner index)
//   <dataDir>/<network>/cursors/<node>.<rangeSetKey>         last address handed out by that node
//   <dataDir>/<network>/tmp/                                 records being replaced under the lock
//   <dataDir>/<network>/lock                                 flock(2) for changes to existing claims
//   <dataDir>/_reserved/<name>.json                          reservations, shared by every network
//
// Claims take no lock: the record is written as the owner entry, then linked to ips/<hex>; link(2)
// fails with EEXIST when the address is held, so exactly one claimer wins, and the record is complete
// before anyone can see it. Changes to an existing claim (release, park, takeover) run under the
// network's flock, which the kernel drops when a process dies; claims cannot interfere with them,
// since a claim only ever creates a name that is absent.
// See docs/file-store.md.
import { closeSync, mkdirSync, openSync, readFileSync, renameSync, unlinkSync } from "node:fs";
import { joinPath } from "../../lib/path.ts";
import { decodeReservation } from "../record.ts";
import type { Reservation, Store } from "../store.ts";
import { FileNetworkStore } from "./file_network_store.ts";
import { HeldNames } from "./held_names.ts";
import { ioError, listDir, tolerateMissing, writeTmp } from "./fs_ops.ts";

const RESERVED_DIR = "_reserved"; // network names start with a letter or digit, so this cannot clash

export class FileStore implements Store {
  readonly location: string;

  /** Per network, what this process last saw held (NetworkStore.heldView): only where `heldViews` asks. */
  readonly #views: Map<string, HeldNames> | undefined;

  /** `heldViews`: for a long-lived process (the node agent), keep what each network's scans listed. */
  constructor(readonly dataDir: string, options: { readonly heldViews?: boolean } = {}) {
    this.location = dataDir;
    this.#views = options.heldViews ? new Map() : undefined;
  }

  network(name: string): FileNetworkStore {
    const views = this.#views;
    let view = views?.get(name);
    if (views && !view) views.set(name, view = new HeldNames());
    return new FileNetworkStore(this, name, view);
  }

  networks(): Promise<string[]> {
    return Promise.resolve(listDir(this.dataDir).filter((n) => n !== RESERVED_DIR && !n.startsWith(".")).sort());
  }

  #reservedDir(): string {
    return joinPath(this.dataDir, RESERVED_DIR);
  }

  reservations(): Promise<Reservation[]> {
    const dir = this.#reservedDir();
    const out: Reservation[] = [];
    for (const name of listDir(dir).filter((n) => n.endsWith(".json"))) {
      const path = joinPath(dir, name);
      const text = tolerateMissing("read", path, undefined, () => readFileSync(path, "utf8"));
      if (text !== undefined) out.push(decodeReservation(text, `file "${path}"`));
    }
    return Promise.resolve(out.sort((a, b) => a.name.localeCompare(b.name)));
  }

  putReservation(r: Reservation): Promise<void> {
    const dir = this.#reservedDir();
    const tmp = writeTmp(joinPath(dir, ".tmp"), JSON.stringify(r));
    try {
      renameSync(tmp, joinPath(dir, `${r.name}.json`));
    } catch (e) {
      throw ioError("write reservation in", dir, e);
    }
    return Promise.resolve();
  }

  deleteReservation(name: string): Promise<boolean> {
    const path = joinPath(this.#reservedDir(), `${name}.json`);
    return Promise.resolve(tolerateMissing("remove", path, false, () => (unlinkSync(path), true)));
  }

  ping(): Promise<void> {
    const probe = joinPath(this.dataDir, `.probe.${process.pid}`);
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
