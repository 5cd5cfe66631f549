// Cluster-wide allocation on a real etcd: many plugin processes for many node names, one pool,
// never an address twice.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { type EtcdServer, refusedEndpoint, startEtcd } from "../support/etcd.ts";
import { etcdNetConf, listAllocations, mapLimit, runPlugin, spawnPlugin, tempDir } from "../support/plugin.ts";

let etcd: EtcdServer;
let dir: ReturnType<typeof tempDir>;

beforeAll(async () => {
  dir = tempDir();
  etcd = await startEtcd();
});
afterAll(async () => {
  await etcd.stop();
  dir.cleanup();
});

const netConf = (endpoints: string, ipam: Record<string, unknown> = {}) => etcdNetConf(endpoints, dir.path, ipam);

const ls = (conf: unknown) => listAllocations(conf, dir.path);

function addressOf(r: { json: any }): string {
  return r.json.ips[0].address.split("/")[0];
}

const node = (i: number) => ({ KUBE_IPAM_NODE_NAME: `node-${i % 10}` });

describe("etcd store", () => {
  test("200 ADDs at concurrency 20 from 10 nodes fill a 200-address pool exactly, DEL frees it, 200 more succeed", async () => {
    // 10.30.0.0/24, .1 gateway; rangeStart .10 .. rangeEnd .209 = exactly 200 addresses.
    const conf = netConf(etcd.endpoint, { rangeStart: "10.30.0.10", rangeEnd: "10.30.0.209" });
    const ids = Array.from({ length: 200 }, (_, i) => `pod-${i}`);
    for (const round of [1, 2]) {
      const adds = await mapLimit(ids, 20, (id, i) => runPlugin(conf, { command: "ADD", containerID: `${id}-r${round}`, env: node(i) }));
      for (const r of adds) expect(r.json.code).toBeUndefined();
      expect(new Set(adds.map(addressOf)).size).toBe(200);
      const held = await ls(conf);
      expect(held.length).toBe(200);
      expect(new Set(held.map((a) => a.node)).size).toBe(10);

      const extra = await runPlugin(conf, { command: "ADD", containerID: `extra-r${round}`, env: node(0) });
      expect(extra.exitCode).toBe(1);
      expect(extra.json.code).toBe(100);
      expect(extra.json.msg).toContain(`network "${conf.name}"`);

      const dels = await mapLimit(ids, 20, (id, i) => runPlugin(conf, { command: "DEL", containerID: `${id}-r${round}`, env: node(i) }));
      for (const r of dels) expect(r.exitCode).toBe(0);
      expect(await ls(conf)).toEqual([]);
    }
  }, 120_000);

  test("STATUS: ready with room, code 50 when the pool is full or etcd cannot be reached", async () => {
    const conf = { ...netConf(etcd.endpoint, { subnet: "10.33.0.0/30" }), cniVersion: "1.1.0" };
    expect((await runPlugin(conf, { command: "STATUS" })).exitCode).toBe(0);
    // A /30 leaves one address: .1 is the gateway, .3 the broadcast.
    expect((await runPlugin(conf, { command: "ADD", containerID: "only" })).exitCode).toBe(0);
    const full = await runPlugin(conf, { command: "STATUS" });
    expect(full.json.code).toBe(50);
    expect(full.json.msg).toBe(`No free address in network "${conf.name}" range set 10.33.0.0/30 (10.33.0.1-10.33.0.2)`);
    const down = await runPlugin({ ...conf, ipam: { ...conf.ipam, etcdConfig: { etcdURL: refusedEndpoint() } } }, { command: "STATUS" });
    expect(down.json.code).toBe(50);
  }, 20_000);

  test("two networks with the same subnet are independent pools", async () => {
    const a = netConf(etcd.endpoint, { subnet: "10.31.0.0/29" });
    const b = netConf(etcd.endpoint, { subnet: "10.31.0.0/29", etcdConfig: { ...a.ipam.etcdConfig } });
    const ra = await runPlugin(a, { command: "ADD", containerID: "same" });
    const rb = await runPlugin(b, { command: "ADD", containerID: "same" });
    // Same node, same subnet: the same first address in each pool, held twice without conflict.
    expect(addressOf(rb)).toBe(addressOf(ra));
    expect((await ls(a)).map((x) => x.network)).toEqual([a.name]);
    expect((await ls(b)).map((x) => x.network)).toEqual([b.name]);
    await runPlugin(a, { command: "DEL", containerID: "same" });
    expect(await ls(a)).toEqual([]);
    expect((await ls(b)).length).toBe(1);
  });

  test("repeated ADD returns the same address, DEL is idempotent, GC releases only this node's unlisted attachments", async () => {
    const conf = netConf(etcd.endpoint);
    const first = await runPlugin(conf, { command: "ADD", containerID: "c1", env: node(1) });
    const again = await runPlugin(conf, { command: "ADD", containerID: "c1", env: node(1) });
    expect(addressOf(again)).toBe(addressOf(first));
    await runPlugin(conf, { command: "ADD", containerID: "c2", env: node(1) });
    await runPlugin(conf, { command: "ADD", containerID: "c3", env: node(2) });

    const gcConf = { ...conf, cniVersion: "1.1.0", "cni.dev/valid-attachments": [{ containerID: "c1", ifname: "eth0" }] };
    const gc = await runPlugin(gcConf, { command: "GC", env: node(1) });
    expect(gc.exitCode).toBe(0);
    expect((await ls(conf)).map((a) => a.containerID).sort()).toEqual(["c1", "c3"]);

    for (let i = 0; i < 2; i++) expect((await runPlugin(conf, { command: "DEL", containerID: "c1", env: node(1) })).exitCode).toBe(0);
    expect((await ls(conf)).map((a) => a.containerID)).toEqual(["c3"]);
  });

  test("plugins killed mid-ADD never leave an address twice; what they left is visible to ls", async () => {
    const conf = netConf(etcd.endpoint, { subnet: "10.32.0.0/26", rangeStart: "10.32.0.2", rangeEnd: "10.32.0.41" });
    const ids = Array.from({ length: 40 }, (_, i) => `k-${i}`);
    let killed = 0;
    for (let round = 0; round < 4; round++) {
      const procs = ids.map((id, i) => spawnPlugin(conf, { command: "ADD", containerID: id, env: node(i) }));
      await Promise.all(procs.map((p, i) =>
        i % 2 === round % 2 ? p.exited : new Promise<void>((resolve) => setTimeout(() => { p.kill(9); resolve(); }, Math.random() * 40))
      ));
      killed += (await Promise.all(procs.map((p) => p.exited))).filter((c) => c !== 0 && c !== 1).length;

      const held = await ls(conf);
      expect(new Set(held.map((a) => a.ip)).size).toBe(held.length);
      expect(new Set(held.map((a) => a.containerID)).size).toBe(held.length);
      for (const a of held) expect(ids).toContain(a.containerID);

      const retried = await mapLimit(ids, 20, (id, i) => runPlugin(conf, { command: "ADD", containerID: id, env: node(i) }));
      for (const r of retried) expect(r.json.code).toBeUndefined();
      expect(new Set(retried.map(addressOf)).size).toBe(40);
      // A retried ADD returns what the killed attempt had already claimed.
      for (const a of held) expect(addressOf(retried[ids.indexOf(a.containerID)]!)).toBe(a.ip);

      await mapLimit(ids, 20, (id, i) => runPlugin(conf, { command: "DEL", containerID: id, env: node(i) }));
      expect(await ls(conf)).toEqual([]);
    }
    expect(killed).toBeGreaterThan(0);
  }, 120_000);
});
