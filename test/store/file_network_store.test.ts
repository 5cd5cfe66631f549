// The embedded store's owner index and its view of what is held, on real files in a temporary directory.
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { formatIP, parseIP } from "../../src/ip/address.ts";
import { FileStore } from "../../src/store/file/file_store.ts";
import { HeldNames } from "../../src/store/file/held_names.ts";
import type { Allocation } from "../../src/store/store.ts";

const root = mkdtempSync(join(tmpdir(), "kube-ipam-file-store-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const freshStore = (options: { heldViews?: boolean } = {}) => new FileStore(join(root, `s${n++}`), options);

function record(ip: string, containerID: string, ifName = "eth0"): Allocation {
  return { ip, network: "net", containerID, ifName, node: "node-a", kind: "dynamic", rangeSet: 0, allocatedAt: new Date().toISOString() };
}

describe("the owner index", () => {
  // Container IDs are letters, digits, "_", "." and "-" (cni/env.ts); interface names may hold what a glob
  // reads as a pattern.
  const owners: [string, string][] = [
    ["abc", "eth0"], ["ab", "eth0"], ["abc", "eth1"], ["a_b.c-d", "net1"], ["abc", "e*"], ["abc", "e[0]"], ["abc", "{e,f}?"], ["abc", "e\\x"],
  ];

  test("finds exactly an owner's addresses, whatever its names hold, and releases only those", async () => {
    const net = freshStore().network("net");
    const byOwner = new Map<string, string[]>();
    let host = 2;
    for (const [containerID, ifName] of owners) {
      for (let k = 0; k < 2; k++) {
        const ip = `10.0.0.${host++}`;
        expect((await net.claim(parseIP(ip), record(ip, containerID, ifName))).claimed).toBe(true);
        byOwner.set(`${containerID}/${ifName}`, [...(byOwner.get(`${containerID}/${ifName}`) ?? []), ip]);
      }
    }
    for (const [containerID, ifName] of owners) {
      const found = (await net.findByOwner({ containerID, ifName })).map((a) => a.ip).sort();
      expect({ owner: `${containerID}/${ifName}`, found }).toEqual({ owner: `${containerID}/${ifName}`, found: byOwner.get(`${containerID}/${ifName}`)!.sort() });
    }
    const released = (await net.releaseByOwner({ containerID: "abc", ifName: "e*" })).map((a) => a.ip).sort();
    expect(released).toEqual(byOwner.get("abc/e*")!.sort());
    expect((await net.list()).length).toBe(owners.length * 2 - 2);
    expect(await net.findByOwner({ containerID: "nobody", ifName: "eth0" })).toEqual([]);
  });

  test("a network with nothing claimed yet has no owners", async () => {
    expect(await freshStore().network("empty").findByOwner({ containerID: "abc", ifName: "eth0" })).toEqual([]);
  });
});

describe("the view of what is held (kept across requests, as in the agent)", () => {
  test("none until a scan lists the pool; then it follows this process's claims and releases", async () => {
    const store = freshStore({ heldViews: true });
    expect(store.network("net").heldView()).toBeUndefined();
    const first = store.network("net");
    for (let h = 2; h <= 9; h++) await first.claim(parseIP(`10.0.0.${h}`), record(`10.0.0.${h}`, `c${h}`));
    await first.countHeldBlocks(4, 2n, 254n, 64n, 16); // a scan across a dense run lists the pool
    const next = (net = store.network("net")) => {
      const v = net.heldView()!.nextFree(4, parseIP("10.0.0.2").value, parseIP("10.0.0.254").value);
      return v === undefined ? undefined : formatIP({ family: 4, value: v });
    };
    expect(next()).toBe("10.0.0.10");
    await store.network("net").claim(parseIP("10.0.0.10"), record("10.0.0.10", "c10"));
    expect(next()).toBe("10.0.0.11");
    await store.network("net").releaseByOwner({ containerID: "c3", ifName: "eth0" });
    expect(next()).toBe("10.0.0.3");
    // Another store object (another process) sees none of it.
    expect(freshStore({ heldViews: true }).network("net").heldView()).toBeUndefined();
  });

  test("a store opened without heldViews (a plugin run once) keeps none, scans or not", async () => {
    const net = freshStore().network("net");
    for (let h = 2; h <= 9; h++) await net.claim(parseIP(`10.0.0.${h}`), record(`10.0.0.${h}`, `c${h}`));
    await net.countHeldBlocks(4, 2n, 254n, 64n, 16);
    expect(net.heldView()).toBeUndefined();
  });

  test("a view older than ten seconds is not used", () => {
    const seen = new HeldNames();
    seen.replace({ 4: ["0a000002"], 6: [] }, 1_000);
    expect(seen.view(11_000)!.nextFree(4, 2n ** 24n * 10n + 2n, 2n ** 24n * 10n + 9n)).toBe(2n ** 24n * 10n + 3n);
    expect(seen.view(11_001)).toBeUndefined();
  });
});
