// kube-ipam in a real Kubernetes: kube-apiserver, controller-manager, scheduler and a kubelet on containerd
// (scripts/cluster.sh), with kube-ipam installed from deploy/ by kubectl apply. Pods are real: the kubelet
// asks containerd for a sandbox, containerd runs Debian's bridge plugin, and the bridge plugin runs
// /opt/cni/bin/kube-ipam with the arguments Kubernetes really sends; the agent and the controller run in the
// DaemonSet's and the Deployment's pods. The tests run in order: later ones use what earlier ones leave.
import { afterAll, describe, expect, test } from "bun:test";
import { readFileSync, statSync } from "node:fs";
import { resolve } from "node:path";
import { freePorts } from "../support/etcd.ts";
import { eventually } from "../support/eventually.ts";
import { CLUSTER_SCRIPT, type PodRow, run, useRealCluster } from "../support/cluster.ts";

const k8s = useRealCluster();
const WORKLOAD = "localhost/kube-ipam-test/httpd:1";
const SEED_DEPLOYMENT = resolve(import.meta.dir, "manifests/fixed-ip-test-Deployment.yaml");
const AGENT_METRICS = 9154;
const CONTROLLER_METRICS = 9153;

/** Column `name` of `kubectl get pod NAME -o wide`, read off the table a user reads. */
async function wideColumn(pod: string, name: string): Promise<string> {
  const [header, row] = (await k8s.kubectlOk(["get", "pod", pod, "-o", "wide"])).trimEnd().split("\n");
  const cols = header!.split(/\s{2,}/);
  return row!.split(/\s{2,}/)[cols.indexOf(name)]!;
}

async function deleteAndWait(kind: string, name: string, selector: string): Promise<void> {
  await k8s.kubectlOk(["delete", kind, name, "--ignore-not-found", "--wait=true"]);
  await eventually(`pods ${selector} gone`, () => k8s.pods(selector), (ps) => ps.length === 0, { withinMs: 90_000, everyMs: 250 });
}

function deployment(name: string, opts: { replicas: number; annotations?: Record<string, string>; extra?: string }): string {
  const annotations = Object.entries(opts.annotations ?? {}).map(([k, v]) => `        ${k}: ${JSON.stringify(v)}`).join("\n");
  return `apiVersion: apps/v1
kind: Deployment
metadata: { name: ${name} }
spec:
  replicas: ${opts.replicas}
  selector: { matchLabels: { app: ${name} } }
  template:
    metadata:
      labels: { app: ${name} }
      annotations:
${annotations || "        {}"}
    spec:
      terminationGracePeriodSeconds: 30
      containers:
        - name: main
          image: ${WORKLOAD}
          imagePullPolicy: IfNotPresent
${opts.extra ?? ""}
`;
}

describe("the seed's walkthrough", () => {
  test("a fixed IP from annotations: kubectl shows it, the pod's netns has it, the replacement pod gets it again", async () => {
    await k8s.kubectlOk(["apply", "-f", SEED_DEPLOYMENT]);
    const [pod] = await k8s.runningPods("k8s-app=cloudnativer-test", 1);
    expect(await wideColumn(pod!.name, "IP")).toBe("10.188.0.216");
    expect(await k8s.addressesInPodNetns(pod!)).toEqual(["10.188.0.216/16"]);

    await k8s.kubectlOk(["delete", "pod", pod!.name]);
    const [next] = await k8s.runningPods("k8s-app=cloudnativer-test", 1);
    expect(next!.name).not.toBe(pod!.name);
    expect(await wideColumn(next!.name, "IP")).toBe("10.188.0.216");
    expect(await k8s.addressesInPodNetns(next!)).toEqual(["10.188.0.216/16"]);
    const held = (await k8s.allocations()).filter((a) => a.ip === "10.188.0.216");
    expect(held.map((a) => [a.podName, a.kind])).toEqual([[next!.name, "fixed"]]);
  }, 240_000);

  test("a rolling update: the surge pod waits (code 101, retried by the kubelet), then takes the address over", async () => {
    // The old pod's preStop hook holds it in Terminating until the test has seen the new pod refused, so the
    // overlap happens on every run rather than when the timing allows.
    const hold = `          lifecycle:
            preStop:
              exec: { command: ["sh", "-c", "while [ ! -e /tmp/release ]; do sleep 0.2; done"] }`;
    const yaml = (rev: string) => deployment("fixed-roll", { replicas: 1, annotations: { "kube-ipam.ip": "10.188.0.217", revision: rev }, extra: hold })
      .replace("  replicas: 1\n", "  replicas: 1\n  strategy: { type: RollingUpdate, rollingUpdate: { maxSurge: 1, maxUnavailable: 1 } }\n");
    await k8s.apply(yaml("1"));
    const [old] = await k8s.runningPods("app=fixed-roll", 1);
    expect(old!.ip).toBe("10.188.0.217");

    await k8s.apply(yaml("2"));
    const surge = await eventually("the surge pod", () => k8s.pods("app=fixed-roll"), (ps) => ps.some((p) => p.name !== old!.name), { withinMs: 30_000, everyMs: 250 })
      .then((ps) => ps.find((p) => p.name !== old!.name)!);
    const refused = await eventually(`a refused sandbox for ${surge.name}`, () => k8s.events(surge.name),
      (es) => es.some((e) => e.startsWith("FailedCreatePodSandBox") && e.includes(`is held by pod "default/${old!.name}"`)), { withinMs: 60_000, everyMs: 250 });
    expect(refused.join("\n")).toContain('Address "10.188.0.217" in network "k8snetwork"');
    expect((await k8s.pods("app=fixed-roll")).find((p) => p.name === surge.name)!.ip).toBeUndefined();

    await k8s.kubectlOk(["exec", old!.name, "--", "touch", "/tmp/release"]);
    const [now] = await k8s.runningPods("app=fixed-roll", 1, "default", 120_000);
    expect(now!.name).toBe(surge.name);
    expect(now!.ip).toBe("10.188.0.217");
    expect(await k8s.addressesInPodNetns(now!)).toEqual(["10.188.0.217/16"]);
    await deleteAndWait("deployment", "fixed-roll", "app=fixed-roll");
  }, 300_000);

  afterAll(async () => {
    await deleteAndWait("deployment", "fixed-ip-test", "k8s-app=cloudnativer-test");
    const left = (await k8s.allocations()).filter((a) => a.ip === "10.188.0.216" || a.ip === "10.188.0.217");
    expect(left).toEqual([]);
  }, 120_000);
});

describe("a StatefulSet", () => {
  test("scaled 3 -> 0 -> 3 keeps every pod's address, and nobody else gets them meanwhile", async () => {
    await k8s.apply(`apiVersion: apps/v1
kind: StatefulSet
metadata: { name: db }
spec:
  serviceName: db
  replicas: 3
  podManagementPolicy: Parallel
  selector: { matchLabels: { app: db } }
  template:
    metadata: { labels: { app: db } }
    spec:
      containers: [{ name: db, image: ${WORKLOAD}, imagePullPolicy: IfNotPresent }]
`);
    const before = new Map((await k8s.runningPods("app=db", 3)).map((p) => [p.name, p.ip]));
    expect([...before.keys()].sort()).toEqual(["db-0", "db-1", "db-2"]);

    await k8s.kubectlOk(["scale", "statefulset", "db", "--replicas", "0"]);
    await eventually("db scaled to 0", () => k8s.pods("app=db"), (ps) => ps.length === 0, { withinMs: 90_000, everyMs: 250 });
    const parked = (await k8s.allocations()).filter((a) => a.podName?.startsWith("db-"));
    expect(new Map(parked.map((a): [string, string | undefined] => [a.podName!, a.ip]))).toEqual(before);

    await k8s.kubectlOk(["scale", "statefulset", "db", "--replicas", "3"]);
    const after = new Map((await k8s.runningPods("app=db", 3)).map((p) => [p.name, p.ip]));
    expect(after).toEqual(before);
  }, 300_000);
  // db stays up: the gc test below checks that a live StatefulSet's addresses are never released.
});

describe("reserved addresses", () => {
  test("are never given to a pod: dynamic pods take only what is left, a fixed one is refused by name", async () => {
    const held = new Set((await k8s.allocations()).map((a) => a.ip));
    const free: number[] = [];
    for (let i = 10; i <= 200; i++) if (!held.has(`10.188.0.${i}`)) free.push(i);
    const keep = free.slice(-3); // the only three addresses not reserved
    const ranges: string[] = [];
    let from = 10;
    for (const k of [...keep, 201]) {
      if (k > from) ranges.push(from === k - 1 ? `10.188.0.${from}` : `10.188.0.${from}-10.188.0.${k - 1}`);
      from = k + 1;
    }
    const reserved = (await k8s.ipam(["reserve", "e2e-reserved", ...ranges]));
    expect(reserved.code).toBe(0);
    try {
      await k8s.apply(deployment("reserved-test", { replicas: 3 }));
      const pods = await k8s.runningPods("app=reserved-test", 3);
      expect(pods.map((p) => p.ip).sort()).toEqual(keep.map((k) => `10.188.0.${k}`).sort());

      await k8s.kubectlOk(["scale", "deployment", "reserved-test", "--replicas", "4"]);
      const fourth = await eventually("a fourth pod", () => k8s.pods("app=reserved-test"), (ps) => ps.length === 4, { withinMs: 30_000, everyMs: 250 })
        .then((ps) => ps.find((p) => !pods.some((q) => q.name === p.name))!);
      await eventually(`${fourth.name} refused: no free address`, () => k8s.events(fourth.name),
        (es) => es.some((e) => e.startsWith("FailedCreatePodSandBox") && e.includes('No free address in network "k8snetwork"')), { withinMs: 60_000, everyMs: 250 });

      const reservedFree = `10.188.0.${free[0]}`;
      await k8s.apply(deployment("reserved-fixed", { replicas: 1, annotations: { "kube-ipam.ip": reservedFree } }));
      const [fixed] = await eventually("the fixed pod", () => k8s.pods("app=reserved-fixed"), (ps) => ps.length === 1, { withinMs: 30_000, everyMs: 250 });
      await eventually(`${fixed!.name} refused: reserved`, () => k8s.events(fixed!.name),
        (es) => es.some((e) => e.includes(`Address "${reservedFree}" is reserved by "e2e-reserved"`)), { withinMs: 60_000, everyMs: 250 });
      const now = await k8s.pods("app=reserved-test");
      expect(now.filter((p) => p.ip !== undefined).map((p) => p.ip).sort()).toEqual(keep.map((k) => `10.188.0.${k}`).sort());
      expect((await k8s.pods("app=reserved-fixed"))[0]!.ip).toBeUndefined();
    } finally {
      await deleteAndWait("deployment", "reserved-fixed", "app=reserved-fixed");
      await deleteAndWait("deployment", "reserved-test", "app=reserved-test");
      expect((await k8s.ipam(["unreserve", "e2e-reserved"])).code).toBe(0);
    }
  }, 300_000);
});

describe("the node agent", () => {
  test("answers an ADD's pod lookup from its cache, fed by the API's watch, with the UID containerd passes", async () => {
    const hits = await k8s.metric(AGENT_METRICS, "kube_ipam_pod_cache_lookups_total", { result: "hit" });
    const misses = await k8s.metric(AGENT_METRICS, "kube_ipam_pod_cache_lookups_total", { result: "miss" });
    await k8s.apply(deployment("cached", { replicas: 2 }));
    await k8s.runningPods("app=cached", 2);
    expect(await k8s.metric(AGENT_METRICS, "kube_ipam_pod_cache_lookups_total", { result: "hit" })).toBeGreaterThanOrEqual(hits + 2);
    expect(await k8s.metric(AGENT_METRICS, "kube_ipam_pod_cache_lookups_total", { result: "miss" })).toBe(misses);
    await deleteAndWait("deployment", "cached", "app=cached");
  }, 180_000);
});

describe("the controller", () => {
  async function controllerPods(): Promise<PodRow[]> {
    return k8s.pods("app.kubernetes.io/component=controller", "kube-system");
  }

  test("gc of a real leak: with the kubelet gone and the pod force-deleted, its address is released, nothing else is", async () => {
    // Short intervals for the test, through the Deployment as an operator would change them. One replica
    // first: on a single node the second replica of deploy/ is Pending (port 9153 is taken), and with it
    // counted unavailable a rollout under maxUnavailable 1 could never replace the running one.
    await k8s.kubectlOk(["-n", "kube-system", "scale", "deployment", "kube-ipam-controller", "--replicas", "1"]);
    await k8s.kubectlOk(["-n", "kube-system", "patch", "deployment", "kube-ipam-controller", "--type", "json", "-p",
      JSON.stringify([{ op: "replace", path: "/spec/template/spec/containers/0/args", value: [
        "controller", "--conf", "/etc/kube-ipam/net/10-kube-ipam.conf", "--metrics-addr", "0.0.0.0:9153", "--gc-interval", "2s", "--grace", "1s"] }])]);
    await k8s.kubectlOk(["-n", "kube-system", "rollout", "status", "deployment/kube-ipam-controller", "--timeout", "120s"]);
    await eventually("a leading controller with the new args", async () => {
      const running = (await controllerPods()).filter((p) => p.phase === "Running" && !p.deleting);
      return running.length === 1 && (await k8s.kubectlOk(["-n", "kube-system", "get", "pod", running[0]!.name, "-o", "jsonpath={.spec.containers[0].args}"])).includes("2s") &&
        (await k8s.metric(CONTROLLER_METRICS, "kube_ipam_leader")) === 1;
    }, (v) => v, { withinMs: 120_000, everyMs: 500 });

    await k8s.apply(deployment("leak", { replicas: 2 }));
    const [victim, survivor] = await k8s.runningPods("app=leak", 2);
    const before = await k8s.allocations();
    const leaked = before.find((a) => a.podName === victim!.name)!;
    expect(leaked.ip).toBe(victim!.ip!);

    await k8s.script(["stop-kubelet"]);
    try {
      await k8s.kubectlOk(["delete", "pod", victim!.name, "--force", "--grace-period=0"]);
      // Still a leak, not a DEL: the sandbox runs on, nobody told the plugin.
      expect(await k8s.addressesInPodNetns(victim!)).toEqual([`${victim!.ip}/16`]);
      const after = await eventually(`${leaked.ip} released by the controller`, () => k8s.allocations(),
        (as) => !as.some((a) => a.containerID === leaked.containerID), { withinMs: 60_000, everyMs: 250 });
      const kept = (as: typeof before) => as.filter((a) => a.containerID !== leaked.containerID).map((a) => `${a.ip} ${a.containerID}`).sort();
      expect(kept(after).filter((l) => kept(before).includes(l))).toEqual(kept(before));
      expect(after.some((a) => a.podName === survivor!.name && a.ip === survivor!.ip)).toBe(true);
    } finally {
      await k8s.script(["start-kubelet"]);
      await eventually("the node Ready again", () => k8s.kubectlOk(["get", "node", "kube-ipam-node", "-o", "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}"]),
        (s) => s === "True", { withinMs: 60_000, everyMs: 250 });
    }
    await k8s.runningPods("app=leak", 2);
    await deleteAndWait("deployment", "leak", "app=leak");
  }, 300_000);

  test("leadership is handed over when the leader's pod is deleted", async () => {
    const [leader] = await eventually("one running controller", controllerPods, (ps) => ps.filter((p) => p.phase === "Running" && !p.deleting).length === 1,
      { withinMs: 60_000, everyMs: 250 }).then((ps) => ps.filter((p) => p.phase === "Running" && !p.deleting));
    expect(await k8s.metric(CONTROLLER_METRICS, "kube_ipam_leader")).toBe(1);
    expect(await k8s.kubectlOk(["-n", "kube-system", "logs", leader!.name])).toContain("became leader");

    await k8s.kubectlOk(["-n", "kube-system", "delete", "pod", leader!.name]);
    const next = await eventually("another controller replica running", controllerPods,
      (ps) => ps.some((p) => p.name !== leader!.name && p.phase === "Running" && !p.deleting) && !ps.some((p) => p.name === leader!.name),
      { withinMs: 120_000, everyMs: 250 }).then((ps) => ps.find((p) => p.phase === "Running")!);
    await eventually(`${next.name} leads`, async () => (await k8s.kubectlOk(["-n", "kube-system", "logs", next.name])).includes("became leader") &&
      (await k8s.metric(CONTROLLER_METRICS, "kube_ipam_leader")) === 1, (v) => v, { withinMs: 120_000, everyMs: 500 });
  }, 300_000);
});

describe("the endpoints on the node", () => {
  test("the agent's and the controller's /metrics: 401 without a token, 403 for an app's, 200 for a metrics reader's; /healthz open", async () => {
    const scraper = await k8s.tokenFor("kube-ipam-test-scraper", "kube-ipam-metrics-reader");
    const app = await k8s.tokenFor("kube-ipam-test-app", undefined);
    for (const port of [AGENT_METRICS, CONTROLLER_METRICS]) {
      expect(await k8s.endpoint(port, "/healthz")).toEqual({ status: 200, body: "ok\n" });
      expect(await k8s.endpoint(port, "/metrics")).toEqual({ status: 401, body: "Unauthorized: no bearer token\n" });
      const refused = await k8s.endpoint(port, "/metrics", app);
      expect(refused.status).toBe(403);
      expect(refused.body).toContain('user "system:serviceaccount:kube-system:kube-ipam-test-app" may not get /metrics');
      const scrape = await k8s.endpoint(port, "/metrics", scraper);
      expect(scrape.status).toBe(200);
      expect(scrape.body).toContain("kube_ipam_build_info");
    }
  }, 60_000);

  test("the dashboard through kubectl port-forward, logged in with a viewer's token as docs/dashboard.md says", async () => {
    const viewer = await k8s.tokenFor("kube-ipam-test-viewer", "kube-ipam-dashboard-viewer");
    const [local] = freePorts(1);
    const forward = Bun.spawn([`${k8s.binDir}/kubectl`, "--kubeconfig", k8s.kubeconfig, "-n", "kube-system", "port-forward",
      "deploy/kube-ipam-controller", `${local}:${CONTROLLER_METRICS}`], { stdout: "pipe", stderr: "pipe" });
    try {
      const reader = forward.stdout.getReader();
      let said = "";
      while (!said.includes("Forwarding from")) {
        const { value, done } = await reader.read();
        if (done) throw new Error(`kubectl port-forward ended: ${said}${await new Response(forward.stderr).text()}`);
        said += new TextDecoder().decode(value);
      }
      const base = `https://127.0.0.1:${local}`;
      const tls = { rejectUnauthorized: false };
      const page = await fetch(`${base}/`, { headers: { accept: "text/html" }, tls } as RequestInit);
      expect(page.status).toBe(401);
      expect(await page.text()).toContain('action="/login"');
      const login = await fetch(`${base}/login`, {
        method: "POST", body: `token=${encodeURIComponent(viewer)}`, redirect: "manual", tls,
        headers: { "content-type": "application/x-www-form-urlencoded" },
      } as RequestInit);
      expect(login.status).toBe(303);
      const cookie = login.headers.get("set-cookie")!.split(";")[0]!;
      const dashboard = await fetch(`${base}/`, { headers: { accept: "text/html", cookie }, tls } as RequestInit);
      expect(dashboard.status).toBe(200);
      expect(await dashboard.text()).toContain("app.js");
      const networks = await fetch(`${base}/api/networks`, { headers: { cookie }, tls } as RequestInit);
      expect(networks.status).toBe(200);
      expect(JSON.stringify(await networks.json())).toContain("k8snetwork");
    } finally {
      forward.kill();
      await forward.exited;
    }
  }, 60_000);
});

describe("the files the DaemonSet writes on the host", () => {
  test("executables 0755, the network config 0644, secrets 0600 in 0700 directories, the log 0600, all root's", () => {
    // After the pods above: install-cni and install-host-files have run, and plugins have logged.
    const modes = Object.fromEntries([
      "/opt/cni/bin/kube-ipam", "/opt/cni/bin/kube-ipam-core", "/etc/cni/net.d/10-kube-ipam.conf",
      "/etc/kube-ipam/kube-ipam.kubeconfig", "/etc/kube-ipam/kubernetes", "/etc/kube-ipam/kubernetes/token",
      "/etc/kube-ipam/kubernetes/ca.crt", "/etc/kube-ipam/etcd", "/etc/kube-ipam/etcd/tls.key", "/etc/kube-ipam/etcd/tls.crt",
      "/etc/kube-ipam/etcd/ca.crt", "/run/kube-ipam", "/var/log/kube-ipam.log",
    ].map((path) => {
      const st = statSync(path);
      return [path, `${(st.mode & 0o7777).toString(8)} ${st.uid}:${st.gid}`];
    }));
    expect(modes).toEqual({
      "/opt/cni/bin/kube-ipam": "755 0:0",
      "/opt/cni/bin/kube-ipam-core": "755 0:0",
      "/etc/cni/net.d/10-kube-ipam.conf": "644 0:0",
      "/etc/kube-ipam/kube-ipam.kubeconfig": "600 0:0",
      "/etc/kube-ipam/kubernetes": "700 0:0",
      "/etc/kube-ipam/kubernetes/token": "600 0:0",
      "/etc/kube-ipam/kubernetes/ca.crt": "600 0:0",
      "/etc/kube-ipam/etcd": "700 0:0",
      "/etc/kube-ipam/etcd/tls.key": "600 0:0",
      "/etc/kube-ipam/etcd/tls.crt": "600 0:0",
      "/etc/kube-ipam/etcd/ca.crt": "600 0:0",
      "/run/kube-ipam": "700 0:0",
      "/var/log/kube-ipam.log": "600 0:0",
    });
    // No secret in the one file others may read.
    expect(readFileSync("/etc/cni/net.d/10-kube-ipam.conf", "utf8")).not.toMatch(/token|BEGIN|PRIVATE/i);
  });
});

describe("scripts/cluster.sh", () => {
  test("up on a running cluster says so; down leaves nothing behind; up after down works", async () => {
    const again = await run(["bash", CLUSTER_SCRIPT, "up"]);
    expect([again.code, again.stderr]).toEqual([0, expect.stringContaining("already up")]);
    await k8s.script(["down"]);
    expect(await k8s.script(["leftovers"])).toBe("");
    expect((await k8s.script(["status"])).trim()).toBe("down");
    await k8s.script(["up"]);
    const node = await k8s.kubectlOk(["get", "node", "kube-ipam-node", "-o", "jsonpath={.status.conditions[?(@.type==\"Ready\")].status}"]);
    expect(node).toBe("True");
    expect(await k8s.allocations()).toEqual([]);
  }, 600_000);
});
