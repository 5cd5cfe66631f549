// Garbage collection and the controller on the Kubernetes store, as gc_controller.test.ts and
// controller_faults.test.ts have them on etcd: the built binary's `kube-ipam gc` and `kube-ipam controller`
// against a real kube-apiserver with kube-ipam's custom resources, the leader elected through the
// coordination.k8s.io Lease kube-system/kube-ipam-controller (read here as the admin). "The controller is in
// the middle of a run" is made exact by holding its pod list at the fault proxy in front of the server; the
// store's requests go through the same proxy in the fence test, so that the leader's lease renewals can be
// held too while its term is taken from it.
import { afterEach, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { type Controller, startController } from "../support/controller.ts";
import { eventually } from "../support/eventually.ts";
import { makePod, makeStatefulSet } from "../support/kube_apiserver.ts";
import { allocationObjects, asController, cli, type KubeConf, kubeNetConf, ls, useKubeDatastore, writeConf } from "../support/kube_datastore.ts";
import { mapLimit, runPlugin } from "../support/plugin.ts";

const env = useKubeDatastore();
const LEASE = "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/kube-ipam-controller";
const running: Controller[] = [];
/** Requests held at the proxy (hold()): let go after each test. */
const gates: (() => void)[] = [];

afterEach(async () => {
  env.api.faults().onRequest = undefined;
  for (const release of gates.splice(0)) release();
  for (const c of running.splice(0)) await c.kill();
  // One Lease for the whole cluster: a killed leader's record would hold the next test's controllers off.
  await env.api.request("DELETE", LEASE);
});

function controller(name: string, path: string, ...flags: string[]): Controller {
  const c = startController(name, path, flags);
  running.push(c);
  return c;
}

async function lease(): Promise<{ holderIdentity?: string; leaseTransitions?: number; leaseDurationSeconds?: number; resourceVersion: string } | undefined> {
  const r = await env.api.request("GET", LEASE);
  return r.status === 200 ? { ...r.body.spec, resourceVersion: r.body.metadata.resourceVersion } : undefined;
}

async function leading(c: Controller, withinMs = 15_000): Promise<void> {
  await eventually(`${c.name} leading`, () => c.metric("kube_ipam_leader"), (v) => v === 1, { withinMs });
}

/** Pods named `names`, each with an address; returns container ID -> address. */
async function podsWithAddresses(conf: unknown, names: readonly string[]): Promise<Map<string, string>> {
  for (const name of names) await env.api.setPod(makePod({ name }));
  const ips = await mapLimit(names, 4, async (name) => {
    const r = await runPlugin(conf, { command: "ADD", containerID: `c-${name}`, args: `K8S_POD_NAMESPACE=default;K8S_POD_NAME=${name}` });
    if (r.exitCode !== 0) throw new Error(`ADD ${name} failed: ${r.stdout}`);
    return r.json.ips[0].address.split("/")[0] as string;
  });
  return new Map(names.map((n, i) => [`c-${n}`, ips[i]!]));
}

/** container ID -> address of everything held in the network. */
async function held(conf: unknown): Promise<Map<string, string>> {
  return new Map((await ls(env, conf)).map((a: { containerID: string; ip: string }) => [a.containerID, a.ip]));
}

const sorted = (m: Map<string, string>) => [...m.entries()].sort();

/** Runs the controller finished, whatever their outcome. */
async function runs(c: Controller): Promise<number> {
  let n = 0;
  for (const outcome of ["success", "error", "refused"]) n += (await c.metric(`kube_ipam_gc_runs_total{outcome="${outcome}"}`)) ?? 0;
  return n;
}

const isPodList = (r: string) => r.startsWith("GET /api/v1/pods?") && !r.includes("continue=") && !r.includes("watch=");

/**
 * Holds requests that `match` at the proxy (only those: the others pass) from now on until `release()`;
 * `arrived` resolves when the first of them is there.
 */
function hold(match: (request: string) => boolean) {
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  gates.push(() => release());
  let arrived!: () => void;
  const first = new Promise<void>((r) => (arrived = r));
  const faults = env.api.faults();
  const previous = faults.onRequest;
  faults.onRequest = async (request) => {
    await previous?.(request);
    if (!match(request)) return;
    arrived();
    await gate;
  };
  return { arrived: first, release: () => release() };
}

const GC_FAST = ["--gc-interval", "1s", "--grace", "0s"];

describe("kube-ipam gc", () => {
  test("releases exactly the leaked allocations, each IPAllocation deleted; dry run and grace change nothing", async () => {
    const conf = kubeNetConf(env, { subnet: "10.70.0.0/24" });
    const path = writeConf(env, asController(env, conf)); // gc as the controller runs it; the ADDs are the plugin's
    const sts = await env.api.setStatefulSet(makeStatefulSet({ name: "db" }));
    const goneSts = await env.api.setStatefulSet(makeStatefulSet({ name: "olddb" }));
    const made = {
      live: makePod({ name: "live" }),
      gone: makePod({ name: "gone" }),
      replaced: makePod({ name: "replaced" }),
      parkedKept: makePod({ name: "db-0", ownerStatefulSet: sts }),
      parkedOrphan: makePod({ name: "olddb-0", ownerStatefulSet: goneSts }),
      liveSticky: makePod({ name: "db-1", ownerStatefulSet: sts }),
    };
    const ip = {} as Record<keyof typeof made | "noPod", string>;
    for (const [key, p] of Object.entries(made)) {
      await env.api.setPod(p);
      const r = await runPlugin(conf, { command: "ADD", containerID: `c-${key}`, args: `K8S_POD_NAMESPACE=default;K8S_POD_NAME=${p.metadata.name}` });
      expect(r.exitCode).toBe(0);
      ip[key as keyof typeof made] = r.json.ips[0].address.split("/")[0];
    }
    ip.noPod = (await runPlugin(conf, { command: "ADD", containerID: "c-no-pod" })).json.ips[0].address.split("/")[0];

    await env.api.deletePod("default", "gone"); // deleted, DEL never ran
    await env.api.setPod(makePod({ name: "replaced" })); // same name, new UID
    await runPlugin(conf, { command: "DEL", containerID: "c-parkedKept" }); // parked, StatefulSet lives
    await runPlugin(conf, { command: "DEL", containerID: "c-parkedOrphan" }); // parked, StatefulSet then deleted
    await env.api.deleteStatefulSet("default", "olddb");
    await env.api.deletePod("default", "olddb-0");
    await env.api.deletePod("default", "db-0");
    await env.api.deletePod("default", "db-1"); // live sticky whose pod vanished: parked for db

    const before = await allocationObjects(env.api, conf.name);
    const dry = await cli("gc", "--conf", path, "--dry-run", "--grace", "0s", "-o", "json");
    expect(dry.json.done.map((l: any) => `${l.action} ${l.ip}`).sort())
      .toEqual([`release ${ip.gone}`, `release ${ip.replaced}`, `release ${ip.parkedOrphan}`, `park ${ip.liveSticky}`].sort());
    const young = await cli("gc", "--conf", path, "--grace", "1h");
    expect(young.stdout).toBe("No leaked addresses (grace 1h)\n");
    expect(await allocationObjects(env.api, conf.name)).toEqual(before);

    const gc = await cli("gc", "--conf", path, "--grace", "0s");
    expect(gc.stdout).toContain(`released ${ip.gone} (network ${conf.name}) of pod default/gone, container c-gone: pod "default/gone" is gone`);
    expect(gc.stdout).toContain(`released ${ip.replaced} (network ${conf.name}) of pod default/replaced`);
    expect(gc.stdout).toContain(`released ${ip.parkedOrphan} (network ${conf.name}) of pod default/olddb-0, container c-parkedOrph: StatefulSet "default/olddb" is gone`);
    expect(gc.stdout).toContain(`parked ${ip.liveSticky}`);
    expect(Object.fromEntries(await held(conf))).toEqual({
      "c-live": ip.live, "c-parkedKept": ip.parkedKept, "c-liveSticky": ip.liveSticky, "c-no-pod": ip.noPod,
    });
    const objects = await allocationObjects(env.api, conf.name);
    expect(objects.length).toBe(4);
    expect(objects.find((o) => o.spec.ip === ip.liveSticky).spec.parkedAt).toEqual(expect.any(String));
  });
});

describe("kube-ipam controller", () => {
  test("two replicas, one leader named in the Lease; the leader releases a leak; killed, the other takes the Lease over and collects the next", async () => {
    const conf = kubeNetConf(env, { subnet: "10.71.0.0/24" });
    const path = writeConf(env, asController(env, conf));
    const a = controller("a", path, ...GC_FAST, "--lease-ttl", "2s");
    const b = controller("b", path, ...GC_FAST, "--lease-ttl", "2s");
    const leader = await eventually("exactly one leader", async () => {
      const [la, lb] = await Promise.all([a.metric("kube_ipam_leader"), b.metric("kube_ipam_leader")]);
      return la === undefined || lb === undefined || la + lb !== 1 ? undefined : la === 1 ? a : b;
    }, (v) => v !== undefined, { withinMs: 15_000 });
    const follower = leader === a ? b : a;
    const first = await lease();
    expect(first).toMatchObject({ holderIdentity: `${leader!.name}/${leader!.proc.pid}`, leaseDurationSeconds: 2 });

    const before = await podsWithAddresses(conf, ["keep-me", "leak-1"]);
    await env.api.deletePod("default", "leak-1");
    await eventually("the first leak released", () => held(conf), (m) => m.size === 1);
    expect(sorted(await held(conf))).toEqual([["c-keep-me", before.get("c-keep-me")!]]);
    const labels = `{network="${conf.name}",range="10.71.0.1-10.71.0.254",range_set="0"}`;
    await eventually("the leader's metrics", () => leader!.metric(`kube_ipam_pool_used${labels}`), (v) => v === 1);
    expect(await leader!.metric(`kube_ipam_pool_size${labels}`)).toBe(253);
    expect(await leader!.metric(`kube_ipam_gc_releases_total{network="${conf.name}"}`)).toBe(1);
    expect(await follower.metric(`kube_ipam_gc_releases_total{network="${conf.name}"}`)).toBeUndefined();

    // The leader dies without handing the Lease over; the other waits out the Lease's duration and takes it.
    await leader!.kill();
    await leading(follower);
    const second = await lease();
    expect(second?.holderIdentity).toBe(`${follower.name}/${follower.proc.pid}`);
    expect(second!.leaseTransitions).toBe((first!.leaseTransitions ?? 0) + 1);
    await podsWithAddresses(conf, ["leak-2"]);
    await env.api.deletePod("default", "leak-2");
    await eventually("the second leak released", () => held(conf), (m) => m.size === 1);
    expect(sorted(await held(conf))).toEqual([["c-keep-me", before.get("c-keep-me")!]]);
    expect(await follower.metric(`kube_ipam_gc_releases_total{network="${conf.name}"}`)).toBe(1);
  }, 60_000);

  test("a stopped leader hands the Lease over at once (empty holder): the other replica leads without waiting out the term", async () => {
    const conf = kubeNetConf(env, { subnet: "10.72.0.0/24" });
    const path = writeConf(env, asController(env, conf));
    // A long term: only the hand-over lets B lead within the test's deadline.
    const a = controller("a", path, "--gc-interval", "1h", "--lease-ttl", "60s");
    await leading(a);
    const b = controller("b", path, "--gc-interval", "1h", "--lease-ttl", "60s");
    await eventually("b answering", () => b.metric("kube_ipam_leader"), (v) => v === 0);
    await a.kill("SIGTERM");
    await leading(b, 20_000);
    expect((await lease())?.holderIdentity).toBe(`b/${b.proc.pid}`);
  }, 40_000);

  test("a leader whose term is taken mid-run releases nothing: its write is refused (NotLeaderError), the Lease stays the new holder's", async () => {
    const conf = kubeNetConf(env, { subnet: "10.73.0.0/24" });
    // The controller's store and its pod lists both through the proxy; the plugin's ADDs straight to the API.
    const proxied = env.api.writeKubeconfig(join(env.dir.path, "kube-proxied"), "token", { server: env.api.faults().url, identity: "controller" });
    const path = writeConf(env, { ...conf, ipam: { ...conf.ipam, kubeConfig: proxied } } satisfies KubeConf);
    // A long term: A would not find out by renewing for seconds. Only the fence of its writes stops it.
    const a = controller("a", path, ...GC_FAST, "--lease-ttl", "30s");
    await leading(a);
    const before = await podsWithAddresses(conf, ["rv-live", "rv-leak-1", "rv-leak-2"]);

    // A run's pod list held: the pods go; that run sees the leaks once, and the next run's pod list is held.
    const firstRun = hold(isPodList);
    await firstRun.arrived;
    for (const p of ["rv-leak-1", "rv-leak-2"]) await env.api.deletePod("default", p);
    env.api.faults().onRequest = undefined;
    const secondRun = hold(isPodList);
    firstRun.release();
    await secondRun.arrived;
    const finished = await runs(a);

    // Its second sighting is about to release them: the term is taken from it now, and its renewals are held
    // so that only the fence of its writes can find out.
    const renewals = hold((r) => r.startsWith("PUT /apis/coordination.k8s.io/"));
    const current = (await env.api.request("GET", LEASE)).body;
    expect(current.spec.holderIdentity).toBe(`a/${a.proc.pid}`);
    const taken = await env.api.request("PUT", LEASE, {
      ...current,
      spec: { ...current.spec, holderIdentity: "usurper", leaseTransitions: (current.spec.leaseTransitions ?? 0) + 1, renewTime: current.spec.renewTime },
    });
    expect(taken.status).toBe(200);
    secondRun.release();

    await eventually("A's run ending", () => runs(a), (v) => v > finished);
    expect(sorted(await held(conf))).toEqual(sorted(before));
    expect((await allocationObjects(env.api, conf.name)).length).toBe(3);
    expect(await a.metric(`kube_ipam_gc_runs_total{outcome="error"}`)).toBe(1);
    expect(a.log()).toContain(`Not the leader any more (Lease kube-system/kube-ipam-controller is held by \\"usurper\\"`);
    expect(a.log()).toContain(`"msg":"gc run failed: nothing released"`);
    expect(await a.metric(`kube_ipam_gc_releases_total{network="${conf.name}"}`)).toBeUndefined();
    await eventually("A following", () => a.metric("kube_ipam_leader"), (v) => v === 0);
    renewals.release();
    const after = await lease();
    expect(after).toMatchObject({ holderIdentity: "usurper", leaseTransitions: (current.spec.leaseTransitions ?? 0) + 1 });
    expect(after!.resourceVersion).toBe(taken.body.metadata.resourceVersion);
  }, 60_000);
});
