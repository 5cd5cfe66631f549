// The dashboard's JSON API on the Kubernetes store, as test/ui/api.test.ts has it on etcd: the built
// binary's controller serving the dashboard over a store of IPAllocations in a real kube-apiserver, its
// answers compared with the CLI's JSON for the same store; the live stream fed by the store's watch of the
// IPAllocations and IPReservations; and a watch broken while the server stays up (the fault proxy in front
// of it), during which an address is handed out: the stream says reconnecting, then delivers that change.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { type Controller, startController } from "../support/controller.ts";
import { eventually } from "../support/eventually.ts";
import type { StatefulSet } from "../../src/k8s/types.ts";
import { makePod, makeStatefulSet } from "../support/kube_apiserver.ts";
import { asAdmin, asController, cli, type KubeConf, kubeNetConf, useKubeDatastore, writeConf } from "../support/kube_datastore.ts";
import { runPlugin } from "../support/plugin.ts";
import { openEvents as openSse } from "../support/sse.ts";

const env = useKubeDatastore();

interface Net {
  readonly conf: KubeConf;
  readonly path: string;
}
let web: Net;
let db: Net;
/** Pod (or container) name -> its address. */
const ips = new Map<string, string>();
let controller: Controller;
let base: string;

function net(name: string, ipam: Record<string, unknown>): Net {
  const conf = kubeNetConf(env, ipam, name);
  return { conf, path: writeConf(env, conf) };
}

async function add(n: Net, name: string, opts: { namespace?: string; node?: string; annotations?: Record<string, string>; sts?: StatefulSet; noPod?: boolean } = {}) {
  const namespace = opts.namespace ?? "shop";
  const node = opts.node ?? "node-a";
  if (!opts.noPod) await env.api.setPod(makePod({ namespace, name, nodeName: node, annotations: opts.annotations, ownerStatefulSet: opts.sts }));
  const r = await runPlugin(n.conf, {
    command: "ADD", containerID: `c-${name}`, env: { KUBE_IPAM_NODE_NAME: node },
    ...(!opts.noPod && { args: `K8S_POD_NAMESPACE=${namespace};K8S_POD_NAME=${name}` }),
  });
  if (r.exitCode !== 0) throw new Error(`ADD ${name} failed: ${r.stdout}`);
  const ip = r.json.ips[0].address.split("/")[0] as string;
  ips.set(name, ip);
  return ip;
}

async function del(n: Net, name: string): Promise<void> {
  const r = await runPlugin(n.conf, { command: "DEL", containerID: `c-${name}` });
  if (r.exitCode !== 0) throw new Error(`DEL ${name} failed: ${r.stdout}`);
}

const json = async (...args: string[]) => (await cli(...args)).json;

async function healthy(c: Controller): Promise<void> {
  await eventually("the controller answers", () => fetch(`http://127.0.0.1:${c.port}/healthz`).then((r) => r.ok, () => false), (ok) => ok);
}

// The scene of test/support/dashboard_scene.ts: six web pods on three nodes, a fixed address, a StatefulSet's
// sticky addresses (one parked), a container without a pod, two database pods, and the reservation "lb".
beforeAll(async () => {
  web = net("web", { subnet: "10.30.0.0/24", exclude: ["10.30.0.240-10.30.0.250"] });
  db = net("db", { subnet: "10.50.0.0/24" });
  const nodes = ["node-a", "node-b", "node-c"];
  for (let i = 0; i < 6; i++) await add(web, `web-${i}`, { node: nodes[i % 3] });
  await add(web, "api-0", { node: "node-b", annotations: { "kube-ipam.ip": "10.30.0.100" } });
  const cache = await env.api.setStatefulSet(makeStatefulSet({ namespace: "shop", name: "cache", replicas: 2 }));
  await add(web, "cache-0", { node: "node-c", sts: cache });
  await add(web, "cache-1", { node: "node-a", sts: cache });
  await del(web, "cache-1"); // parked: kept for the pod name
  await add(web, "raw", { noPod: true, node: "node-b" });
  await add(db, "pg-0", { namespace: "data", node: "node-b" });
  await add(db, "pg-1", { namespace: "data", node: "node-c" });
  await cli("reserve", "lb", "10.30.0.20-10.30.0.29", "--conf", writeConf(env, asAdmin(env, web.conf)));
  controller = startController("ui", writeConf(env, asController(env, web.conf)), ["--kubeconfig", env.controllerKubeconfig, "--gc-interval", "1h"]);
  await healthy(controller);
  base = `http://127.0.0.1:${controller.port}`;
}, 90_000);

afterAll(async () => {
  await controller?.kill();
});

async function get(path: string, url = base): Promise<{ status: number; body: any }> {
  const res = await fetch(`${url}${path}`);
  const text = await res.text();
  return { status: res.status, body: text.startsWith("{") || text.startsWith("[") ? JSON.parse(text) : text };
}

/** The JSON of the api, once the controller's view has caught up with `expected` (it reads at most every 2 s). */
async function apiEquals(path: string, expected: unknown): Promise<void> {
  await eventually(`GET ${path}`, async () => (await get(path)).body, (b) => JSON.stringify(b) === JSON.stringify(expected));
}

describe("the dashboard's JSON API on the Kubernetes store", () => {
  test("allocations, usage and reservations are ls, usage and reserved -o json; networks are what the store holds", async () => {
    await apiEquals("/api/networks/web/allocations", await json("ls", "--conf", web.path, "-o", "json"));
    await apiEquals("/api/networks/db/allocations", await json("ls", "--conf", db.path, "-o", "json"));
    await apiEquals("/api/networks/web/usage", await json("usage", "--conf", web.path, "-o", "json"));
    await apiEquals("/api/reservations", await json("reserved", "--conf", web.path, "-o", "json"));
    const networks = (await get("/api/networks")).body;
    expect(networks.map((n: any) => [n.name, n.configured, n.held, n.parked])).toEqual([["db", false, 2, 0], ["web", true, 10, 1]]);
    expect(networks[1].usage).toEqual(await json("usage", "--conf", web.path, "-o", "json"));
    expect(networks[1].kinds).toEqual({ dynamic: 7, fixed: 1, sticky: 1, parked: 1 });
    expect(networks[0].usage).toBeNull();
    expect(networks[0].ranges).toEqual([expect.objectContaining({ subnet: "10.50.0.0/24", inferred: true, range: null })]);
    expect((await get("/api/status")).body).toMatchObject({ stream: { state: "live" } });
  });

  test("an address is what kube-ipam show -o json says", async () => {
    const cases: [string, string][] = [
      [ips.get("web-2")!, "dynamic"], ["10.30.0.100", "fixed"], [ips.get("cache-1")!, "parked"], ["10.30.0.25", "reserved"],
      ["10.30.0.245", "excluded"], ["10.30.0.1", "gateway"], ["10.30.0.200", "free"],
    ];
    for (const [ip, state] of cases) {
      const shown = await json("show", ip, "--conf", web.path, "-o", "json");
      const { configured: _c, state: got, details: _d, ...body } = (await get(`/api/networks/web/address/${ip}`)).body;
      expect({ ip, ...body }).toEqual({ ip, ...shown });
      expect([ip, got]).toEqual([ip, state]);
    }
  });

  test("search finds pods, nodes, containers and CIDRs; the map's counts add up to kube-ipam usage", async () => {
    const search = async (query: string) => (await get(`/api/search?${query}`)).body.hits.map((h: any) => `${h.network} ${h.ip} ${h.state}`);
    const ip = (name: string) => ips.get(name)!;
    expect(await search("q=web-4")).toEqual([`web ${ip("web-4")} dynamic`]);
    expect(await search("q=10.50.0.0/24")).toEqual([`db ${ip("pg-0")} dynamic`, `db ${ip("pg-1")} dynamic`].sort());
    expect(await search("q=c-raw")).toEqual([`web ${ip("raw")} dynamic`]);
    expect(await search("kind=parked")).toEqual([`web ${ip("cache-1")} parked`]);
    const ls: any[] = await json("ls", "--conf", web.path, "-o", "json");
    expect(await search("node=node-b&network=web")).toEqual(ls.filter((a) => a.node === "node-b").map((a) => `web ${a.ip} ${a.kind}`));

    const map = (await get("/api/networks/web/map?from=10.30.0.0&to=10.30.0.255&cells=4096")).body;
    expect(map).toMatchObject({ network: "web", family: 4, count: 256, mode: "address", cells: 256 });
    const [usage] = await json("usage", "--conf", web.path, "-o", "json");
    const n = (chars: string) => [...(map.states as string)].filter((c) => chars.includes(c)).length;
    expect([n("."), n("r"), n("dqfspm")]).toEqual([usage.free, usage.reserved, usage.used]);
    expect([map.states[Number(ip("cache-0").split(".")[3])], map.states[Number(ip("cache-1").split(".")[3])]]).toEqual(["s", "p"]);
  });

  test("the live stream: allocations, releases and reservations as they happen, from the store's watch", async () => {
    const stream = await openEvents();
    try {
      expect((await stream.next("stream")).data).toMatchObject({ state: "live", error: null });
      const ip = await add(web, "web-sse", { node: "node-c" });
      const added = await stream.next("change", (d) => d.ip === ip && d.kind === "allocated");
      expect(added.data.holder).toMatchObject({ ip, podNamespace: "shop", podName: "web-sse", node: "node-c", kind: "dynamic", parkedAt: null });
      await del(web, "web-sse");
      await stream.next("change", (d) => d.ip === ip && d.kind === "released");
      // A sticky pod's DEL is a parking, not a release.
      await env.api.setPod(makePod({ namespace: "shop", name: "cache-0", nodeName: "node-c",
        ownerStatefulSet: (await env.api.request("GET", "/apis/apps/v1/namespaces/shop/statefulsets/cache")).body }));
      await del(web, "cache-0");
      await stream.next("change", (d) => d.ip === ips.get("cache-0") && d.kind === "parked");
      const again = await openEvents({ "last-event-id": added.id! });
      try {
        await again.next("change", (d) => d.ip === ip && d.kind === "released");
      } finally {
        again.close();
      }
      await cli("reserve", "sse", "10.30.0.199", "--conf", writeConf(env, asAdmin(env, web.conf)));
      await stream.next("reservations");
      await apiEquals("/api/reservations", await json("reserved", "--conf", web.path, "-o", "json"));
      const recent = (await get("/api/changes")).body;
      expect(recent.filter((e: any) => e.ip === ip).map((e: any) => e.kind)).toEqual(["allocated", "released"]);
    } finally {
      stream.close();
    }
  });

  test("a watch broken while the API stays up: the stream says reconnecting, and the address handed out meanwhile still arrives", async () => {
    const faults = env.api.faults();
    const proxied = env.api.writeKubeconfig(join(env.dir.path, "kube-proxied"), "token", { server: faults.url, identity: "controller" });
    // The controller's --kubeconfig is its identity for everything, its store's watches included.
    const c = startController("ui-proxied", writeConf(env, web.conf), ["--kubeconfig", proxied, "--gc-interval", "1h"]);
    try {
      await healthy(c);
      const url = `http://127.0.0.1:${c.port}`;
      const stream = await openEvents({}, url);
      try {
        await stream.next("stream", (d) => d.state === "live");
        await eventually("the controller's watches open", () => faults.openWatches, (n) => n >= 2);
        faults.failWith(503);
        faults.dropWatches();
        const down = await stream.next("stream", (d) => d.state === "reconnecting");
        expect(down.data.error).toContain(faults.url);
        // No watch can be open now: this ADD (straight to the API) reaches the controller only by its resumed watch.
        expect(faults.openWatches).toBe(0);
        const ip = await add(web, "while-away", { node: "node-b" });
        faults.failWith(undefined);
        const change = await stream.next("change", (d) => d.ip === ip && d.kind === "allocated");
        expect(change.data.holder).toMatchObject({ ip, podName: "while-away" });
        await eventually("the stream live again", async () => (await get("/api/status", url)).body.stream?.state, (v) => v === "live");
        expect(await c.metric(`kube_ipam_allocations_total{network="web"}`)).toBe(1);
      } finally {
        stream.close();
      }
    } finally {
      faults.failWith(undefined);
      await c.kill();
    }
  }, 40_000);
});

/** /api/events of the dashboard at `url` (default this file's). */
function openEvents(headers: Record<string, string> = {}, url = base) {
  return openSse(url, headers);
}
