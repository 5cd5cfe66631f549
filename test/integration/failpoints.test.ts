// Crash points: a test build of the binary (FAILPOINTS=1) SIGKILLs itself at a named point (src/lib/failpoint.ts),
// the way a node losing power or the OOM killer would. After each crash: a retried ADD returns the same
// address, DEL releases it, and no address is ever held twice. The release build ignores the failpoints.
import { beforeAll, describe, expect, test } from "bun:test";
import { readdirSync, readFileSync, utimesSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { startAgent } from "../support/agent.ts";
import { useCluster } from "../support/fixtures.ts";
import { makePod, makeStatefulSet } from "../support/kube_apiserver.ts";
import { BINARY, CORE_BINARY, etcdNetConf, fileNetConf, listAllocations, runPlugin } from "../support/plugin.ts";

const env = useCluster({ kubeApi: true });
let testBuild: string;

beforeAll(() => {
  testBuild = join(env.dir.path, "kube-ipam-failpoints");
  const build = Bun.spawnSync(["bash", resolve(import.meta.dir, "../../scripts/build.sh")], {
    env: { ...process.env, FAILPOINTS: "1", OUT: testBuild }, stdout: "pipe", stderr: "pipe",
  });
  if (build.exitCode !== 0) throw new Error(`test build failed: ${build.stderr}`);
});

const crashAt = (point: string) => ({ KUBE_IPAM_FAILPOINTS: point });
const SIGKILLED = 128 + 9;
const addressOf = (r: { json: any }): string => r.json.ips[0].address.split("/")[0];
const podArgs = (name: string) => `K8S_POD_NAMESPACE=default;K8S_POD_NAME=${name}`;

type Conf = ReturnType<typeof etcdNetConf> | ReturnType<typeof fileNetConf>;
let nets = 0;
const stores: [string, (ipam?: Record<string, unknown>) => Conf][] = [
  ["etcd", (ipam = {}) => etcdNetConf(env.etcd.endpoint, env.dir.path, { agentSocket: "", subnet: "10.53.0.0/24", ...ipam }, `fp${nets++}`)],
  ["the embedded store", (ipam = {}) => fileNetConf(join(env.dir.path, `f${nets++}`), { agentSocket: "", subnet: "10.53.0.0/24", ...ipam })],
];

/** Held addresses, each once, with their containers. */
async function held(conf: Conf): Promise<Map<string, string>> {
  const list = await listAllocations(conf, env.dir.path);
  const byIp = new Map(list.map((a: any) => [a.ip, a.containerID]));
  expect(byIp.size).toBe(list.length);
  return byIp;
}

describe.each(stores)("crash points, %s", (name, makeConf) => {
  test("claim.committed: the retried ADD returns the claimed address; DEL releases it", async () => {
    const conf = makeConf();
    const crashed = await runPlugin(conf, { command: "ADD", containerID: "c1", env: crashAt("claim.committed") }, testBuild);
    expect(crashed.exitCode).toBe(SIGKILLED);
    expect(crashed.stdout).toBe("");
    const claimed = [...(await held(conf)).entries()];
    expect(claimed.map(([, c]) => c)).toEqual(["c1"]);
    const retry = await runPlugin(conf, { command: "ADD", containerID: "c1" }, testBuild);
    expect(addressOf(retry)).toBe(claimed[0]![0]);
    expect((await runPlugin(conf, { command: "DEL", containerID: "c1" }, testBuild)).exitCode).toBe(0);
    expect((await held(conf)).size).toBe(0);
  }, 30_000);

  test("release.committed: the retried DEL succeeds and nothing stays held", async () => {
    const conf = makeConf();
    expect((await runPlugin(conf, { command: "ADD", containerID: "c2" }, testBuild)).exitCode).toBe(0);
    const crashed = await runPlugin(conf, { command: "DEL", containerID: "c2", env: crashAt("release.committed") }, testBuild);
    expect(crashed.exitCode).toBe(SIGKILLED);
    expect((await runPlugin(conf, { command: "DEL", containerID: "c2" }, testBuild)).exitCode).toBe(0);
    expect((await held(conf)).size).toBe(0);
  }, 30_000);

  test("takeover.replaced: the fixed address taken over from a gone pod is the retried ADD's; DEL releases it", async () => {
    const conf = makeConf({ kubeConfig: env.kubeconfig });
    await env.api.setPod(makePod({ name: `old-${name.length}`, annotations: { "kube-ipam.ip": "10.53.0.99" } }));
    expect((await runPlugin(conf, { command: "ADD", containerID: "old", args: podArgs(`old-${name.length}`) }, testBuild)).exitCode).toBe(0);
    await env.api.deletePod("default", `old-${name.length}`); // lost with its node: no DEL
    await env.api.setPod(makePod({ name: `new-${name.length}`, annotations: { "kube-ipam.ip": "10.53.0.99" } }));
    const args = podArgs(`new-${name.length}`);
    const crashed = await runPlugin(conf, { command: "ADD", containerID: "new", args, env: crashAt("takeover.replaced") }, testBuild);
    expect(crashed.exitCode).toBe(SIGKILLED);
    expect((await held(conf)).get("10.53.0.99")).toBe("new");
    expect(addressOf(await runPlugin(conf, { command: "ADD", containerID: "new", args }, testBuild))).toBe("10.53.0.99");
    expect((await runPlugin(conf, { command: "DEL", containerID: "old" }, testBuild)).exitCode).toBe(0); // the late DEL of the old sandbox
    expect((await held(conf)).get("10.53.0.99")).toBe("new");
    expect((await runPlugin(conf, { command: "DEL", containerID: "new" }, testBuild)).exitCode).toBe(0);
    expect((await held(conf)).size).toBe(0);
  }, 30_000);

  test("sticky.reclaimed: the pod's parked address is the retried ADD's; DEL parks it again", async () => {
    const conf = makeConf({ kubeConfig: env.kubeconfig });
    const sts = await env.api.setStatefulSet(makeStatefulSet({ name: `db${name.length}` }));
    const pod = `db${name.length}-0`;
    await env.api.setPod(makePod({ name: pod, ownerStatefulSet: sts }));
    const first = addressOf(await runPlugin(conf, { command: "ADD", containerID: "s1", args: podArgs(pod) }, testBuild));
    expect((await runPlugin(conf, { command: "DEL", containerID: "s1" }, testBuild)).exitCode).toBe(0);
    await env.api.setPod(makePod({ name: pod, ownerStatefulSet: sts })); // re-created: a new UID
    const crashed = await runPlugin(conf, { command: "ADD", containerID: "s2", args: podArgs(pod), env: crashAt("sticky.reclaimed") }, testBuild);
    expect(crashed.exitCode).toBe(SIGKILLED);
    expect(addressOf(await runPlugin(conf, { command: "ADD", containerID: "s2", args: podArgs(pod) }, testBuild))).toBe(first);
    expect([...(await held(conf)).entries()]).toEqual([[first, "s2"]]);
    expect((await runPlugin(conf, { command: "DEL", containerID: "s2" }, testBuild)).exitCode).toBe(0);
    const parked = await listAllocations(conf, env.dir.path);
    expect(parked.map((a: any) => [a.ip, a.kind])).toEqual([[first, "sticky"]]);
  }, 30_000);

  test("gc.released: a gc run killed after one release; the next run releases the rest, never a live pod's address", async () => {
    const conf = makeConf({ kubeConfig: env.kubeconfig });
    const live = `live-${name.length}`;
    await env.api.setPod(makePod({ name: live }));
    expect((await runPlugin(conf, { command: "ADD", containerID: "live", args: podArgs(live) }, testBuild)).exitCode).toBe(0);
    for (const i of [1, 2, 3]) {
      const pod = `gone${i}-${name.length}`;
      await env.api.setPod(makePod({ name: pod }));
      expect((await runPlugin(conf, { command: "ADD", containerID: `gone${i}`, args: podArgs(pod) }, testBuild)).exitCode).toBe(0);
      await env.api.deletePod("default", pod); // its node was lost: no DEL
    }
    const confFile = join(env.dir.path, `gc-${name.length}.conf`);
    writeFileSync(confFile, JSON.stringify(conf));
    // --max-release 100%: three of four is over the guard's default, and these are real leaks. gc lists every
    // pod: the controller's identity.
    const kubeconfig = env.controllerKubeconfig;
    const gc = (env: Record<string, string> = {}) => Bun.spawn([testBuild, "gc", "--conf", confFile, "--grace", "0s", "--max-release", "100%",
      "--kubeconfig", kubeconfig],
      { env: { ...process.env, ...env }, stdout: "pipe", stderr: "pipe" }).exited;
    expect(await gc(crashAt("gc.released"))).toBe(SIGKILLED);
    // One leak released, then the crash: the live pod's address and the two other leaks are still held.
    const after = [...(await held(conf)).values()];
    expect(after).toHaveLength(3);
    expect(after).toContain("live");
    expect(await gc()).toBe(0);
    expect([...(await held(conf)).values()]).toEqual(["live"]);
  }, 30_000);

  test("agent.accepted: an agent that dies after accepting leaves the plugin to run the ADD; the address is the retry's", async () => {
    const agent = await startAgent(join(env.dir.path, `agent-${name.length}`), { binary: testBuild, env: crashAt("agent.accepted") });
    const conf = makeConf({ agentSocket: agent.socket });
    const r = await runPlugin(conf, { command: "ADD", containerID: "a1" }, testBuild);
    expect(r.exitCode).toBe(0);
    await agent.proc.exited;
    expect(agent.proc.signalCode).toBe("SIGKILL");
    expect([...(await held(conf)).entries()]).toEqual([[addressOf(r), "a1"]]);
    expect((await runPlugin(conf, { command: "DEL", containerID: "a1" }, testBuild)).exitCode).toBe(0);
  }, 30_000);

  test("plugin.forwarded: a plugin that dies after handing the ADD over; the agent's claim is the retry's address", async () => {
    const agent = await startAgent(join(env.dir.path, `agent2-${name.length}`), { binary: testBuild });
    try {
      const conf = makeConf({ agentSocket: agent.socket });
      const crashed = await runPlugin(conf, { command: "ADD", containerID: "p1", env: crashAt("plugin.forwarded") }, testBuild);
      expect(crashed.exitCode).toBe(SIGKILLED);
      const retry = await runPlugin(conf, { command: "ADD", containerID: "p1" }, testBuild);
      expect(retry.exitCode).toBe(0);
      expect([...(await held(conf)).entries()]).toEqual([[addressOf(retry), "p1"]]);
      expect((await runPlugin(conf, { command: "DEL", containerID: "p1" }, testBuild)).exitCode).toBe(0);
      expect((await held(conf)).size).toBe(0);
    } finally {
      await agent.stop();
    }
  }, 30_000);
});

describe("a slow ADD overlapped by the runtime's retry", () => {
  test("etcd: the retry claims while the first attempt stalls; the first then settles on the retry's address", async () => {
    const conf = etcdNetConf(env.etcd.endpoint, env.dir.path, { agentSocket: "", subnet: "10.55.0.0/24" }, "overlap");
    const slow = runPlugin(conf, { command: "ADD", containerID: "o1", env: { KUBE_IPAM_FAILPOINTS: "add.prepared=sleep:1500" } }, testBuild);
    // The retry starts while the first attempt has read the owner's claims (none) and not yet claimed.
    await Bun.sleep(300);
    const retry = await runPlugin(conf, { command: "ADD", containerID: "o1" }, testBuild);
    const first = await slow;
    expect(retry.exitCode).toBe(0);
    expect(first.exitCode).toBe(0);
    expect(addressOf(first)).toBe(addressOf(retry));
    expect([...(await held(conf)).entries()]).toEqual([[addressOf(retry), "o1"]]);
  }, 30_000);
});

describe("crash points, the embedded store's two-step claim", () => {
  test("file.claim.unlinked: the owner entry without its address is no claim; the retry gets an address, DEL leaves nothing", async () => {
    const conf = fileNetConf(join(env.dir.path, "unlinked"), { agentSocket: "", subnet: "10.54.0.0/24" });
    const crashed = await runPlugin(conf, { command: "ADD", containerID: "u1", env: crashAt("file.claim.unlinked") }, testBuild);
    expect(crashed.exitCode).toBe(SIGKILLED);
    expect((await held(conf)).size).toBe(0);
    const retry = await runPlugin(conf, { command: "ADD", containerID: "u1" }, testBuild);
    expect(retry.exitCode).toBe(0);
    expect([...(await held(conf)).entries()]).toEqual([[addressOf(retry), "u1"]]);
    expect((await runPlugin(conf, { command: "DEL", containerID: "u1" }, testBuild)).exitCode).toBe(0);
    expect((await held(conf)).size).toBe(0);
    // What the crash left, an owner entry linked to no address, is debris once it is old enough (a claim in
    // progress is never touched): the GC verb sweeps it.
    const owners = join(conf.ipam.dataDir, conf.name, "owners");
    expect(readdirSync(owners)).toEqual([`u1:eth0:${"0a360002"}`]);
    const old = new Date(Date.now() - 3_600_000);
    utimesSync(join(owners, "u1:eth0:0a360002"), old, old);
    const gc = await runPlugin({ ...conf, cniVersion: "1.1.0", "cni.dev/valid-attachments": [] }, { command: "GC" }, testBuild);
    expect(gc.exitCode).toBe(0);
    expect(readdirSync(owners)).toEqual([]);
  }, 30_000);
});

describe("the release build", () => {
  test("ignores the failpoint environment and does not contain it", async () => {
    const conf = fileNetConf(join(env.dir.path, "release"), { agentSocket: "" });
    const all = "claim.committed,release.committed,file.claim.unlinked,plugin.forwarded,add.prepared";
    expect((await runPlugin(conf, { command: "ADD", containerID: "r1", env: { KUBE_IPAM_FAILPOINTS: all } }, BINARY)).exitCode).toBe(0);
    expect((await runPlugin(conf, { command: "DEL", containerID: "r1", env: { KUBE_IPAM_FAILPOINTS: all } }, BINARY)).exitCode).toBe(0);
    // And through the agent, past the forwarder's point and the agent's.
    const agent = await startAgent(join(env.dir.path, "release-agent"), { env: { KUBE_IPAM_FAILPOINTS: `${all},agent.accepted` } });
    try {
      const viaAgent = { ...conf, ipam: { ...conf.ipam, agentSocket: agent.socket } };
      expect((await runPlugin(viaAgent, { command: "ADD", containerID: "r2", env: { KUBE_IPAM_FAILPOINTS: all } }, BINARY)).exitCode).toBe(0);
      expect((await runPlugin(viaAgent, { command: "DEL", containerID: "r2", env: { KUBE_IPAM_FAILPOINTS: all } }, BINARY)).exitCode).toBe(0);
      expect([await agent.served("ADD"), await agent.served("DEL")]).toEqual([1, 1]);
    } finally {
      await agent.stop();
    }
    // Both executables: the forwarder (C, compiled with or without its failpoint) and the core.
    for (const release of [BINARY, CORE_BINARY]) expect(readFileSync(release).includes("KUBE_IPAM_FAILPOINTS")).toBe(false);
    for (const test of [testBuild, join(dirname(testBuild), "kube-ipam-core")]) expect(readFileSync(test).includes("KUBE_IPAM_FAILPOINTS")).toBe(true);
  }, 30_000);
});
