// The agent's pod cache, end to end: a real agent process watching a real kube-apiserver for the pods of its
// node as its own identity (kube-ipam-agent, --kubeconfig; through the fault proxy, so that a test can cut its
// watch), the built binary as the plugin (kube-ipam-plugin, which may not list or watch pods), a real etcd. An
// ADD reads its pod from the cache; a pod the cache has not seen is one GET, as the plugin does on its own.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { type Agent, metricValue, startAgent } from "../support/agent.ts";
import { eventually } from "../support/eventually.ts";
import { useCluster } from "../support/fixtures.ts";
import { makePod } from "../support/kube_apiserver.ts";
import { etcdNetConf, runPlugin } from "../support/plugin.ts";

const env = useCluster({ kubeApi: true });
let agent: Agent;
let kubeconfig: string; // the plugin's, through env.api.faults()

beforeAll(async () => {
  const faults = env.api.faults().url;
  agent = await startAgent(join(env.dir.path, "agent"), {
    kubeconfig: env.api.writeKubeconfig(join(env.dir.path, "kube-agent-faults"), "token", { server: faults, identity: "agent" }),
  });
  kubeconfig = env.api.writeKubeconfig(join(env.dir.path, "kube-faults"), "token", { server: faults });
});
afterAll(async () => {
  await agent.stop();
});

const conf = () => etcdNetConf(env.etcd.endpoint, env.dir.path, {
  subnet: "10.48.0.0/24", kubeConfig: kubeconfig, nodeName: "node-a", agentSocket: agent.socket,
}, "podnet");

const addressOf = (r: { json: any }): string => r.json.ips[0].address.split("/")[0];
const podArgs = (name: string, uid?: string) => `K8S_POD_NAMESPACE=default;K8S_POD_NAME=${name}${uid ? `;K8S_POD_UID=${uid}` : ""}`;
const lookups = async (result: "hit" | "miss") => metricValue(await agent.metrics(), "kube_ipam_pod_cache_lookups_total", { result });
/**
 * ADDs (each undone by its DEL) for `pod`, by name and UID, until one gets `address`: until the watch delivers
 * a changed annotation, an ADD may still see the old one. The address seen and how many ADDs it took.
 */
async function addUntil(c: ReturnType<typeof conf>, pod: { metadata: { name: string; uid: string } }, address: string) {
  let tries = 0;
  const seen = await eventually(`${pod.metadata.name}'s new annotation`, async () => {
    const id = `${pod.metadata.name}-b${tries++}`;
    const r = await runPlugin(c, { command: "ADD", containerID: id, args: podArgs(pod.metadata.name, pod.metadata.uid) });
    await runPlugin(c, { command: "DEL", containerID: id });
    return addressOf(r);
  }, (ip) => ip === address);
  return { seen, tries };
}

const getsOf = (name: string) => env.api.requests.filter((r) => r.startsWith(`GET /api/v1/namespaces/default/pods/${name}`)).length;

describe("the agent's pod cache", () => {
  test("an annotation changed through the API is seen by a later ADD, read from the cache without a GET", async () => {
    const c = conf();
    const pod = await env.api.setPod(makePod({ name: "db-0", nodeName: "node-a", annotations: { "kube-ipam.ip": "10.48.0.50" } }));
    const first = await runPlugin(c, { command: "ADD", containerID: "db-0-a", args: podArgs("db-0", pod.metadata.uid) });
    expect(addressOf(first)).toBe("10.48.0.50");
    expect(await agent.served("ADD")).toBe(1);
    // The first ADD on this node starts the cache: a list and a watch of node-a's pods only.
    await eventually("the cache's watch", () => env.api.openWatches, (n) => n === 1);
    expect(env.api.watchRequests.every((r) => r.includes("fieldSelector=spec.nodeName%3Dnode-a"))).toBe(true);
    expect((await runPlugin(c, { command: "DEL", containerID: "db-0-a" })).exitCode).toBe(0);

    await env.api.setPod({ ...pod, metadata: { ...pod.metadata, annotations: { "kube-ipam.ip": "10.48.0.60" } } });
    const getsBefore = getsOf("db-0");
    const hitsBefore = await lookups("hit");
    const { seen, tries } = await addUntil(c, pod, "10.48.0.60");
    expect(seen).toBe("10.48.0.60");
    expect(getsOf("db-0")).toBe(getsBefore);
    expect(await lookups("hit")).toBe(hitsBefore + tries);
  }, 30_000);

  test("without K8S_POD_UID the pod is fetched: by name alone the cache could answer with a replaced pod", async () => {
    const c = conf();
    const pod = await env.api.setPod(makePod({ name: "db-1", nodeName: "node-a", annotations: { "kube-ipam.ip": "10.48.0.80" } }));
    await runPlugin(c, { command: "ADD", containerID: "warm-up", args: podArgs("db-0") }); // the cache runs
    await runPlugin(c, { command: "DEL", containerID: "warm-up" });
    // The cache holds db-1 once a UID-named ADD of it is a hit.
    await eventually("db-1 in the cache", async () => {
      const before = await lookups("hit");
      const r = await runPlugin(c, { command: "ADD", containerID: "db-1-probe", args: podArgs("db-1", pod.metadata.uid) });
      await runPlugin(c, { command: "DEL", containerID: "db-1-probe" });
      expect(addressOf(r)).toBe("10.48.0.80");
      return (await lookups("hit")) - before;
    }, (hits) => hits === 1);
    const gets = getsOf("db-1");
    const misses = await lookups("miss");
    const r = await runPlugin(c, { command: "ADD", containerID: "db-1-a", args: podArgs("db-1") });
    expect(addressOf(r)).toBe("10.48.0.80");
    expect(getsOf("db-1")).toBe(gets + 1);
    expect(await lookups("miss")).toBe(misses + 1);
    expect((await runPlugin(c, { command: "DEL", containerID: "db-1-a" })).exitCode).toBe(0);
  }, 30_000);

  test("a pod the cache has not seen is fetched with one GET", async () => {
    const c = conf();
    // On another node: never in node-a's cache, whatever the watch has delivered.
    const web = await env.api.setPod(makePod({ name: "web-1", nodeName: "node-b", annotations: { "kube-ipam.ip": "10.48.0.70" } }));
    const missesBefore = await lookups("miss");
    const r = await runPlugin(c, { command: "ADD", containerID: "web-1-a", args: podArgs("web-1", web.metadata.uid) });
    expect(addressOf(r)).toBe("10.48.0.70");
    expect(await lookups("miss")).toBe(missesBefore + 1);
    expect(getsOf("web-1")).toBe(1);
    expect((await runPlugin(c, { command: "DEL", containerID: "web-1-a" })).exitCode).toBe(0);
  }, 30_000);

  test("the cache outlives the budget of the request that started it: a watch cut later is listed and watched again", async () => {
    // node-b's cache is started by an ADD with a 1 s budget; its later lists and watches must not inherit it.
    const c = { ...conf(), ipam: { ...conf().ipam, nodeName: "node-b", timeoutSeconds: 1 } };
    const pod = await env.api.setPod(makePod({ name: "web-0", nodeName: "node-b", annotations: { "kube-ipam.ip": "10.48.0.90" } }));
    const started = Date.now();
    expect(addressOf(await runPlugin(c, { command: "ADD", containerID: "web-0-a", args: podArgs("web-0", pod.metadata.uid) }))).toBe("10.48.0.90");
    expect((await runPlugin(c, { command: "DEL", containerID: "web-0-a" })).exitCode).toBe(0);
    const ofNodeB = (rs: readonly string[]) => rs.filter((r) => r.includes("spec.nodeName%3Dnode-b")).length;
    const lists = () => ofNodeB(env.api.requests) - ofNodeB(env.api.watchRequests);
    await eventually("node-b's watch", () => ofNodeB(env.api.watchRequests), (n) => n >= 1);
    await Bun.sleep(Math.max(0, started + 1500 - Date.now())); // setup: the starting request's budget is spent
    const listed = lists();
    // The change lands while the watch is cut and the API server restarts (its watch cache forgets the
    // history): the watch resumed from the last resourceVersion gets 410 Expired, and only a new list brings it.
    const faults = env.api.faults();
    const failedBefore = ofNodeB(faults.watchRequests);
    faults.failWith(503);
    faults.dropWatches();
    await eventually("a resume of node-b's watch refused", () => ofNodeB(faults.watchRequests), (n) => n > failedBefore);
    await env.api.setPod({ ...pod, metadata: { ...pod.metadata, annotations: { "kube-ipam.ip": "10.48.0.91" } } });
    await env.api.restart();
    faults.failWith(undefined);
    await eventually("a new list of node-b's pods", lists, (n) => n > listed, { withinMs: 20_000 });
    const getsBefore = getsOf("web-0");
    const { seen } = await addUntil(c, pod, "10.48.0.91");
    expect(seen).toBe("10.48.0.91");
    expect(getsOf("web-0")).toBe(getsBefore);
  }, 30_000);

  test("the API server restarts under the agent (straight to it, no proxy): ADDs keep working, the cache catches up", async () => {
    const direct = await startAgent(join(env.dir.path, "agent-direct"), {
      kubeconfig: env.api.writeKubeconfig(join(env.dir.path, "kube-agent"), "token", { identity: "agent" }),
    });
    try {
      await restartUnder(direct);
    } finally {
      await direct.stop();
    }
  }, 30_000);

  async function restartUnder(direct: Agent): Promise<void> {
    const c = { ...conf(), ipam: { ...conf().ipam, nodeName: "node-c", kubeConfig: env.kubeconfig, agentSocket: direct.socket } };
    const pod = await env.api.setPod(makePod({ name: "kv-0", nodeName: "node-c", annotations: { "kube-ipam.ip": "10.48.0.100" } }));
    expect(addressOf(await runPlugin(c, { command: "ADD", containerID: "kv-0-a", args: podArgs("kv-0", pod.metadata.uid) }))).toBe("10.48.0.100");
    expect((await runPlugin(c, { command: "DEL", containerID: "kv-0-a" })).exitCode).toBe(0);
    const ofNodeC = (rs: readonly string[]) => rs.filter((r) => r.includes("spec.nodeName%3Dnode-c")).length;
    await eventually("node-c's watch", () => ofNodeC(env.api.watchRequests), (n) => n >= 1);
    await env.api.restart(); // SIGKILL: the watch and every connection to it are cut
    // A pod the cache cannot know yet (created after the restart, on another node): one GET, at once.
    const other = await env.api.setPod(makePod({ name: "kv-9", nodeName: "node-d", annotations: { "kube-ipam.ip": "10.48.0.109" } }));
    const r = await runPlugin(c, { command: "ADD", containerID: "kv-9-a", args: podArgs("kv-9", other.metadata.uid) });
    expect(r.stdout).toContain("10.48.0.109");
    expect((await runPlugin(c, { command: "DEL", containerID: "kv-9-a" })).exitCode).toBe(0);
    await env.api.setPod({ ...pod, metadata: { ...pod.metadata, annotations: { "kube-ipam.ip": "10.48.0.101" } } });
    const { seen } = await addUntil(c, pod, "10.48.0.101");
    expect(seen).toBe("10.48.0.101");
    expect(await direct.served("ADD")).toBeGreaterThanOrEqual(3);
  }

  test("a pod the API does not know fails the ADD with code 11, as the plugin does", async () => {
    const viaAgent = await runPlugin(conf(), { command: "ADD", containerID: "ghost-a", args: podArgs("ghost") });
    const direct = await runPlugin({ ...conf(), ipam: { ...conf().ipam, agentSocket: "" } }, { command: "ADD", containerID: "ghost-a", args: podArgs("ghost") });
    expect(viaAgent.json.code).toBe(11);
    expect(viaAgent.stdout).toBe(direct.stdout);
  }, 30_000);
});
