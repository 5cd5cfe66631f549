// deploy/: the manifests parse, and agree with the binary (its commands and flags), with each other (paths,
// names, ports) and with the plugin's config loader. Runs dist/kube-ipam; no cluster, no image.
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { loadIpamConfig } from "../../src/config/ipam_config.ts";
import { decodeNetworkConfig, selectKubeIpamConfig } from "../../src/config/network_file.ts";
import { loadKubeConfig } from "../../src/k8s/kubeconfig.ts";
import { DEFAULT_AGENT_SOCKET } from "../../src/agent/protocol.ts";
import { freePorts } from "../support/etcd.ts";
import { BINARY, runCli, tempDir } from "../support/plugin.ts";

const DEPLOY = resolve(import.meta.dir, "../../deploy");
const VERSION: string = JSON.parse(readFileSync(resolve(import.meta.dir, "../../package.json"), "utf8")).version;
const IMAGE = `kube-ipam:${VERSION}`;
const BINARY_IN_IMAGE = "/usr/local/bin/kube-ipam";
const NAMESPACE = "kube-system";
const MANIFESTS = ["rbac.yaml", "configmap.yaml", "kube-ipam-daemonset.yaml", "kube-ipam-controller.yaml"];

type Any = any;

/** Every document of a YAML file (Bun.YAML.parse returns an array for several documents). */
function loadDocs(file: string): Any[] {
  const parsed = Bun.YAML.parse(readFileSync(join(DEPLOY, file), "utf8"));
  return (Array.isArray(parsed) ? parsed : [parsed]).filter((d) => d !== null && d !== undefined);
}

const docs = Object.fromEntries(MANIFESTS.map((f) => [f, loadDocs(f)]));

function find(file: string, kind: string, name?: string): Any {
  const found = docs[file]!.filter((d) => d.kind === kind && (name === undefined || d.metadata.name === name));
  if (found.length !== 1) throw new Error(`${file}: expected one ${kind}${name ? ` "${name}"` : ""}, found ${found.length}`);
  return found[0];
}

const daemonSet = find("kube-ipam-daemonset.yaml", "DaemonSet");
const deployment = find("kube-ipam-controller.yaml", "Deployment");
const configMap = find("configmap.yaml", "ConfigMap");
const installCni = daemonSet.spec.template.spec.containers.find((c: Any) => c.name === "install-cni");
const hostFiles = daemonSet.spec.template.spec.initContainers.find((c: Any) => c.name === "install-host-files");
const controller = deployment.spec.template.spec.containers.find((c: Any) => c.name === "controller");

/** `--flag value` and `--flag=value` pairs of an args list; switches get "". */
function flagValues(args: readonly string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (!a.startsWith("--")) continue;
    const eq = a.indexOf("=");
    if (eq >= 0) out.set(a.slice(0, eq), a.slice(eq + 1));
    else if (args[i + 1] !== undefined && !args[i + 1]!.startsWith("--")) out.set(a, args[++i]!);
    else out.set(a, "");
  }
  return out;
}

function volume(podSpec: Any, name: string): Any {
  const v = podSpec.volumes.find((x: Any) => x.name === name);
  if (!v) throw new Error(`no volume "${name}"`);
  return v;
}

/** The volume mounted at `mountPath` in `container`, and that mount. */
function volumeAt(podSpec: Any, container: Any, mountPath: string): { volume: Any; mount: Any } {
  const mount = container.volumeMounts.find((m: Any) => m.mountPath === mountPath);
  if (!mount) throw new Error(`${container.name}: nothing mounted at ${mountPath}`);
  return { volume: volume(podSpec, mount.name), mount };
}

/** The mount of `container` that holds `path` (the deepest one), with its volume. */
function mountHolding(podSpec: Any, container: Any, path: string): { volume: Any; mount: Any } {
  const mounts = container.volumeMounts.filter((m: Any) => path === m.mountPath || path.startsWith(`${m.mountPath}/`));
  if (mounts.length === 0) throw new Error(`${container.name}: nothing mounted holds ${path}`);
  const mount = mounts.sort((a: Any, b: Any) => b.mountPath.length - a.mountPath.length)[0];
  return { volume: volume(podSpec, mount.name), mount };
}

/** The absolute file paths a Secret volume mounted at `mountPath` provides. */
function secretFiles(podSpec: Any, container: Any, secretName: string): string[] {
  const mount = container.volumeMounts.find((m: Any) => volume(podSpec, m.name).secret?.secretName === secretName);
  if (!mount) throw new Error(`${container.name}: Secret ${secretName} is not mounted`);
  const items: Any[] = volume(podSpec, mount.name).secret.items;
  return items.map((i) => `${mount.mountPath}/${i.path}`).sort();
}

function env(container: Any, name: string): Any {
  const e = container.env.find((x: Any) => x.name === name);
  if (!e) throw new Error(`${container.name}: no env ${name}`);
  return e;
}

/** The ConfigMap's one network config, and the path it is mounted at in `container`. */
function configFile(podSpec: Any, container: Any, path: string): { key: string; text: string } {
  const slash = path.lastIndexOf("/");
  const { volume: v } = volumeAt(podSpec, container, path.slice(0, slash));
  expect(v.configMap?.name).toBe(configMap.metadata.name);
  const key = path.slice(slash + 1);
  expect(Object.keys(configMap.data)).toContain(key);
  return { key, text: configMap.data[key] };
}

const networkConfig = (() => {
  const keys = Object.keys(configMap.data);
  expect(keys).toHaveLength(1);
  return JSON.parse(configMap.data[keys[0]!]);
})();
const etcdFiles = [
  networkConfig.ipam.etcdConfig.etcdCertFile,
  networkConfig.ipam.etcdConfig.etcdKeyFile,
  networkConfig.ipam.etcdConfig.etcdTrustedCAFileFile,
].sort();

let dir: ReturnType<typeof tempDir>;
beforeEach(() => {
  dir = tempDir("kube-ipam-deploy-");
});
afterEach(() => dir.cleanup());

describe("every manifest", () => {
  // Fields, types and required fields against the Kubernetes schemas: schema.test.ts.
  test.each(MANIFESTS)("%s: DNS names, in kube-system unless cluster-scoped", (file) => {
    expect(docs[file]!.length).toBeGreaterThan(0);
    for (const d of docs[file]!) {
      expect(d.metadata.name).toMatch(/^[a-z0-9][a-z0-9.-]*$/);
      const clusterScoped = ["ClusterRole", "ClusterRoleBinding"].includes(d.kind);
      expect(d.metadata.namespace).toBe(clusterScoped ? undefined : NAMESPACE);
    }
  });

  test("every container runs the image kube-ipam:VERSION", () => {
    for (const pod of [daemonSet.spec.template.spec, deployment.spec.template.spec]) {
      for (const c of [...(pod.initContainers ?? []), ...pod.containers]) expect(c.image).toBe(IMAGE);
    }
  });

  test("workload selectors match their pod labels", () => {
    for (const w of [daemonSet, deployment]) {
      for (const [k, v] of Object.entries(w.spec.selector.matchLabels)) expect(w.spec.template.metadata.labels[k]).toBe(v);
    }
  });
});

describe("the binary accepts what the manifests run", () => {
  let help: string;
  beforeEach(async () => {
    const r = await runCli(["help"]);
    expect(r.exitCode).toBe(0);
    help = r.stdout;
  });

  test("help lists the controller and install-cni commands with every flag the manifests pass", () => {
    for (const [container, command] of [[controller, "controller"], [installCni, "install-cni"]] as const) {
      expect(container.command).toEqual([BINARY_IN_IMAGE]);
      expect(container.args[0]).toBe(command);
      const line = help.split("\n").findIndex((l) => l.includes(`kube-ipam ${command} `));
      expect(line).toBeGreaterThanOrEqual(0);
      // The command's usage: its line and the continuation lines indented under it.
      const usage = help.split("\n").slice(line, line + 4).join("\n");
      for (const flag of flagValues(container.args.slice(1)).keys()) expect(usage).toContain(flag);
    }
  });

  test("the controller gets exactly --conf, --metrics-addr, --gc-interval, --grace (in-cluster credentials)", () => {
    const flags = flagValues(controller.args.slice(1));
    expect([...flags.keys()].sort()).toEqual(["--conf", "--gc-interval", "--grace", "--metrics-addr"]);
    expect(flags.get("--gc-interval")).toMatch(/^\d+(s|m|h)$/);
    expect(flags.get("--grace")).toMatch(/^\d+(s|m|h)$/);
    expect(flags.get("--metrics-addr")).toMatch(/^[0-9.]+:\d+$/);
    expect(controller.args).toHaveLength(1 + 2 * flags.size); // the command, then flag-value pairs only
  });

  test("the controller's arguments parse: only --conf is wrong once it names a missing file", async () => {
    // Flags and durations are checked before the config is read: a usage error would be exit 2.
    const args = [...controller.args];
    args[args.indexOf("--conf") + 1] = join(dir.path, "missing.conf");
    const r = await runCli(args);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain(join(dir.path, "missing.conf"));
  });

  test("the DaemonSet's install-cni runs as written against the ConfigMap, then serves as the node agent until SIGTERM", async () => {
    // The host's directories and the ConfigMap mount, moved into a temporary directory.
    const flags = flagValues(installCni.args.slice(1));
    const map = (p: string) => join(dir.path, p);
    for (const d of [flags.get("--bin-dir")!, flags.get("--conf-dir")!]) mkdirSync(map(d), { recursive: true });
    const conf = flags.get("--conf")!;
    mkdirSync(map(conf.slice(0, conf.lastIndexOf("/"))), { recursive: true });
    writeFileSync(map(conf), configFile(daemonSet.spec.template.spec, installCni, conf).text);
    const [port] = freePorts(1);
    // The host's paths under the temporary directory, the agent's metrics on a free port.
    const args = installCni.args.map((a: string) => (a.startsWith("/") ? map(a) : a === flags.get("--metrics-addr") ? `127.0.0.1:${port}` : a));
    // In the pod the agent's identity is the service account token kubelet mounts; here a kubeconfig stands
    // in for it (nothing is asked of the API unless a request brings a token).
    const identity = map("agent.kubeconfig");
    writeFileSync(identity, "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: \"https://127.0.0.1:1\"}}]\n" +
      "users: [{name: u, user: {token: t}}]\ncontexts: [{name: x, context: {cluster: c, user: u}}]\ncurrent-context: x\n");
    args.push("--kubeconfig", identity);

    const proc = Bun.spawn([BINARY, ...args], {
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin", KUBE_IPAM_NODE_NAME: "node-7" },
      stdout: "pipe",
      stderr: "pipe",
    });
    const reader = proc.stderr.getReader();
    let log = "";
    while (!log.includes('"agent started"')) {
      const { value, done } = await reader.read();
      if (done) break;
      log += new TextDecoder().decode(value);
    }
    expect(log).toContain('"agent started"');
    const socket = map(flags.get("--socket")!);
    expect(statSync(socket).mode & 0o777).toBe(0o600);
    // As written: HTTPS, /healthz for the probe, /metrics only with a token.
    const tls = { rejectUnauthorized: false };
    expect((await fetch(`https://127.0.0.1:${port}/healthz`, { tls } as RequestInit)).status).toBe(200);
    expect((await fetch(`https://127.0.0.1:${port}/metrics`, { tls } as RequestInit)).status).toBe(401);
    proc.kill("SIGTERM");
    expect(await proc.exited).toBe(0);
    expect(await new Response(proc.stdout).text()).toContain("Running the node agent");

    const installed = JSON.parse(readFileSync(join(map(flags.get("--conf-dir")!), conf.slice(conf.lastIndexOf("/") + 1)), "utf8"));
    expect(installed.ipam.nodeName).toBe("node-7");
    expect(statSync(join(map(flags.get("--bin-dir")!), "kube-ipam")).mode & 0o777).toBe(0o755);
  });
});

describe("DaemonSet", () => {
  const pod = daemonSet.spec.template.spec;

  test("--bin-dir and --conf-dir are the host's /opt/cni/bin and /etc/cni/net.d", () => {
    const flags = flagValues(installCni.args.slice(1));
    for (const [flag, hostPath] of [["--bin-dir", "/opt/cni/bin"], ["--conf-dir", "/etc/cni/net.d"]] as const) {
      const { volume: v, mount } = volumeAt(pod, installCni, flags.get(flag)!);
      expect(v.hostPath.path).toBe(hostPath);
      expect(mount.readOnly ?? false).toBe(false);
    }
    expect(flags.has("--agent")).toBe(true);
  });

  test("the agent's socket is the host's /run/kube-ipam and the plugin's default; its probe is its metrics port", () => {
    const flags = flagValues(installCni.args.slice(1));
    expect(flags.get("--socket")).toBe(DEFAULT_AGENT_SOCKET);
    expect(networkConfig.ipam.agentSocket ?? DEFAULT_AGENT_SOCKET).toBe(flags.get("--socket"));
    const { volume: v, mount } = mountHolding(pod, installCni, flags.get("--socket")!);
    expect(v.hostPath.path).toBe(mount.mountPath);
    const port = Number(flags.get("--metrics-addr")!.split(":").pop());
    expect(installCni.readinessProbe.httpGet).toEqual({ path: "/healthz", port, scheme: "HTTPS" });
    expect(installCni.ports).toContainEqual({ name: "agent-metrics", containerPort: port });
  });

  test("Prometheus annotations point at the agent's --metrics-addr port", () => {
    const port = flagValues(installCni.args.slice(1)).get("--metrics-addr")!.split(":").pop();
    expect(daemonSet.spec.template.metadata.annotations).toEqual({
      "prometheus.io/scrape": "true", "prometheus.io/scheme": "https", "prometheus.io/port": port, "prometheus.io/path": "/metrics",
    });
  });

  test("the agent sees every host file the network config names at the host's own path", () => {
    const ipam = networkConfig.ipam;
    const files = [ipam.kubeConfig, ipam.logFile ?? "/var/log/kube-ipam.log", ...etcdFiles];
    if (!ipam.etcdConfig) files.push(`${ipam.dataDir ?? "/var/lib/cni/kube-ipam"}/x`);
    for (const f of files) {
      const { volume: v, mount } = mountHolding(pod, installCni, f);
      expect(`${f}: ${v.hostPath?.path}`).toBe(`${f}: ${mount.mountPath}`);
    }
    expect(mountHolding(pod, installCni, ipam.logFile ?? "/var/log/kube-ipam.log").mount.readOnly ?? false).toBe(false);
  });

  test("--conf is the ConfigMap's network config", () => {
    const conf = flagValues(installCni.args.slice(1)).get("--conf")!;
    expect(() => configFile(pod, installCni, conf)).not.toThrow();
  });

  test("KUBE_IPAM_NODE_NAME comes from spec.nodeName", () => {
    expect(env(installCni, "KUBE_IPAM_NODE_NAME").valueFrom.fieldRef.fieldPath).toBe("spec.nodeName");
  });

  test("it runs on every node: tolerates every taint, on the host network", () => {
    expect(pod.tolerations).toContainEqual({ operator: "Exists" });
    expect(pod.nodeSelector).toBeUndefined();
    expect(pod.affinity).toBeUndefined();
    expect(pod.hostNetwork).toBe(true);
  });

  test("the init container copies the etcd Secret to the host at the paths the network config names", () => {
    expect(secretFiles(pod, hostFiles, "kube-ipam-etcd-tls")).toEqual(
      etcdFiles.map((f: string) => f.replace(/^.*\//, `${env(hostFiles, "ETCD_TLS_DIR").value}/`)).sort());
    const hostDir = env(hostFiles, "HOST_DIR").value;
    const hostPath = env(hostFiles, "HOST_PATH").value;
    expect(volumeAt(pod, hostFiles, hostDir).volume.hostPath.path).toBe(hostPath);
    for (const f of etcdFiles) expect(f.startsWith(`${hostPath}/etcd/`)).toBe(true);
    expect(networkConfig.ipam.kubeConfig).toBe(`${hostPath}/kube-ipam.kubeconfig`);
  });

  test("the plugin's token Secret is kube-ipam-plugin's and is mounted where the init container reads it", () => {
    const secret = find("rbac.yaml", "Secret", "kube-ipam-plugin-token");
    const sa = find("rbac.yaml", "ServiceAccount", "kube-ipam-plugin");
    expect(secret.type).toBe("kubernetes.io/service-account-token");
    expect(secret.metadata.annotations["kubernetes.io/service-account.name"]).toBe(sa.metadata.name);
    const tokenDir = env(hostFiles, "TOKEN_DIR").value;
    expect(secretFiles(pod, hostFiles, secret.metadata.name)).toEqual([`${tokenDir}/ca.crt`, `${tokenDir}/token`]);
  });

  test("the pod runs as kube-ipam-agent, whose token is mounted (the agent's own identity), not as the plugin", () => {
    expect(pod.serviceAccountName).toBe(find("rbac.yaml", "ServiceAccount", "kube-ipam-agent").metadata.name);
    expect(pod.automountServiceAccountToken).toBe(true);
  });
});

describe("install-host-files script", () => {
  const script: string = hostFiles.args[0];
  const PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";

  test("avoids what Kubernetes expands in args ($$ and $(VAR))", () => {
    expect(hostFiles.command).toEqual(["/bin/sh", "-c"]);
    expect(script).not.toContain("$$");
    expect(script).not.toContain("$(");
  });

  async function run(extraEnv: Record<string, string>): Promise<{ exitCode: number; stdout: string; stderr: string; host: string }> {
    // The Secret mounts as the kubelet lays them out: files are symlinks into ..data.
    const etcd = join(dir.path, "etcd-secret");
    const token = join(dir.path, "token-secret");
    for (const [d, files] of [[etcd, { "ca.crt": PEM, "tls.crt": PEM, "tls.key": "KEY\n" }], [token, { "ca.crt": PEM, token: "tok-123\n" }]] as const) {
      mkdirSync(join(d, "..2024_01_01"), { recursive: true });
      for (const [name, content] of Object.entries(files)) writeFileSync(join(d, "..2024_01_01", name), content);
      Bun.spawnSync(["ln", "-s", "..2024_01_01", join(d, "..data")]);
      for (const name of Object.keys(files)) Bun.spawnSync(["ln", "-s", `..data/${name}`, join(d, name)]);
    }
    const host = join(dir.path, "host-etc-kube-ipam");
    const envValues = Object.fromEntries(hostFiles.env.filter((e: Any) => "value" in e).map((e: Any) => [e.name, e.value]));
    const proc = Bun.spawn(["/bin/sh", "-c", script], {
      env: {
        PATH: "/usr/bin:/bin",
        ...envValues,
        ETCD_TLS_DIR: etcd,
        TOKEN_DIR: token,
        HOST_DIR: host,
        HOST_PATH: host, // so that the written kubeconfig resolves here
        KUBERNETES_SERVICE_HOST: "10.96.0.1",
        KUBERNETES_SERVICE_PORT: "443",
        ...extraEnv,
      },
      stdout: "pipe",
      stderr: "pipe",
    });
    const [stdout, stderr, exitCode] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
    return { exitCode, stdout, stderr, host };
  }

  test("copies the etcd files, the token and the CA (0600), and writes a kubeconfig kube-ipam loads", async () => {
    const r = await run({});
    expect({ exitCode: r.exitCode, stderr: r.stderr }).toEqual({ exitCode: 0, stderr: "" });
    expect(readdirSync(join(r.host, "etcd")).sort()).toEqual(["ca.crt", "tls.crt", "tls.key"]);
    expect(readFileSync(join(r.host, "etcd", "tls.key"), "utf8")).toBe("KEY\n");
    for (const f of ["etcd/ca.crt", "etcd/tls.crt", "etcd/tls.key", "kubernetes/token", "kubernetes/ca.crt", "kube-ipam.kubeconfig"]) {
      const st = statSync(join(r.host, f));
      expect(st.isFile() && !st.isSymbolicLink()).toBe(true);
      expect(st.mode & 0o777).toBe(0o600);
    }
    expect(readdirSync(r.host).filter((f) => f.includes(".tmp"))).toEqual([]);
    const kube = await loadKubeConfig(join(r.host, "kube-ipam.kubeconfig"));
    expect(kube).toMatchObject({ server: "https://10.96.0.1:443", token: "tok-123", ca: PEM, tokenFile: join(r.host, "kubernetes/token") });
    expect(r.stdout).toContain("API server https://10.96.0.1:443");
  });

  test("brackets an IPv6 service address; KUBE_IPAM_API_SERVER overrides it", async () => {
    let r = await run({ KUBERNETES_SERVICE_HOST: "fd00::1" });
    expect(r.exitCode).toBe(0);
    expect((await loadKubeConfig(join(r.host, "kube-ipam.kubeconfig"))).server).toBe("https://[fd00::1]:443");
    r = await run({ KUBE_IPAM_API_SERVER: "https://192.168.1.10:6443" });
    expect(r.exitCode).toBe(0);
    expect((await loadKubeConfig(join(r.host, "kube-ipam.kubeconfig"))).server).toBe("https://192.168.1.10:6443");
  });

  test("fails when a Secret file is missing", async () => {
    const r = await run({ TOKEN_DIR: join(dir.path, "nowhere") });
    expect(r.exitCode).not.toBe(0);
    expect(r.stderr).toContain("nowhere");
  });
});

describe("controller Deployment", () => {
  const pod = deployment.spec.template.spec;
  const flags = flagValues(controller.args.slice(1));
  const port = Number(flags.get("--metrics-addr")!.split(":").pop());

  test("two replicas, run as kube-ipam-controller of rbac.yaml", () => {
    expect(deployment.spec.replicas).toBe(2);
    expect(pod.serviceAccountName).toBe(find("rbac.yaml", "ServiceAccount", "kube-ipam-controller").metadata.name);
    expect(pod.automountServiceAccountToken ?? true).toBe(true);
  });

  test("probes /healthz and Prometheus annotations point at --metrics-addr's port", () => {
    const named = controller.ports.find((p: Any) => p.name === "metrics");
    expect(named.containerPort).toBe(port);
    for (const probe of [controller.livenessProbe, controller.readinessProbe]) {
      expect(probe.httpGet.path).toBe("/healthz");
      expect(probe.httpGet.scheme).toBe("HTTPS");
      expect(probe.httpGet.port === "metrics" || probe.httpGet.port === port).toBe(true);
    }
    const a = deployment.spec.template.metadata.annotations;
    expect(a).toMatchObject({ "prometheus.io/scrape": "true", "prometheus.io/scheme": "https", "prometheus.io/port": String(port), "prometheus.io/path": "/metrics" });
  });

  test("--conf is the ConfigMap's network config", () => {
    expect(() => configFile(pod, controller, flags.get("--conf")!)).not.toThrow();
  });

  test("the etcd Secret is mounted exactly at the ConfigMap's etcd file paths", () => {
    expect(secretFiles(pod, controller, "kube-ipam-etcd-tls")).toEqual(etcdFiles);
    // The files are readable by the non-root user: group read for the fsGroup.
    const v = pod.volumes.find((x: Any) => x.secret?.secretName === "kube-ipam-etcd-tls");
    expect(pod.securityContext.fsGroup).toBe(pod.securityContext.runAsUser);
    expect(v.secret.defaultMode & 0o040).toBe(0o040);
  });
});

describe("ConfigMap", () => {
  test("its network config passes the plugin's loader", () => {
    for (const [key, text] of Object.entries(configMap.data as Record<string, string>)) {
      expect(key).toMatch(/\.(conf|conflist)$/);
      const doc = decodeNetworkConfig(text, key);
      const config = loadIpamConfig(selectKubeIpamConfig(doc, key), { hostname: () => "node-1" });
      expect(config.store).toMatchObject({ kind: "etcd", certFile: networkConfig.ipam.etcdConfig.etcdCertFile });
      expect(config.nodeName).toBe("node-1"); // no nodeName in the ConfigMap: install-cni sets it per node
    }
  });

  test("dist/kube-ipam ls accepts it (etcdConfig swapped for a dataDir)", async () => {
    const conf = structuredClone(networkConfig);
    delete conf.ipam.etcdConfig;
    conf.ipam.dataDir = join(dir.path, "data");
    conf.ipam.logFile = join(dir.path, "kube-ipam.log");
    const file = join(dir.path, "net.conf");
    writeFileSync(file, JSON.stringify(conf));
    const r = await runCli(["ls", "--conf", file, "-o", "json"]);
    expect({ exitCode: r.exitCode, stderr: r.stderr, json: r.json }).toEqual({ exitCode: 0, stderr: "", json: [] });
  });
});

describe("RBAC", () => {
  /** A role's rules, each with its lists sorted and the names of any other fields. */
  const rules = (role: Any) => role.rules.map((r: Any) => ({
    ...(r.apiGroups ? { apiGroups: [...r.apiGroups].sort(), resources: [...r.resources].sort() } : { nonResourceURLs: [...r.nonResourceURLs].sort() }),
    verbs: [...r.verbs].sort(),
    extra: Object.keys(r).filter((k) => !["apiGroups", "resources", "nonResourceURLs", "verbs"].includes(k)),
  }));
  const reviews = [
    { apiGroups: ["authentication.k8s.io"], resources: ["tokenreviews"], verbs: ["create"], extra: [] },
    { apiGroups: ["authorization.k8s.io"], resources: ["subjectaccessreviews"], verbs: ["create"], extra: [] },
  ];

  // The real API server's view of the same, whole: test/k8s/rbac.test.ts.
  test.each([
    ["kube-ipam-plugin", [{ apiGroups: [""], resources: ["pods"], verbs: ["get"], extra: [] }]],
    ["kube-ipam-agent", [{ apiGroups: [""], resources: ["pods"], verbs: ["get", "list", "watch"], extra: [] }, ...reviews]],
    ["kube-ipam-controller", [
      { apiGroups: [""], resources: ["pods"], verbs: ["list"], extra: [] },
      { apiGroups: ["apps"], resources: ["statefulsets"], verbs: ["list"], extra: [] },
      ...reviews,
    ]],
  ] as const)("%s: a ServiceAccount in kube-system, its ClusterRole of exactly these rules, bound to it alone", (name, want) => {
    const sa = find("rbac.yaml", "ServiceAccount", name);
    expect(sa.metadata.namespace).toBe(NAMESPACE);
    const role = find("rbac.yaml", "ClusterRole", name);
    expect(rules(role)).toEqual(want);
    expect(role.aggregationRule).toBeUndefined();
    const binding = find("rbac.yaml", "ClusterRoleBinding", name);
    expect(binding.roleRef).toEqual({ apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name });
    expect(binding.subjects).toEqual([{ kind: "ServiceAccount", name, namespace: NAMESPACE }]);
  });

  test("the ClusterRoles for people and Prometheus: get of one non-resource URL each, bound to nobody", () => {
    expect(rules(find("rbac.yaml", "ClusterRole", "kube-ipam-metrics-reader"))).toEqual([{ nonResourceURLs: ["/metrics"], verbs: ["get"], extra: [] }]);
    expect(rules(find("rbac.yaml", "ClusterRole", "kube-ipam-dashboard-viewer")))
      .toEqual([{ nonResourceURLs: ["/kube-ipam/dashboard"], verbs: ["get"], extra: [] }]);
    const datastore = loadDocs("kubernetes-datastore.yaml");
    const refs = [...docs["rbac.yaml"]!, ...datastore].filter((d) => d.kind.endsWith("Binding")).map((d) => d.roleRef.name);
    expect(refs).not.toContain("kube-ipam-metrics-reader");
    expect(refs).not.toContain("kube-ipam-dashboard-viewer");
  });

  test("rbac.yaml holds the three accounts, their roles and bindings, the plugin's token Secret and the two unbound roles", () => {
    expect(docs["rbac.yaml"]!.map((d) => `${d.kind} ${d.metadata.name}`).sort()).toEqual([
      "ClusterRole kube-ipam-agent", "ClusterRole kube-ipam-controller", "ClusterRole kube-ipam-dashboard-viewer",
      "ClusterRole kube-ipam-metrics-reader", "ClusterRole kube-ipam-plugin",
      "ClusterRoleBinding kube-ipam-agent", "ClusterRoleBinding kube-ipam-controller", "ClusterRoleBinding kube-ipam-plugin",
      "Secret kube-ipam-plugin-token",
      "ServiceAccount kube-ipam-agent", "ServiceAccount kube-ipam-controller", "ServiceAccount kube-ipam-plugin",
    ]);
  });

  test("kubernetes-datastore.yaml binds its roles to rbac.yaml's plugin and controller accounts, and none to the agent", () => {
    const bindings = loadDocs("kubernetes-datastore.yaml").filter((d) => d.kind.endsWith("Binding"));
    expect(bindings.map((b) => `${b.kind} ${b.metadata.name} -> ${b.roleRef.kind} ${b.roleRef.name}: ` +
      b.subjects.map((x: Any) => `${x.kind} ${x.namespace}/${x.name}`).join(", ")).sort()).toEqual([
      "ClusterRoleBinding kube-ipam-controller-datastore -> ClusterRole kube-ipam-controller-datastore: ServiceAccount kube-system/kube-ipam-controller",
      "ClusterRoleBinding kube-ipam-plugin-datastore -> ClusterRole kube-ipam-plugin-datastore: ServiceAccount kube-system/kube-ipam-plugin",
      "RoleBinding kube-ipam-leader -> Role kube-ipam-leader: ServiceAccount kube-system/kube-ipam-controller",
    ]);
    for (const b of bindings) for (const x of b.subjects) expect(() => find("rbac.yaml", "ServiceAccount", x.name)).not.toThrow();
  });
});

describe("Dockerfile", () => {
  const text = readFileSync(join(DEPLOY, "Dockerfile"), "utf8");
  const instructions = text.split("\n").filter((l) => l.trim() !== "" && !l.startsWith("#") && !/^\s/.test(l));

  test("a slim Debian base (a build argument: the tests build on a local one) with both executables side by side where the manifests run them", () => {
    expect(instructions.slice(0, 2)).toEqual([expect.stringMatching(/^ARG BASE=debian:[a-z]+-slim$/), "FROM ${BASE}"]);
    const copy = instructions.filter((l) => l.startsWith("COPY"));
    expect(copy).toHaveLength(1);
    // The forwarder finds the core next to itself (src/forwarder/layout.ts).
    expect(copy[0]!.split(/\s+/).slice(-3)).toEqual(["dist/kube-ipam", "dist/kube-ipam-core", `${dirname(BINARY_IN_IMAGE)}/`]);
    expect(instructions).toContain(`ENTRYPOINT ["${BINARY_IN_IMAGE}"]`);
    expect(text).toContain(`docker build -f deploy/Dockerfile -t ${IMAGE} .`);
    expect(text).toContain(`org.opencontainers.image.version="${VERSION}"`);
  });

  test("the build context is only the two executables", () => {
    const ignore = readFileSync(join(DEPLOY, "Dockerfile.dockerignore"), "utf8").split("\n").filter((l) => l && !l.startsWith("#"));
    expect(ignore).toEqual(["*", "!dist/kube-ipam", "!dist/kube-ipam-core"]);
  });
});
