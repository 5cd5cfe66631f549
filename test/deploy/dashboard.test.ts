// deploy/grafana-dashboard.json: a Grafana JSON model that imports anywhere (a data source input), and whose
// every PromQL expression names only metrics and labels the binary really exports. Those are read from real
// processes, not from the source: a controller and a node agent of the built binary, on etcd and
// a real kube-apiserver, made to produce every sample the dashboard reads (an ADD and a DEL through the
// agent, a request it refuses, a leaked address that gc releases), then scraped.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { type Agent, metricValue, startAgent } from "../support/agent.ts";
import { type Controller, sampleOf, startController } from "../support/controller.ts";
import { type EtcdServer, startEtcd } from "../support/etcd.ts";
import { type KubeApiServer, makePod, startKubeApiServer } from "../support/kube_apiserver.ts";
import { etcdNetConf, runPlugin, tempDir } from "../support/plugin.ts";
import { checkExpr, type ExportedMetrics, exportedMetrics, TARGET_LABELS } from "../support/promql_check.ts";

type Any = any;
const dashboard: Any = JSON.parse(readFileSync(resolve(import.meta.dir, "../../deploy/grafana-dashboard.json"), "utf8"));

/** Every panel, those inside rows included. */
function panels(list: Any[] = dashboard.panels): Any[] {
  return list.flatMap((p) => [p, ...panels(p.panels ?? [])]);
}

const queries: { panel: string; expr: string }[] = panels().flatMap((p) => (p.targets ?? []).map((t: Any) => ({ panel: p.title, expr: t.expr })));
const variables: Any[] = dashboard.templating.list;
const BUILTIN_VARIABLES = ["__rate_interval", "__interval", "__range"];

/** The expression as Prometheus gets it: Grafana's interval variables as a duration, the others (in label values) as a regex. */
function substitute(expr: string): string {
  return expr.replace(/\$(__rate_interval|__interval|__range)\b/g, "5m").replace(/\$\{?(\w+)\}?/g, ".*");
}

describe("the dashboard's JSON model", () => {
  test("a current Grafana's schema, a Prometheus data source input and a data source variable every query uses", () => {
    expect(dashboard.schemaVersion).toBe(42); // what Grafana 12 and 13 write (@grafana/schema 13.2 too)
    expect(dashboard.uid).toBe("kube-ipam");
    expect(dashboard.id).toBeNull();
    expect(dashboard.__inputs).toEqual([expect.objectContaining({ name: "DS_PROMETHEUS", type: "datasource", pluginId: "prometheus" })]);
    const ds = variables.find((v) => v.type === "datasource");
    expect(ds).toMatchObject({ name: "datasource", query: "prometheus", current: { value: "${DS_PROMETHEUS}" } });
    const refs = [...panels().filter((p) => p.type !== "row"), ...variables.filter((v) => v.type === "query")]
      .flatMap((x) => [x.datasource, ...(x.targets ?? []).map((t: Any) => t.datasource)]);
    expect(refs.length).toBeGreaterThan(0);
    for (const ref of refs) expect(ref).toEqual({ type: "prometheus", uid: "${datasource}" });
  });

  test("panels have unique ids and fit the 24-column grid; every one that is not a row has a query", () => {
    const all = panels();
    expect(new Set(all.map((p) => p.id)).size).toBe(all.length);
    for (const p of all) {
      expect(p.gridPos.x + p.gridPos.w).toBeLessThanOrEqual(24);
      if (p.type !== "row") expect(p.targets.length).toBeGreaterThan(0);
    }
  });

  test("variables for the network and the node, and every variable an expression uses is defined", () => {
    expect(variables.filter((v) => v.type === "query").map((v) => [v.name, v.definition])).toEqual([
      ["network", "label_values(kube_ipam_pool_size, network)"],
      ["instance", "label_values(kube_ipam_agent_requests_in_flight, instance)"],
    ]);
    const defined = new Set([...variables.map((v) => v.name), ...BUILTIN_VARIABLES]);
    for (const { expr } of queries) for (const [, name] of expr.matchAll(/\$\{?(\w+)\}?/g)) expect(defined).toContain(name);
  });

  test("it reads pools, allocations, conflicts, CNI latency and outcomes, the pod cache, refusals, gc, leadership and builds", () => {
    const named = new Set(queries.flatMap(({ expr }) => [...expr.matchAll(/kube_ipam_[a-z_]+/g)].map((m) => m[0])));
    for (const metric of [
      "kube_ipam_pool_used", "kube_ipam_pool_size", "kube_ipam_pool_free", "kube_ipam_pool_reserved",
      "kube_ipam_allocations_total", "kube_ipam_releases_total", "kube_ipam_conflicts_total",
      "kube_ipam_cni_request_duration_seconds_bucket", "kube_ipam_cni_request_duration_seconds_count",
      "kube_ipam_pod_cache_lookups_total", "kube_ipam_agent_refused_total", "kube_ipam_gc_runs_total",
      "kube_ipam_gc_releases_total", "kube_ipam_leader", "kube_ipam_build_info",
    ]) expect(named).toContain(metric);
    expect(queries.map((q) => q.expr)).toContainEqual(expect.stringContaining('kube_ipam_gc_runs_total{outcome="refused"}'));
    expect(queries.map((q) => q.expr)).toContainEqual(expect.stringContaining("histogram_quantile(0.99, sum by (verb, le) (rate(kube_ipam_cni_request_duration_seconds_bucket"));
  });
});

describe("the metrics the binary exports", () => {
  let etcd: EtcdServer;
  let api: KubeApiServer;
  let agent: Agent;
  let controller: Controller;
  let dir: ReturnType<typeof tempDir>;
  let exported: ExportedMetrics;

  async function eventually<T>(what: string, check: () => Promise<T | undefined>, ms = 20_000): Promise<T> {
    const deadline = Date.now() + ms;
    for (;;) {
      const v = await check();
      if (v !== undefined) return v;
      if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
      await Bun.sleep(100);
    }
  }

  beforeAll(async () => {
    dir = tempDir("kube-ipam-dashboard-");
    [etcd, api] = await Promise.all([startEtcd(), startKubeApiServer()]);
    // Each component as its own identity: the plugin (the network config's), the agent, the controller.
    const kubeconfig = api.writeKubeconfig(join(dir.path, "kube"), "token");
    agent = await startAgent(dir.path, { kubeconfig: api.writeKubeconfig(join(dir.path, "kube-agent"), "token", { identity: "agent" }) });
    const conf = etcdNetConf(etcd.endpoint, dir.path, { subnet: "10.71.0.0/24", kubeConfig: kubeconfig, agentSocket: agent.socket });
    const path = join(dir.path, "net.conf");
    writeFileSync(path, JSON.stringify(conf));
    const controllerKubeconfig = api.writeKubeconfig(join(dir.path, "kube-controller"), "token", { identity: "controller" });
    controller = startController("dashboard-0", path, ["--kubeconfig", controllerKubeconfig, "--gc-interval", "300ms", "--grace", "0s", "--lease-ttl", "2s"]);
    await eventually("the controller leading", async () => ((await controller.metric("kube_ipam_leader")) === 1 ? true : undefined));

    // Through the agent: an ADD for a pod that stays, one for a pod that then goes without DEL (a leak), a DEL.
    for (const pod of ["stays", "leaks", "deleted"]) {
      await api.setPod(makePod({ name: pod }));
      const r = await runPlugin(conf, { command: "ADD", containerID: `c-${pod}`, args: `K8S_POD_NAMESPACE=default;K8S_POD_NAME=${pod}` });
      expect(r.exitCode).toBe(0);
    }
    expect((await runPlugin(conf, { command: "DEL", containerID: "c-deleted" })).exitCode).toBe(0);
    await api.deletePod("default", "deleted");
    await api.deletePod("default", "leaks");
    expect(await agent.served("ADD")).toBe(3);
    // A request the agent refuses: not the protocol.
    await Bun.connect({ unix: agent.socket, socket: { data() {}, open(s) { s.write("not a request\n"); } } });
    await eventually("a refusal counted", async () => (metricValue(await agent.metrics(), "kube_ipam_agent_refused_total") > 0 ? true : undefined));
    // The leader releases the leak once it has seen it twice.
    await eventually("gc releasing the leak", async () =>
      (sampleOf(await controller.metrics(), `kube_ipam_gc_releases_total{network="${conf.name}"}`) === 1 ? true : undefined));

    exported = exportedMetrics([(await controller.metrics())!, await agent.metrics()]);
  }, 90_000);

  afterAll(async () => {
    await controller?.kill();
    await agent?.stop();
    await api?.stop();
    await etcd?.stop();
    dir?.cleanup();
  });

  test("every kube_ipam_ name in the dashboard is exported with samples", () => {
    const named = new Set(queries.flatMap(({ expr }) => [...expr.matchAll(/kube_ipam_[a-z_]+/g)].map((m) => m[0])));
    for (const v of variables) for (const m of String(v.definition ?? "").matchAll(/kube_ipam_[a-z_]+/g)) named.add(m[0]);
    const missing = [...named].filter((n) => !exported.names.has(n) || !exported.labels.has(n));
    expect(missing).toEqual([]);
  });

  test.each(queries.map((q) => [q.panel, q.expr.replace(/\s+/g, " "), q.expr] as const))("%s: %s", (_panel, _oneLine, expr) => {
    expect(checkExpr(substitute(expr), exported)).toEqual([]);
  });

  test("variable queries name an exported metric and one of its labels", () => {
    for (const v of variables.filter((x) => x.type === "query")) {
      const m = /^label_values\((\w+),\s*(\w+)\)$/.exec(v.definition);
      expect(m).not.toBeNull();
      expect(v.query.query).toBe(v.definition);
      expect([...(exported.labels.get(m![1]!) ?? []), ...TARGET_LABELS]).toContain(m![2]!);
    }
  });

  test("the check fails on a metric or a label the binary does not export", () => {
    const table: [string, string][] = [
      ["kube_ipam_pool_usd", '"kube_ipam_pool_usd": no process exports it'],
      ['sum(kube_ipam_gc_runs_total{result="refused"})', 'matcher on "result" in "kube_ipam_gc_runs_total{result="refused"}": not a label there (instance, job, outcome)'],
      ["sum by (node) (kube_ipam_leader)", 'by "node" in "sum by (node) (kube_ipam_leader)": not a label there (instance, job)'],
      ["histogram_quantile(0.9, sum by (verb) (rate(kube_ipam_cni_request_duration_seconds_bucket[5m])))",
        'histogram_quantile needs "le" in "sum by (verb) (rate(kube_ipam_cni_request_duration_seconds_bucket[5m]))": not a label there (verb)'],
      ["sum by (verb, le) (rate(kube_ipam_cni_request_duration_seconds_count[5m]))",
        'by "le" in "sum by (verb, le) (rate(kube_ipam_cni_request_duration_seconds_count[5m]))": not a label there (instance, job, outcome, verb)'],
      ["max by (network) (kube_ipam_pool_used) / on (range) max by (network) (kube_ipam_pool_size)",
        'on "range" in "max by (network) (kube_ipam_pool_used) / on (range) max by (network) (kube_ipam_pool_size)": not a label there (network)'],
    ];
    for (const [expr, problem] of table) expect(checkExpr(expr, exported)).toEqual([problem]);
  });
});
