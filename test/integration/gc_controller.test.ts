// Garbage collection and the controller, on real etcd with a real kube-apiserver: exactly the
// leaked addresses go, nothing on partial knowledge, one leader at a time, metrics that match the store.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { type EtcdServer, freePorts, startEtcd } from "../support/etcd.ts";
import { type KubeApiServer, makePod, makeStatefulSet, NO_RIGHTS_USER, PLUGIN_USER, startKubeApiServer } from "../support/kube_apiserver.ts";
import { BINARY, etcdNetConf, runCli, runPlugin, tempDir } from "../support/plugin.ts";

let etcd: EtcdServer;
let api: KubeApiServer;
/** The plugin's (the network config's kubeConfig: its ADDs and DELs). */
let kubeconfig: string;
/** The controller's, for gc and the controller (--kubeconfig): they list every pod and StatefulSet. */
let controllerKubeconfig: string;
let dir: ReturnType<typeof tempDir>;

beforeAll(async () => {
  dir = tempDir();
  [etcd, api] = await Promise.all([startEtcd(), startKubeApiServer()]);
  kubeconfig = api.writeKubeconfig(join(dir.path, "kube"), "token");
  controllerKubeconfig = api.writeKubeconfig(join(dir.path, "kube-controller"), "token", { identity: "controller" });
}, 90_000);
afterAll(async () => {
  await api?.stop();
  await etcd.stop();
  dir.cleanup();
});

function netConf(kubeConfig = kubeconfig) {
  const conf = etcdNetConf(etcd.endpoint, dir.path, { subnet: "10.70.0.0/24", kubeConfig });
  const path = join(dir.path, `${conf.name}.conf`);
  writeFileSync(path, JSON.stringify(conf));
  return { conf, path };
}

async function add(conf: unknown, containerID: string, pod: string | undefined) {
  const r = await runPlugin(conf, {
    command: "ADD",
    containerID,
    args: pod ? `K8S_POD_NAMESPACE=default;K8S_POD_NAME=${pod}` : undefined,
  });
  if (r.exitCode !== 0) throw new Error(`ADD ${containerID} failed: ${r.stdout}`);
  return r.json.ips[0].address.split("/")[0] as string;
}

async function ls(path: string): Promise<any[]> {
  const out = await runCli(["ls", "--conf", path, "-o", "json"]);
  if (out.exitCode !== 0) throw new Error(out.stderr);
  return out.json;
}

describe("kube-ipam gc", () => {
  test("releases exactly the leaked allocations; dry run and grace change nothing", async () => {
    const { conf, path } = netConf();
    const sts = await api.setStatefulSet(makeStatefulSet({ name: "db" }));
    const goneSts = await api.setStatefulSet(makeStatefulSet({ name: "olddb" }));
    const made = {
      live: makePod({ name: "live" }),
      gone: makePod({ name: "gone" }),
      replaced: makePod({ name: "replaced" }),
      terminating: makePod({ name: "terminating" }),
      parkedKept: makePod({ name: "db-0", ownerStatefulSet: sts }),
      parkedOrphan: makePod({ name: "olddb-0", ownerStatefulSet: goneSts }),
      liveSticky: makePod({ name: "db-1", ownerStatefulSet: sts }),
    };
    const pods = {} as Record<keyof typeof made, Awaited<ReturnType<typeof api.setPod>>>;
    for (const [key, p] of Object.entries(made)) pods[key as keyof typeof made] = await api.setPod(p);
    const ip = {} as Record<keyof typeof pods | "noPod", string>;
    for (const [key, p] of Object.entries(pods)) ip[key as keyof typeof pods] = await add(conf, `c-${key}`, p.metadata.name);
    ip.noPod = await add(conf, "c-no-pod", undefined);

    // What happens in the cluster afterwards:
    await api.deletePod("default", "gone"); // deleted, DEL never ran
    await api.setPod(makePod({ name: "replaced" })); // same name, new UID
    // Deleted with its grace period: terminating until a kubelet confirms it (none runs here).
    const terminating = await api.setPod({ ...pods.terminating, metadata: { ...pods.terminating.metadata, deletionTimestamp: new Date().toISOString() } });
    expect(terminating.metadata.uid).toBe(pods.terminating.metadata.uid);
    expect(terminating.metadata.deletionTimestamp).toBeDefined();
    await runPlugin(conf, { command: "DEL", containerID: "c-parkedKept" }); // parked, StatefulSet lives
    await runPlugin(conf, { command: "DEL", containerID: "c-parkedOrphan" }); // parked, StatefulSet then deleted
    await api.deleteStatefulSet("default", "olddb");
    await api.deletePod("default", "olddb-0");
    await api.deletePod("default", "db-0");
    await api.deletePod("default", "db-1"); // live sticky whose pod vanished: parked for db

    const before = await ls(path);
    const dry = await runCli(["gc", "--conf", path, "--dry-run", "--grace", "0s", "-o", "json", "--kubeconfig", controllerKubeconfig]);
    expect(dry.exitCode).toBe(0);
    const planned = dry.json.done.map((l: any) => `${l.action} ${l.ip}`).sort();
    const expected = [
      `release ${ip.gone}`, `release ${ip.replaced}`, `release ${ip.parkedOrphan}`, `park ${ip.liveSticky}`,
    ].sort();
    expect(planned).toEqual(expected);
    expect(await ls(path)).toEqual(before);

    const young = await runCli(["gc", "--conf", path, "--grace", "1h", "--kubeconfig", controllerKubeconfig]);
    expect(young.stdout).toBe("No leaked addresses (grace 1h)\n");
    expect(await ls(path)).toEqual(before);

    const gc = await runCli(["gc", "--conf", path, "--grace", "0s", "--kubeconfig", controllerKubeconfig]);
    expect(gc.exitCode).toBe(0);
    expect(gc.stdout).toContain(`released ${ip.gone} (network ${conf.name}) of pod default/gone, container c-gone: pod "default/gone" is gone`);
    expect(gc.stdout).toContain(`released ${ip.replaced} (network ${conf.name}) of pod default/replaced`);
    expect(gc.stdout).toContain(`released ${ip.parkedOrphan} (network ${conf.name}) of pod default/olddb-0, container c-parkedOrph: StatefulSet "default/olddb" is gone`);
    expect(gc.stdout).toContain(`parked ${ip.liveSticky}`);
    const after = Object.fromEntries((await ls(path)).map((a) => [a.ip, a.containerID]));
    expect(after).toEqual({
      [ip.live]: "c-live",
      [ip.terminating]: "c-terminating",
      [ip.parkedKept]: "c-parkedKept",
      [ip.liveSticky]: "c-liveSticky",
      [ip.noPod]: "c-no-pod",
    });
  });

  test("with the API failing gc fails and releases nothing", async () => {
    const faults = api.faults();
    const { conf, path } = netConf(api.writeKubeconfig(join(dir.path, "kube-faults"), "token", { server: faults.url }));
    const gcKubeconfig = api.writeKubeconfig(join(dir.path, "kube-controller-faults"), "token", { server: faults.url, identity: "controller" });
    await api.setPod(makePod({ name: "orphan" }));
    await add(conf, "c-orphan", "orphan");
    await api.deletePod("default", "orphan");
    faults.failWith(500);
    try {
      const gc = await runCli(["gc", "--conf", path, "--grace", "0s", "--kubeconfig", gcKubeconfig]);
      expect(gc.exitCode).toBe(1);
      expect(gc.stderr).toContain(faults.url);
      expect(gc.stderr).toContain("injected failure 500");
    } finally {
      faults.failWith(undefined);
    }
    expect((await ls(path)).length).toBe(1);
  });

  test("without the RBAC rights to list pods and StatefulSets gc fails with the server's 403 and releases nothing", async () => {
    const noRights = api.writeKubeconfig(join(dir.path, "kube-no-rights"), "token", { token: api.noRightsToken });
    const { conf, path } = netConf();
    await api.setPod(makePod({ name: "orphan-3" }));
    await add(conf, "c-orphan-3", "orphan-3");
    await api.deletePod("default", "orphan-3");
    const gc = await runCli(["gc", "--conf", path, "--grace", "0s", "--kubeconfig", noRights]);
    expect(gc.exitCode).toBe(1);
    // Whichever of its two lists is refused first.
    expect(gc.stderr).toMatch(new RegExp(`^kube-ipam: Cannot list (pods|StatefulSets) from Kubernetes API "${api.url}": HTTP 403 Forbidden: ` +
      `(pods|statefulsets\\.apps) is forbidden: User "${NO_RIGHTS_USER}" cannot list resource "(pods|statefulsets)" in API group "(|apps)" at the cluster scope\n$`));
    expect((await ls(path)).length).toBe(1);
  });

  // Run by hand on a node, gc finds the node's kubeconfig (the network config's): the plugin's, which may get
  // a pod but not list them all.
  test("with the plugin's kubeconfig gc fails with the server's 403 and says to pass --kubeconfig; it releases nothing", async () => {
    const { conf, path } = netConf();
    await api.setPod(makePod({ name: "orphan-4" }));
    await add(conf, "c-orphan-4", "orphan-4");
    await api.deletePod("default", "orphan-4");
    const gc = await runCli(["gc", "--conf", path, "--grace", "0s"]);
    expect(gc.exitCode).toBe(1);
    expect(gc.stderr).toMatch(new RegExp(`^kube-ipam: Cannot list (pods|StatefulSets) from Kubernetes API "${api.url}": HTTP 403 Forbidden: ` +
      `(pods|statefulsets\\.apps) is forbidden: User "${PLUGIN_USER}" cannot list resource "(pods|statefulsets)" in API group "(|apps)" at the cluster scope\\. ` +
      "gc reads every pod and StatefulSet of the cluster: pass --kubeconfig FILE with an identity that may list them \\(the controller's, " +
      "or an operator's\\); a node's kubeconfig is the CNI plugin's, which may not\n$"));
    expect((await ls(path)).length).toBe(1);
    const withFlag = await runCli(["gc", "--conf", path, "--grace", "0s", "--kubeconfig", controllerKubeconfig, "-o", "json"]);
    expect({ exitCode: withFlag.exitCode, stderr: withFlag.stderr }).toEqual({ exitCode: 0, stderr: "" });
    expect(withFlag.json.done.map((l: any) => l.podName)).toEqual(["orphan-4"]);
  });

  test("with the API server down gc fails and releases nothing", async () => {
    const down = `https://127.0.0.1:${freePorts(1)[0]}`;
    const { conf, path } = netConf();
    await api.setPod(makePod({ name: "orphan-2" }));
    await add(conf, "c-orphan-2", "orphan-2");
    await api.deletePod("default", "orphan-2");
    const gc = await runCli(["gc", "--conf", path, "--grace", "0s", "--kubeconfig",
      api.writeKubeconfig(join(dir.path, "kube-down"), "token", { server: down, identity: "controller" })]);
    expect(gc.exitCode).toBe(1);
    expect(gc.stderr).toContain(`${down}": connection refused`);
    expect((await ls(path)).length).toBe(1);
  });
});

interface Controller {
  proc: Subprocess;
  port: number;
}

function startController(path: string): Controller {
  const [port] = freePorts(1) as [number];
  const proc = Bun.spawn([BINARY, "controller", "--conf", path, "--kubeconfig", controllerKubeconfig, "--metrics-addr", `127.0.0.1:${port}`,
    "--gc-interval", "300ms", "--grace", "0s", "--lease-ttl", "2s", "--auth", "none"], { stdout: "pipe", stderr: "pipe" });
  return { proc, port };
}

async function metrics(c: Controller): Promise<string | undefined> {
  try {
    const res = await fetch(`http://127.0.0.1:${c.port}/metrics`);
    return res.ok ? await res.text() : undefined;
  } catch {
    return undefined;
  }
}

function metric(text: string | undefined, line: string): number | undefined {
  const m = text?.split("\n").find((l) => l.startsWith(`${line} `));
  return m === undefined ? undefined : Number(m.slice(line.length + 1));
}

/** Polls `check` until it returns a value, for at most `ms`. */
async function eventually<T>(what: string, ms: number, check: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    const v = await check();
    if (v !== undefined) return v;
    await Bun.sleep(100);
  }
  throw new Error(`Timed out waiting for ${what}`);
}

describe("kube-ipam controller", () => {
  test("two replicas, one leader; the leader releases leaks; killed, the other takes over; metrics match the store", async () => {
    const { conf, path } = netConf();
    const a = startController(path);
    const b = startController(path);
    try {
      const leader = await eventually("exactly one leader", 15_000, async () => {
        const [ma, mb] = await Promise.all([metrics(a), metrics(b)]);
        const la = metric(ma, "kube_ipam_leader"), lb = metric(mb, "kube_ipam_leader");
        if (la === undefined || lb === undefined || la + lb !== 1) return undefined;
        return la === 1 ? a : b;
      });
      const follower = leader === a ? b : a;
      expect((await fetch(`http://127.0.0.1:${follower.port}/healthz`)).status).toBe(200);

      // Two pods, one of which then vanishes without DEL: the leader releases it, and only it.
      await api.setPod(makePod({ name: "keep-me" }));
      await api.setPod(makePod({ name: "leak-1" }));
      const kept = await add(conf, "c-keep", "keep-me");
      await add(conf, "c-leak-1", "leak-1");
      await api.deletePod("default", "leak-1");
      await eventually("the first leak released", 15_000, async () => ((await ls(path)).length === 1 ? true : undefined));
      expect((await ls(path)).map((x) => x.ip)).toEqual([kept]);

      // Metrics agree with the store.
      const m = await metrics(leader);
      const labels = `{network="${conf.name}",range="10.70.0.1-10.70.0.254",range_set="0"}`;
      expect(metric(m, `kube_ipam_pool_used${labels}`)).toBe(1);
      expect(metric(m, `kube_ipam_pool_size${labels}`)).toBe(253);
      expect(metric(m, `kube_ipam_pool_free${labels}`)).toBe(252);
      expect(metric(m, `kube_ipam_allocations_total{network="${conf.name}"}`)).toBe(2);
      expect(metric(m, `kube_ipam_releases_total{network="${conf.name}"}`)).toBe(1);
      expect(metric(m, `kube_ipam_gc_releases_total{network="${conf.name}"}`)).toBe(1);
      expect(metric(m, `kube_ipam_build_info{version="0.1.0"}`)).toBe(1);

      // The leader dies; the other replica takes over and collects the next leak.
      leader.proc.kill(9);
      await leader.proc.exited;
      await eventually("the follower leading", 15_000, async () => (metric(await metrics(follower), "kube_ipam_leader") === 1 ? true : undefined));
      await api.setPod(makePod({ name: "leak-2" }));
      await add(conf, "c-leak-2", "leak-2");
      await api.deletePod("default", "leak-2");
      await eventually("the second leak released", 15_000, async () => ((await ls(path)).length === 1 ? true : undefined));
      expect((await ls(path)).map((x) => x.ip)).toEqual([kept]);
      expect(metric(await metrics(follower), `kube_ipam_gc_releases_total{network="${conf.name}"}`)).toBe(1);
    } finally {
      for (const c of [a, b]) c.proc.kill(9);
      await Promise.all([a.proc.exited, b.proc.exited]);
    }
  }, 60_000);
});
