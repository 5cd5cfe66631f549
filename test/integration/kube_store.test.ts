// The Kubernetes store (ipam.datastore "kubernetes") on a real kube-apiserver v1.34 with kube-ipam's custom
// resources applied from deploy/kubernetes-datastore.yaml, as the plugin's ServiceAccount of deploy/ (its token):
// the plugin run as a runtime runs it, concurrently from many nodes, killed at random instants, against a
// restarted API server and its restarted etcd, and without the rights it needs.
import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { makePod, NO_RIGHTS_USER } from "../support/kube_apiserver.ts";
import { kubeNetConf, useKubeDatastore } from "../support/kube_datastore.ts";
import { listAllocations, mapLimit, runCli, runPlugin, spawnPlugin } from "../support/plugin.ts";

/** The plugin failed with CNI error `code` (exit status 1, the error on stdout). */
function expectCniError(reply: { exitCode: number; json: any; stdout: string }, code: number): void {
  expect({ exit: reply.exitCode, code: reply.json?.code }).toEqual({ exit: 1, code });
}

const env = useKubeDatastore();

/** A network of its own on the Kubernetes store: `size` addresses from 10.60.0.10 on. */
function kubeConf(size: number, ipam: Record<string, unknown> = {}) {
  const last = 10 + size - 1;
  return kubeNetConf(env, { subnet: "10.60.0.0/16", rangeStart: "10.60.0.10", rangeEnd: `10.60.${Math.floor(last / 256)}.${last % 256}`, ...ipam });
}

function add(conf: unknown, containerID: string, opts: { node?: string; args?: string; ifName?: string } = {}) {
  return runPlugin(conf, { command: "ADD", containerID, ifName: opts.ifName ?? "eth0", args: opts.args,
    env: { KUBE_IPAM_NODE_NAME: opts.node ?? "node-1" } });
}

function del(conf: unknown, containerID: string, ifName = "eth0") {
  return runPlugin(conf, { command: "DEL", containerID, ifName });
}

const ipOf = (reply: { json: any }): string => String(reply.json?.ips?.[0]?.address).split("/")[0] ?? "";

/**
 * ADD as the kubelet drives it: tried again while the answer is code 11 (try again later), until it succeeds
 * or fails otherwise. Returns the last answer and the code-11 answers seen before it.
 */
async function addUntilServed(conf: unknown, containerID: string, node: string) {
  const refused: number[] = [];
  for (let attempt = 0; attempt < 60; attempt++) {
    const r = await add(conf, containerID, { node });
    if (r.exitCode === 0 || r.json?.code !== 11) return { reply: r, refused };
    refused.push(r.json.code);
    await Bun.sleep(250); // the kubelet's back-off between sandbox attempts, shortened
  }
  throw new Error(`ADD of ${containerID} was refused with code 11 60 times`);
}
const ls = (conf: unknown) => listAllocations(conf, env.dir.path);

/** The IPAllocation objects of `network`, as the admin reads them. */
async function objects(network: string): Promise<any[]> {
  const r = await env.api.request("GET", `/apis/kube-ipam.io/v1alpha1/ipallocations?labelSelector=${encodeURIComponent(`kube-ipam.io/network=${network}`)}`);
  return r.body.items;
}

describe("allocation", () => {
  test("ADD creates one IPAllocation named after network and address, DEL deletes it, a retried ADD answers the same", async () => {
    const conf = kubeConf(10);
    const first = await add(conf, "c1");
    expect(first.exitCode).toBe(0);
    const a = ipOf(first);
    expect(first.json.ips.map((i: any) => i.address)).toEqual([`${a}/16`]);
    const [obj, ...rest] = await objects(conf.name);
    expect(rest).toEqual([]);
    expect(obj.metadata.name).toBe(`${conf.name}.${a.replaceAll(".", "-")}`);
    expect(obj.spec).toMatchObject({ ip: a, network: conf.name, containerID: "c1", ifName: "eth0", node: "node-1", kind: "dynamic" });

    expect(ipOf(await add(conf, "c1"))).toBe(a);
    expect((await objects(conf.name)).length).toBe(1);
    // Round robin in the pool 10.60.0.10-19: the node's cursor moved, the next ADDs take the next addresses,
    // not the one just released.
    const next = (ip: string) => `10.60.0.${((Number(ip.split(".")[3]) - 10 + 1) % 10) + 10}`;
    const b = ipOf(await add(conf, "c2"));
    expect(b).toBe(next(a));
    expect((await del(conf, "c1")).exitCode).toBe(0);
    expect((await del(conf, "c1")).exitCode).toBe(0);
    const c = ipOf(await add(conf, "c3"));
    expect(c).toBe(next(b));
    expect((await ls(conf)).map((x) => [x.ip, x.containerID]).sort()).toEqual([[b, "c2"], [c, "c3"]].sort());
  });

  test("two attempts of one ADD at once (a runtime's retry over a slow first attempt) answer the same address and hold one", async () => {
    const conf = kubeConf(40);
    const ids = Array.from({ length: 10 }, (_, i) => `twice${i}`);
    const pairs = await Promise.all(ids.map((id) => Promise.all([add(conf, id), add(conf, id)])));
    for (const [a, b] of pairs) {
      expect([a.exitCode, b.exitCode]).toEqual([0, 0]);
      expect(ipOf(a)).toBe(ipOf(b));
    }
    const held = await ls(conf);
    expect(held.map((x: any) => x.containerID).sort()).toEqual([...ids].sort());
  }, 60_000);

  test("200 concurrent ADDs from 10 nodes into a pool of 200 all succeed with distinct addresses; one more is code 100", async () => {
    const conf = kubeConf(200);
    const ids = Array.from({ length: 200 }, (_, i) => i);
    const replies = await mapLimit(ids, 40, (i) => add(conf, `c${i}`, { node: `node-${i % 10}` }));
    const failed = replies.filter((r) => r.exitCode !== 0);
    expect(failed.map((r) => r.stdout)).toEqual([]);
    const ips = replies.map(ipOf);
    expect(new Set(ips).size).toBe(200);
    expect((await objects(conf.name)).length).toBe(200);
    const more = await add(conf, "one-more", { node: "node-3" });
    expectCniError(more, 100);
    expect(more.json.msg).toContain(conf.name);
  }, 180_000);

  test("plugins killed at random instants during 60 concurrent ADDs into a pool of 60: retries succeed, nothing is held twice, DEL frees all", async () => {
    const conf = kubeConf(60);
    const ids = Array.from({ length: 60 }, (_, i) => `k${i}`);
    // First attempts, a third of them killed after a random delay (before, during or after their claim).
    await mapLimit(ids, 20, async (id, i) => {
      const proc = spawnPlugin(conf, { command: "ADD", containerID: id, ifName: "eth0", env: { KUBE_IPAM_NODE_NAME: `node-${i % 6}` } });
      if (i % 3 === 0) {
        await Bun.sleep(Math.floor(Math.random() * 150));
        proc.kill("SIGKILL");
      }
      await proc.exited;
    });
    // The runtime retries each ADD (it never saw an answer for the killed ones).
    const replies = await mapLimit(ids, 20, (id, i) => add(conf, id, { node: `node-${i % 6}` }));
    expect(replies.filter((r) => r.exitCode !== 0).map((r) => r.stdout)).toEqual([]);
    expect(new Set(replies.map(ipOf)).size).toBe(60);
    const held = await ls(conf);
    expect(held.length).toBe(60);
    expect(new Set(held.map((a: any) => a.containerID))).toEqual(new Set(ids));
    await mapLimit(ids, 20, (id) => del(conf, id));
    expect(await objects(conf.name)).toEqual([]);
  }, 180_000);
});

describe("the API server and its etcd restarted under load", () => {
  test("60 ADDs from 6 nodes while the API server, then its etcd, is killed and restarted: each is served or code 11, then all succeed, distinct", async () => {
    const conf = kubeConf(100);
    const ids = Array.from({ length: 60 }, (_, i) => `r${i}`);
    let done = 0;
    let restarts: Promise<void> | undefined;
    const outcomes = mapLimit(ids, 10, async (id, i) => {
      const out = await addUntilServed(conf, id, `node-${i % 6}`);
      // Once a third is served, the API server dies; once two thirds, its etcd (the writes in flight then
      // are those of the other ADDs).
      done++;
      if (done === 20) restarts = env.api.restart();
      if (done === 40) restarts = (restarts ?? Promise.resolve()).then(() => env.api.restartEtcd());
      return out;
    });
    const results = await outcomes;
    await restarts;
    // The restarts were felt: ADDs in flight were answered code 11 (and tried again), none anything else.
    expect(results.reduce((n, r) => n + r.refused.length, 0)).toBeGreaterThan(0);
    expect(results.filter((r) => r.reply.exitCode !== 0).map((r) => r.reply.stdout)).toEqual([]);
    expect(new Set(results.map((r) => ipOf(r.reply))).size).toBe(60);
    const held = await ls(conf);
    expect(held.length).toBe(60);
    expect(new Set(held.map((a: any) => a.ip)).size).toBe(60);
  }, 240_000);
});

describe("errors", () => {
  test("datastore kubernetes without a usable kubeconfig is code 7 naming the field", async () => {
    const missing = kubeConf(4, { kubeConfig: join(env.dir.path, "no-such.kubeconfig") });
    const r = await add(missing, "x");
    expectCniError(r, 7);
    expect(r.json.details).toContain("ipam.kubeConfig");
    const wrong = kubeConf(4, { datastore: "kubernetess" });
    const w = await add(wrong, "x");
    expectCniError(w, 7);
    expect(w.json.details).toBe("ipam.datastore");
  });

  test("an identity without rights gets code 11 naming the resource and the verb it lacks", async () => {
    const noRights = env.api.writeKubeconfig(join(env.dir.path, "norights"), "token", { token: env.api.noRightsToken });
    const r = await add(kubeConf(4, { kubeConfig: noRights }), "x");
    expectCniError(r, 11);
    expect(r.json.msg).toContain(NO_RIGHTS_USER);
    expect(r.json.msg).toMatch(/cannot (list|create|get) resource "(ipallocations|ipreservations|ipcursors)"/);
  });

  test("an API that accepts and never answers costs at most the budget: code 11 naming the API", async () => {
    const faults = env.api.faults();
    try {
      faults.delay(60_000);
      const held = env.api.writeKubeconfig(join(env.dir.path, "held"), "token", { server: faults.url });
      const started = Date.now();
      const r = await add(kubeConf(4, { kubeConfig: held, timeoutSeconds: 2 }), "x");
      expectCniError(r, 11);
      expect(r.json.msg).toContain(faults.url);
      expect(Date.now() - started).toBeLessThan(2000 + 1500);
    } finally {
      faults.stop();
    }
  });
});

describe("kubernetes-aware addresses", () => {
  test("a fixed address from the pod's annotation, refused to a second pod while held", async () => {
    const conf = kubeConf(20, {});
    await env.api.setPod(makePod({ namespace: "default", name: "db-0", annotations: { "kube-ipam.ip": "10.60.0.20" } }));
    await env.api.setPod(makePod({ namespace: "default", name: "db-1", annotations: { "kube-ipam.ip": "10.60.0.20" } }));
    const args = (pod: string) => `K8S_POD_NAMESPACE=default;K8S_POD_NAME=${pod};K8S_POD_INFRA_CONTAINER_ID=x`;
    expect(ipOf(await add(conf, "f1", { args: args("db-0") }))).toBe("10.60.0.20");
    const other = await add(conf, "f2", { args: args("db-1") });
    expectCniError(other, 101);
    expect(other.json.msg).toContain("db-0");
  });

  test("a reservation written with the plugin's identity is refused, naming the verb and the resource", async () => {
    const conf = kubeConf(4);
    const path = join(env.dir.path, `${conf.name}.conf`);
    await Bun.write(path, JSON.stringify(conf));
    // The plugin may not write reservations: the operator's identity does.
    const denied = await runCli(["reserve", "printers", "10.60.0.10", "--conf", path]);
    expect(denied.exitCode).not.toBe(0);
    expect(denied.stderr).toMatch(/cannot create resource "ipreservations"/);
  });
});
