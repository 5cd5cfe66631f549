// The dashboard's JSON API against the CLI's JSON for the same store (real etcd, the built binary's
// controller and CLI): what a script reads from /api is what kube-ipam prints. Plus the live stream
// (server-sent events, with the replay a reconnecting page asks for) and --ui false.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { type Controller, startController } from "../support/controller.ts";
import { buildScene, netFile, type Scene } from "../support/dashboard_scene.ts";
import { startEtcdCluster } from "../support/etcd.ts";
import { eventually } from "../support/eventually.ts";
import { useCluster } from "../support/fixtures.ts";
import { runPlugin } from "../support/plugin.ts";
import { openEvents as openSse } from "../support/sse.ts";

const env = useCluster({ kubeApi: true });
let scene: Scene;
let controller: Controller;
let base: string;

async function healthy(c: Controller): Promise<void> {
  await eventually("the controller answers", () => fetch(`http://127.0.0.1:${c.port}/healthz`).then((r) => r.ok, () => false), (ok) => ok);
}

beforeAll(async () => {
  scene = await buildScene(env);
  controller = startController("api", scene.web.path, ["--kubeconfig", env.controllerKubeconfig, "--gc-interval", "1h"]);
  await healthy(controller);
  base = `http://127.0.0.1:${controller.port}`;
});

afterAll(async () => {
  await controller?.kill();
});

async function get(path: string, init?: RequestInit): Promise<{ status: number; body: any; type: string | null }> {
  const res = await fetch(`${base}${path}`, init);
  const text = await res.text();
  return { status: res.status, type: res.headers.get("content-type"), body: text.startsWith("{") || text.startsWith("[") ? JSON.parse(text) : text };
}

/** The JSON of the api, once the controller's view has caught up with `expected` (it reads at most every 2 s). */
async function apiEquals(path: string, expected: unknown): Promise<void> {
  await eventually(`GET ${path}`, async () => (await get(path)).body, (b) => JSON.stringify(b) === JSON.stringify(expected));
}

/** `kube-ipam show ADDR -o json` and the api's answer for the web network, without the api's additions. */
async function showBoth(ip: string) {
  const cli = await scene.cli("show", ip, "--conf", scene.web.path, "-o", "json");
  const { body } = await get(`/api/networks/web/address/${ip}`);
  const { configured, state, details, ...show } = body;
  return { cli, show, configured, state, details };
}

describe("the dashboard's JSON API", () => {
  test("allocations, usage and reservations are ls, usage and reserved -o json", async () => {
    await apiEquals("/api/networks/web/allocations", await scene.cli("ls", "--conf", scene.web.path, "-o", "json"));
    await apiEquals("/api/networks/db/allocations", await scene.cli("ls", "--conf", scene.db.path, "-o", "json"));
    await apiEquals("/api/networks/web/usage", await scene.cli("usage", "--conf", scene.web.path, "-o", "json"));
    await apiEquals("/api/reservations", await scene.cli("reserved", "--conf", scene.web.path, "-o", "json"));
    const networks = (await get("/api/networks")).body;
    expect(networks.map((n: any) => [n.name, n.configured, n.held, n.parked])).toEqual([["db", false, 2, 0], ["web", true, 10, 1]]);
    expect(networks[1].usage).toEqual(await scene.cli("usage", "--conf", scene.web.path, "-o", "json"));
    expect(networks[1].kinds).toEqual({ dynamic: 7, fixed: 1, sticky: 1, parked: 1 } as Record<string, number>);
    // db has no config here: what the store knows, and no usage.
    expect(networks[0].usage).toBeNull();
    expect(networks[0].ranges).toEqual([expect.objectContaining({ subnet: "10.50.0.0/24", inferred: true, range: null })]);
    expect((await get("/api/networks/db/usage")).status).toBe(404);
  });

  test("an address is what kube-ipam show -o json says, with the lines show prints", async () => {
    const cases: [string, string][] = [
      [scene.ips.get("web-2")!, "dynamic"],
      ["10.30.0.100", "fixed"],
      [scene.ips.get("cache-1")!, "parked"],
      ["10.30.0.25", "reserved"],
      ["10.30.0.245", "excluded"],
      ["10.30.0.1", "gateway"],
      ["10.30.0.255", "broadcast"],
      ["10.30.0.200", "free"],
      ["10.99.0.1", "outside"],
    ];
    for (const [ip, state] of cases) {
      const both = await showBoth(ip);
      expect({ ip, ...both.show }).toEqual({ ip, ...both.cli });
      expect([ip, both.state]).toEqual([ip, state]);
      expect(both.configured).toBe(true);
      const printed: string = await scene.cli("show", ip, "--conf", scene.web.path);
      const lines = both.details.map(([k, v]: [string, string]) => [k, k === "Allocated" || k === "Parked" ? v.split(" ")[0] : v]);
      const cliLines = printed.trim().split("\n").map((l) => {
        const [, k, v] = /^([^:]+):\s+(.*)$/.exec(l)!;
        return [k, k === "Allocated" || k === "Parked" ? v!.split(" ")[0] : v];
      });
      expect(lines).toEqual(cliLines);
    }
    expect((await get("/api/networks/web/address/not-an-ip")).status).toBe(400);
  });

  test("search finds pods, nodes, containers, addresses and CIDRs, narrowed by kind and node", async () => {
    const search = async (query: string) => (await get(`/api/search?${query}`)).body.hits.map((h: any) => `${h.network} ${h.ip} ${h.state}`);
    const ip = (name: string) => scene.ips.get(name)!;
    expect(await search("q=web-4")).toEqual([`web ${ip("web-4")} dynamic`]);
    expect(await search("q=DATA/")).toEqual([`db ${ip("pg-0")} dynamic`, `db ${ip("pg-1")} dynamic`].sort());
    expect(await search("q=c-raw")).toEqual([`web ${ip("raw")} dynamic`]);
    expect(await search("q=10.50.0.0/24")).toEqual([`db ${ip("pg-0")} dynamic`, `db ${ip("pg-1")} dynamic`].sort());
    expect(await search("kind=parked")).toEqual([`web ${ip("cache-1")} parked`]);
    expect(await search("kind=fixed")).toEqual(["web 10.30.0.100 fixed"]);
    const ls: any[] = await scene.cli("ls", "--conf", scene.web.path, "-o", "json");
    expect(await search("node=node-b&network=web")).toEqual(ls.filter((a) => a.node === "node-b").map((a) => `web ${a.ip} ${a.kind}`));
    // An address nobody holds: what it is in the configured network.
    expect(await search("q=10.30.0.22")).toEqual(["web 10.30.0.22 reserved"]);
    expect(await search("q=10.30.0.201")).toEqual(["web 10.30.0.201 free"]);
    expect((await get("/api/search?kind=bogus")).status).toBe(400);
    const hit = (await get(`/api/search?q=${ip("web-4")}`)).body.hits[0];
    expect(hit.held).toEqual({ ...ls.find((a) => a.ip === ip("web-4")), parkedAt: null });
  });

  test("the map: one state per address, counts that add up to kube-ipam usage", async () => {
    const map = (await get("/api/networks/web/map?from=10.30.0.0&to=10.30.0.255&cells=4096")).body;
    expect(map).toMatchObject({ network: "web", family: 4, from: "10.30.0.0", to: "10.30.0.255", count: 256, blockSize: 1, mode: "address", cells: 256 });
    const states: string = map.states;
    const [usage] = await scene.cli("usage", "--conf", scene.web.path, "-o", "json");
    const n = (chars: string) => [...states].filter((c) => chars.includes(c)).length;
    expect(n(".")).toBe(usage.free);
    expect(n("r")).toBe(usage.reserved);
    expect(n("dqfspm")).toBe(usage.used);
    expect([states[0], states[1], states[255], states[100], states[245]]).toEqual(["n", "g", "b", "f", "x"]);
    const ip = (name: string) => Number(scene.ips.get(name)!.split(".")[3]);
    expect([states[ip("cache-0")], states[ip("cache-1")], states[ip("web-0")]]).toEqual(["s", "p", "d"]);
    // The same window in 16 blocks of 16.
    const blocks = (await get("/api/networks/web/map?from=10.30.0.0&to=10.30.0.255&cells=16")).body;
    expect(blocks).toMatchObject({ mode: "block", blockSize: 16, cells: 16 });
    const sum = (k: string) => blocks.blocks[k].reduce((a: number, b: number) => a + b, 0);
    expect([sum("held"), sum("reserved"), sum("free"), sum("unavailable")]).toEqual([usage.used, usage.reserved, usage.free, 256 - usage.size]);
    expect((await get("/api/networks/web/map?from=10.30.0.9&to=10.30.0.1")).status).toBe(400);
    expect((await get("/api/networks/web/map?from=10.30.0.0&to=fd00::1")).status).toBe(400);
    expect((await get("/api/networks/web/map?cells=0")).status).toBe(400);
    expect((await get("/api/networks/nope/map")).status).toBe(404);
  });

  test("the live stream: changes as they happen, and what a reconnecting page missed", async () => {
    const stream = await openEvents();
    try {
      const first = await stream.next("stream");
      expect(first.data).toMatchObject({ state: "live", error: null });
      const ip = await scene.add(scene.web, "web-sse", { node: "node-c" });
      const added = await stream.next("change", (d) => d.ip === ip && d.kind === "allocated");
      expect(added.data.holder).toMatchObject({ ip, podNamespace: "shop", podName: "web-sse", node: "node-c", kind: "dynamic", parkedAt: null });
      expect(added.id).toBe(added.data.id);
      await scene.del(scene.web, "web-sse");
      await stream.next("change", (d) => d.ip === ip && d.kind === "released");
      // A page that saw `added` last gets the release again when it reconnects; one from another process a reset.
      const again = await openEvents({ "last-event-id": added.id! });
      try {
        await again.next("change", (d) => d.ip === ip && d.kind === "released");
      } finally {
        again.close();
      }
      const other = await openEvents({ "last-event-id": "otherboot-3" });
      try {
        await other.next("reset");
      } finally {
        other.close();
      }
      await scene.cli("reserve", "sse", "10.30.0.199", "--conf", scene.web.path);
      await stream.next("reservations");
      const recent = (await get("/api/changes")).body;
      expect(recent.filter((e: any) => e.ip === ip).map((e: any) => e.kind)).toEqual(["allocated", "released"]);
    } finally {
      stream.close();
    }
  });

  test("when etcd goes away the stream says reconnecting, and live once etcd is back", async () => {
    const cluster = await startEtcdCluster(1);
    const member = cluster.members[0]!;
    const prefix = `/ui-drop-${process.pid}`;
    const net = netFile(env, prefix, "drop", { subnet: "10.31.0.0/24", etcdConfig: { etcdURL: member.clientURL, etcdPrefix: prefix } });
    const c = startController("drop", net.path, ["--kubeconfig", env.controllerKubeconfig, "--gc-interval", "1h"]);
    try {
      await healthy(c);
      const url = `http://127.0.0.1:${c.port}`;
      const stream = await openEvents({}, url);
      try {
        await stream.next("stream", (d) => d.state === "live");
        await member.kill();
        const down = await stream.next("stream", (d) => d.state === "reconnecting");
        expect(down.data.error).toEqual(expect.any(String));
        expect(((await (await fetch(`${url}/api/status`)).json()) as { stream: { state: string } }).stream.state).toBe("reconnecting");
        await member.restart();
        await stream.next("stream", (d) => d.state === "live");
        const r = await runPlugin(net.conf, { command: "ADD", containerID: "c-after" });
        expect(r.exitCode).toBe(0);
        await stream.next("change", (d) => d.ip === r.json.ips[0].address.split("/")[0] && d.kind === "allocated");
      } finally {
        stream.close();
      }
    } finally {
      await c.kill();
      await cluster.stop();
    }
  });

  test("read-only: anything but GET is refused, unknown paths are 404, and the page's files come from the binary", async () => {
    expect((await get("/api/networks", { method: "POST" })).status).toBe(405);
    expect((await get("/api/nothing")).status).toBe(404);
    const page = await get("/");
    expect(page.status).toBe(200);
    expect(page.type).toContain("text/html");
    expect(page.body).toContain('<script type="module" src="/ui/app.js">');
    const res = await fetch(`${base}/`);
    expect(res.headers.get("content-security-policy")).toContain("default-src 'none'");
    for (const file of ["app.js", "api.js", "dom.js", "feed.js", "ip.js", "live.js", "map_view.js", "panels.js", "style.css"]) {
      expect([file, (await fetch(`${base}/ui/${file}`)).status]).toEqual([file, 200]);
    }
    expect((await get("/metrics")).body).toContain("kube_ipam_pool_size");
  });

  test("--ui false serves no dashboard, only /metrics and /healthz", async () => {
    for (const flag of [["--ui", "false"], ["--ui=false"]]) {
      const c = startController("no-ui", scene.web.path, ["--kubeconfig", env.controllerKubeconfig, "--gc-interval", "1h", ...flag]);
      try {
        await healthy(c);
        const url = `http://127.0.0.1:${c.port}`;
        expect([(await fetch(`${url}/`)).status, (await fetch(`${url}/api/networks`)).status]).toEqual([404, 404]);
        expect(await (await fetch(`${url}/metrics`)).text()).toContain("kube_ipam_pool_size");
        expect(c.log()).toContain('"dashboard":"off"');
      } finally {
        await c.kill();
      }
    }
  });
});

/** /api/events of the dashboard at `url` (default this file's). */
function openEvents(headers: Record<string, string> = {}, url = base) {
  return openSse(url, headers);
}
