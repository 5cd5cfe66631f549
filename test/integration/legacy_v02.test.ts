// Upgrading from kube-ipam v0.2 on a real etcd holding its layout, written as v0.2 writes it: compatibility
// mode (ipam.etcdConfig.legacyV02) never hands out a v0.2-held address, even with a v0.2 plugin allocating
// at the same time; `kube-ipam migrate --from v0.2` imports them all, once; DEL of a v0.2 container releases
// its address in both layouts.
import { describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseIP } from "../../src/ip/address.ts";
import { etcdNetConf, listAllocations, mapLimit, runCli, runPlugin } from "../support/plugin.ts";
import { V02Plugin } from "../support/v02.ts";
import { useCluster } from "../support/fixtures.ts";

const env = useCluster();

// 10.61.0.10 .. 10.61.1.254: 501 addresses.
const RANGE = { subnet: "10.61.0.0/23", rangeStart: "10.61.0.10", rangeEnd: "10.61.1.254" };
const conf = (name: string, legacyV02: boolean) => {
  const c = etcdNetConf(env.etcd.endpoint, env.dir.path, { ...RANGE, agentSocket: "" }, name);
  return { ...c, ipam: { ...c.ipam, etcdConfig: { ...c.ipam.etcdConfig, ...(legacyV02 && { legacyV02 }) } } };
};
const addressOf = (r: { json: any }): string => r.json.ips[0].address.split("/")[0];
const node = (i: number) => ({ KUBE_IPAM_NODE_NAME: `node-${i % 4}` });

function writeConf(c: unknown, name: string): string {
  const path = join(env.dir.path, name);
  writeFileSync(path, JSON.stringify(c));
  return path;
}

describe("kube-ipam v0.2's layout", () => {
  test("compatibility mode: concurrent ADDs from several nodes and a v0.2 plugin never share an address", async () => {
    const c = conf("v02net", true);
    const v02 = await V02Plugin.connect(env.etcd.endpoint, "v02net", 500);
    await v02.init([[RANGE]]);
    // v0.2 holds 40 addresses, and a v0.2 plugin died holding its lock (a 3 s lease left to run out).
    for (let i = 0; i < 40; i++) expect(await v02.add(`v02-old-${i}`, parseIP("10.61.0.10"), parseIP("10.61.1.254"))).toBeDefined();
    const stale = await v02.etcd.leaseGrant(3);
    await v02.etcd.put(`${v02.root}/lock`, String(stale.id), { lease: stale.id });
    const before = await v02.used();

    const ids = Array.from({ length: 200 }, (_, i) => `new-${i}`);
    const [ours, theirs] = await Promise.all([
      mapLimit(ids, 10, (id, i) => runPlugin(c, { command: "ADD", containerID: id, env: node(i) })),
      (async () => {
        const got: string[] = [];
        for (let i = 0; i < 20; i++) {
          const ip = await v02.add(`v02-new-${i}`, parseIP("10.61.0.10"), parseIP("10.61.1.254"));
          if (ip) got.push(ip);
        }
        return got;
      })(),
    ]);
    for (const r of ours) expect(r.exitCode).toBe(0);
    const ourIPs = ours.map(addressOf);
    expect(new Set(ourIPs).size).toBe(200);
    for (const ip of ourIPs) expect(before.has(ip)).toBe(false);
    for (const ip of theirs) expect(ourIPs).not.toContain(ip);

    // Every address held once: our claims are in v0.2's used/ under our container IDs, v0.2's are not ours.
    const used = await v02.used();
    expect(used.size).toBe(40 + theirs.length + 200);
    const held = await listAllocations(c, env.dir.path);
    expect(held.length).toBe(200);
    for (const a of held) expect(used.get(a.ip)).toBe(a.containerID);

    // DEL releases both layouts.
    expect((await runPlugin(c, { command: "DEL", containerID: "new-0" })).exitCode).toBe(0);
    expect((await v02.used()).has(ourIPs[0]!)).toBe(false);
  }, 120_000);

  test("a fixed-looking request for a v0.2-held address is refused naming the v0.2 container", async () => {
    const c = conf("v02fixed", true);
    const v02 = await V02Plugin.connect(env.etcd.endpoint, "v02fixed", 20);
    await v02.reserve("v02-db", "10.61.0.77", 0);
    const r = await runPlugin(c, { command: "ADD", containerID: "wants-77", args: "IP=10.61.0.77" });
    expect(r.json.code).toBe(101);
    expect(r.json.msg).toContain("v02-db");
    expect((await v02.used()).get("10.61.0.77")).toBe("v02-db");
  }, 30_000);

  test("migrate imports every v0.2 allocation once, reports what it cannot place; DEL of a v0.2 container releases both", async () => {
    const c = conf("v02mig", false);
    const v02 = await V02Plugin.connect(env.etcd.endpoint, "v02mig", 20);
    await v02.init([[RANGE]]);
    for (let i = 0; i < 12; i++) await v02.add(`mig-${i}`, parseIP("10.61.0.10"), parseIP("10.61.1.254"));
    await v02.reserve("outside", "10.61.0.5", 0); // in the subnet, in no range of the config
    const file = writeConf(c, "mig.conf");

    const dry = await runCli(["migrate", "--from", "v0.2", "--conf", file, "--dry-run", "-o", "json"]);
    expect(dry.exitCode).toBe(1);
    expect(await listAllocations(c, env.dir.path)).toEqual([]);

    const first = await runCli(["migrate", "--from", "v0.2", "--conf", file, "-o", "json"]);
    expect(first.exitCode).toBe(1); // one could not be placed
    expect(first.stderr).toContain("1 of 13");
    const outcomes = (out: any) => Object.fromEntries(["imported", "present", "unplaced", "conflict"].map((o) => [o, out.entries.filter((e: any) => e.outcome === o).length]));
    expect(outcomes(first.json)).toEqual({ imported: 12, present: 0, unplaced: 1, conflict: 0 });
    expect(first.json.entries.find((e: any) => e.outcome === "unplaced")).toMatchObject({ ip: "10.61.0.5", containerID: "outside" });
    const held = await listAllocations(c, env.dir.path);
    expect(held.length).toBe(12);
    for (const a of held) expect([a.kind, /^mig-\d+$/.test(a.containerID)]).toEqual(["migrated", true]);

    const second = await runCli(["migrate", "--from", "v0.2", "--conf", file, "-o", "json"]);
    expect(outcomes(second.json)).toEqual({ imported: 0, present: 12, unplaced: 1, conflict: 0 });
    expect((await listAllocations(c, env.dir.path)).length).toBe(12);

    // A migrated address is held: dynamic ADDs pass it by, even without compatibility mode.
    const mig3 = held.find((a: any) => a.containerID === "mig-3");
    expect((await runPlugin(c, { command: "ADD", containerID: "fresh", args: `IP=${mig3.ip}` })).json.code).toBe(101);
    // DEL of the v0.2 container, on whatever interface the runtime names, releases it in both layouts.
    expect((await runPlugin(c, { command: "DEL", containerID: "mig-3", ifName: "net1" })).exitCode).toBe(0);
    expect((await listAllocations(c, env.dir.path)).map((a: any) => a.containerID)).not.toContain("mig-3");
    expect((await v02.used()).has(mig3.ip)).toBe(false);
  }, 60_000);
});
