// The controller under faults, with real processes: the built binary's `kube-ipam controller`, real etcd
// (one member, or three), a real kube-apiserver that the controllers reach through the fault proxy in front
// of it. What it releases is seen through `kube-ipam ls` and /metrics; waits are polls with a deadline, and
// "the controller is in the middle of a run" is made exact by holding the answer to its pod list at the proxy.
import { beforeAll, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { type Controller, leaderKey, revokeLease, startController } from "../support/controller.ts";
import { startEtcdCluster } from "../support/etcd.ts";
import { eventually } from "../support/eventually.ts";
import { makePod } from "../support/kube_apiserver.ts";
import { etcdNetConf, mapLimit, runCli, runPlugin } from "../support/plugin.ts";
import { useCluster } from "../support/fixtures.ts";

const env = useCluster({ kubeApi: true });
const running: Controller[] = [];
/** The controllers' kubeconfig (the controller's identity): through the fault proxy. */
let kubeconfig: string;
const faults = () => env.api.faults();

beforeAll(() => {
  kubeconfig = env.api.writeKubeconfig(join(env.dir.path, "kube-faults"), "token", { server: faults().url, identity: "controller" });
});

/** A network of its own (own etcd prefix) and its config file. */
function netConf(endpoints = env.etcd.endpoint) {
  const conf = etcdNetConf(endpoints, env.dir.path, { subnet: "10.72.0.0/24", kubeConfig: env.kubeconfig });
  const path = join(env.dir.path, `${conf.name}.conf`);
  writeFileSync(path, JSON.stringify(conf));
  return { conf, path, prefix: conf.ipam.etcdConfig.etcdPrefix };
}

function controller(name: string, path: string, ...flags: string[]): Controller {
  const c = startController(name, path, ["--kubeconfig", kubeconfig, ...flags]);
  running.push(c);
  return c;
}

async function stopAll(): Promise<void> {
  for (const c of running.splice(0)) {
    c.proc.kill("SIGCONT");
    await c.kill();
  }
}

/** Pods named `names`, each with an address; returns container ID -> address. */
async function podsWithAddresses(conf: unknown, names: readonly string[]): Promise<Map<string, string>> {
  for (const name of names) await env.api.setPod(makePod({ name }));
  const ips = await mapLimit(names, 6, async (name) => {
    const r = await runPlugin(conf, { command: "ADD", containerID: `c-${name}`, args: `K8S_POD_NAMESPACE=default;K8S_POD_NAME=${name}` });
    if (r.exitCode !== 0) throw new Error(`ADD ${name} failed: ${r.stdout}`);
    return r.json.ips[0].address.split("/")[0] as string;
  });
  return new Map(names.map((n, i) => [`c-${n}`, ips[i]!]));
}

/** container ID -> address of everything held in the network. */
async function held(path: string): Promise<Map<string, string>> {
  const out = await runCli(["ls", "--conf", path, "-o", "json"]);
  if (out.exitCode !== 0) throw new Error(`kube-ipam ls failed: ${out.stderr}`);
  return new Map(out.json.map((a: { containerID: string; ip: string }) => [a.containerID, a.ip]));
}

const sorted = (m: Map<string, string>) => [...m.entries()].sort();

async function leading(c: Controller, withinMs = 15_000): Promise<void> {
  await eventually(`${c.name} leading`, () => c.metric("kube_ipam_leader"), (v) => v === 1, { withinMs });
}

const isPodList = (r: string) => r.startsWith("GET /api/v1/pods?") && !r.includes("continue=") && !r.includes("watch=");

/**
 * Holds the answers from the `n`-th pod list that arrives at the proxy from now on: resolves when it has arrived,
 * that is when the controller has finished `n - 1` whole runs since and is waiting in the next one.
 * `faults().delay(0)` lets it go on.
 */
function holdPodList(n: number): Promise<void> {
  let seen = 0;
  return new Promise((resolve) => {
    faults().onRequest = (request) => {
      if (!isPodList(request) || ++seen < n) return;
      faults().onRequest = undefined;
      faults().delay(60_000); // applies to this very request: the proxy holds it after calling onRequest
      resolve();
    };
  });
}

/**
 * Makes `change` exactly between two runs and returns when the second run after it is waiting for its pod
 * list: waits until a run's pod list is held (the runs before it are over, and read the world before the
 * change), makes the change, lets that run go on (it reads the changed world: the change's first sighting),
 * and holds the next run's pod list. `faults().delay(0)` lets that one go on.
 */
async function oneRunAfter(change: () => Promise<unknown>): Promise<void> {
  await holdPodList(1);
  await change();
  const next = holdPodList(1);
  faults().delay(0);
  await next;
}

/** Runs the controller finished, whatever their outcome. */
async function runs(c: Controller): Promise<number> {
  let n = 0;
  for (const outcome of ["success", "error", "refused"]) n += (await c.metric(`kube_ipam_gc_runs_total{outcome="${outcome}"}`)) ?? 0;
  return n;
}

const GC_FAST = ["--gc-interval", "1s", "--grace", "0s"];

describe("kube-ipam controller under faults", () => {
  test("two sightings: a leak seen in one run is kept; seen in the next run too, it is released", async () => {
    const { conf, path } = netConf();
    try {
      const c = controller("two", path, ...GC_FAST, "--lease-ttl", "2s");
      await leading(c);
      const before = await podsWithAddresses(conf, ["two-live", "two-leak"]);
      await oneRunAfter(() => env.api.deletePod("default", "two-leak"));
      try {
        // The first run since the pod went has judged it a leak; the second is waiting for its pod list.
        expect(sorted(await held(path))).toEqual(sorted(before));
        expect(await c.metric(`kube_ipam_gc_releases_total{network="${conf.name}"}`)).toBeUndefined();
        expect(await c.metric(`kube_ipam_gc_runs_total{outcome="success"}`)).toBeGreaterThanOrEqual(1);
      } finally {
        faults().delay(0);
      }
      const after = await eventually("the leak released", () => held(path), (m) => m.size === 1);
      expect(sorted(after)).toEqual([["c-two-live", before.get("c-two-live")!]]);
      expect(await c.metric(`kube_ipam_gc_releases_total{network="${conf.name}"}`)).toBe(1);
      expect(c.log()).toMatch(new RegExp(`"msg":"gc released",.*"ip":"${before.get("c-two-leak")!.replaceAll(".", "\\.")}"`));
    } finally {
      faults().delay(0);
      await stopAll();
    }
  }, 60_000);

  test("a leader whose lease is revoked mid-run releases nothing from that instant; the other replica takes over", async () => {
    const { conf, path, prefix } = netConf();
    try {
      // A long lease: A would not find out by renewing for seconds. Only the fence in its writes stops it.
      const a = controller("a", path, ...GC_FAST, "--lease-ttl", "30s");
      await leading(a);
      // B takes over but judges nothing leaked (grace 1h): whatever is released, A released.
      const b = controller("b", path, "--gc-interval", "1s", "--grace", "1h", "--lease-ttl", "30s");
      await eventually("b answering", () => b.metric("kube_ipam_leader"), (v) => v === 0);
      const before = await podsWithAddresses(conf, ["rv-live", "rv-leak-1", "rv-leak-2", "rv-leak-3"]);
      await oneRunAfter(async () => {
        for (const p of ["rv-leak-1", "rv-leak-2", "rv-leak-3"]) await env.api.deletePod("default", p);
      });
      const finished = await runs(a);
      // A has seen the leaks once and waits for its second run's pod list: take its lease away now.
      const key = await leaderKey(env.etcd.endpoint, prefix);
      expect(key?.identity).toBe(`a/${a.proc.pid}`);
      await revokeLease(env.etcd.endpoint, key!.lease);
      faults().delay(0);

      await eventually("A's run ending", () => runs(a), (v) => v > finished);
      expect(sorted(await held(path))).toEqual(sorted(before));
      expect(await a.metric(`kube_ipam_gc_runs_total{outcome="error"}`)).toBe(1);
      expect(a.log()).toContain("Not the leader any more");
      expect(a.log()).toContain(`"msg":"gc run failed: nothing released"`);
      expect(await a.metric(`kube_ipam_gc_releases_total{network="${conf.name}"}`)).toBeUndefined();

      await leading(b);
      expect((await leaderKey(env.etcd.endpoint, prefix))?.identity).toBe(`b/${b.proc.pid}`);
      await eventually("A following", () => a.metric("kube_ipam_leader"), (v) => v === 0);
      // B runs (and judges) with the lists A would have used; still nothing is released.
      const bRuns = await runs(b);
      await eventually("B's two runs", () => runs(b), (v) => v >= bRuns + 2);
      expect(sorted(await held(path))).toEqual(sorted(before));
    } finally {
      faults().delay(0);
      await stopAll();
    }
  }, 60_000);

  test("the API failing or too slow during the loop: nothing released, error runs counted; healed, the leak goes", async () => {
    const { conf, path } = netConf();
    try {
      const c = controller("api", path, ...GC_FAST, "--lease-ttl", "2s");
      await leading(c);
      const before = await podsWithAddresses(conf, ["api-live", "api-leak"]);
      const errors = async () => (await c.metric(`kube_ipam_gc_runs_total{outcome="error"}`)) ?? 0;

      // Every answer fails after one more normal one: each run gets at most one of its two lists.
      faults().failWith(500, { after: 1 });
      await env.api.deletePod("default", "api-leak");
      try {
        await eventually("three failed runs", errors, (v) => v >= 3);
        expect(sorted(await held(path))).toEqual(sorted(before));
        expect(c.log()).toContain("injected failure 500");
      } finally {
        faults().failWith(undefined);
      }

      // An API that answers after the client's 10 s limit.
      const failed = await errors();
      faults().delay(12_000);
      try {
        await eventually("a run timing out", errors, (v) => v > failed, { withinMs: 25_000 });
        expect(sorted(await held(path))).toEqual(sorted(before));
      } finally {
        faults().delay(0);
      }
      expect(await c.metric(`kube_ipam_gc_releases_total{network="${conf.name}"}`)).toBeUndefined();

      const after = await eventually("the leak released once the API answers", () => held(path), (m) => m.size === 1);
      expect(sorted(after)).toEqual([["c-api-live", before.get("c-api-live")!]]);
    } finally {
      faults().failWith(undefined);
      faults().delay(0);
      await stopAll();
    }
  }, 90_000);

  test("etcd's leader killed twice while the controller leads: it keeps leading, collects the leaks, never a live pod's address", async () => {
    const cluster = await startEtcdCluster(3);
    try {
      const { conf, path } = netConf(cluster.endpoints.join(","));
      const c = controller("etcd", path, ...GC_FAST, "--lease-ttl", "3s");
      await leading(c, 20_000);
      const live = await podsWithAddresses(conf, ["el-live-0", "el-live-1", "el-live-2", "el-live-3"]);
      for (const round of [1, 2]) {
        await podsWithAddresses(conf, [`el-leak-${round}`]);
        const etcdLeader = await cluster.leader();
        await etcdLeader.kill();
        await env.api.deletePod("default", `el-leak-${round}`); // leaked after the change: gc must work on the new etcd leader
        await eventually("the leak released", () => held(path), (m) => !m.has(`c-el-leak-${round}`), { withinMs: 30_000 });
        expect(sorted(await held(path))).toEqual(sorted(live));
        await leading(c, 20_000);
        const succeeded = (await c.metric(`kube_ipam_gc_runs_total{outcome="success"}`)) ?? 0;
        await eventually("gc still running", () => c.metric(`kube_ipam_gc_runs_total{outcome="success"}`),
          (v) => (v ?? 0) >= succeeded + 2, { withinMs: 20_000 });
        expect(sorted(await held(path))).toEqual(sorted(live));
        await etcdLeader.restart();
      }
      expect(await c.metric(`kube_ipam_gc_releases_total{network="${conf.name}"}`)).toBe(2);
    } finally {
      await stopAll();
      await cluster.stop();
    }
  }, 150_000);

  test("a pod list suddenly nearly empty: every run refused, nothing released; restarted with --max-release 100%, it releases", async () => {
    const { conf, path } = netConf();
    try {
      const a = controller("guard", path, ...GC_FAST, "--lease-ttl", "2s");
      await leading(a);
      const names = Array.from({ length: 12 }, (_, i) => `guard-${i}`);
      const before = await podsWithAddresses(conf, names);
      for (const p of names.slice(1)) await env.api.deletePod("default", p); // all at once: no run sees half of it
      await eventually("three refused runs", () => a.metric(`kube_ipam_gc_runs_total{outcome="refused"}`), (v) => (v ?? 0) >= 3);
      expect(sorted(await held(path))).toEqual(sorted(before));
      expect(await a.metric(`kube_ipam_gc_releases_total{network="${conf.name}"}`)).toBeUndefined();
      expect(a.log()).toContain(`"msg":"gc run refused: it would release more than --max-release 50% (network \\"${conf.name}\\": ` +
        `11 of 12 pod addresses); nothing released"`);
      await a.kill("SIGTERM");

      const b = controller("guard-100", path, ...GC_FAST, "--lease-ttl", "2s", "--max-release", "100%");
      await leading(b);
      const after = await eventually("the leaks released", () => held(path), (m) => m.size === 1);
      expect(sorted(after)).toEqual([["c-guard-0", before.get("c-guard-0")!]]);
      expect(await b.metric(`kube_ipam_gc_releases_total{network="${conf.name}"}`)).toBe(11);
      expect(await b.metric(`kube_ipam_gc_runs_total{outcome="refused"}`)).toBeUndefined();
    } finally {
      await stopAll();
    }
  }, 60_000);
});
