// The shipping form, run for real: the image built from deploy/Dockerfile with podman, the DaemonSet's init
// container and install-cni container run as deploy/kube-ipam-daemonset.yaml says (test/support/pod_spec.ts
// translates it; test/support/daemonset_node.ts sets the node up), against an etcd with mutual TLS and a
// real kube-apiserver. Then podman, as the node's container runtime, starts containers on the config
// and binary the DaemonSet installed, with the agent running and with it stopped.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { TCPSocketListener } from "bun";
import { INSTALLED_BIN, INSTALLED_CONF, startDaemonSetNode, type DaemonSetNode } from "../support/daemonset_node.ts";
import { BASE_IMAGE } from "../support/image.ts";
import { PLUGIN_USER } from "../support/kube_apiserver.ts";
import { SERVICE_ACCOUNT_DIR } from "../support/pod_spec.ts";
import { BINARY, CORE_BINARY } from "../support/plugin.ts";

type Any = any;

let node: DaemonSetNode;
let NET: string; // "10.89.x": the network config's /24

// Podman as the node's container runtime: a bridge network (Debian's bridge in /usr/lib/cni) whose ipam is
// the installed kube-ipam config, the plugin found in the node's /opt/cni/bin (podman's cni_plugin_dirs).
// Podman passes CNI_ARGS "IgnoreUnknown=1;K8S_POD_NAME=<container name>" (no namespace: no pod lookups),
// and `--ip` as IP=. The network's name is its kube-ipam pool.
const BRIDGE = `kipam${process.pid % 100000}`;
let network: string;
let conflist: string;
let gateway: TCPSocketListener<undefined> | undefined;

beforeAll(async () => {
  node = await startDaemonSetNode("image-test-node", () => {
    gateway?.stop(true);
    Bun.spawnSync(["ip", "link", "del", BRIDGE], { stdout: "ignore", stderr: "ignore" });
  });
  NET = node.cluster.networkConf.ipam.subnet.replace(/\.0\/24$/, "");
  network = node.run;
  conflist = join(node.netDir, `${network}.conflist`);
  const installed = JSON.parse(readFileSync(node.host(INSTALLED_CONF), "utf8"));
  writeFileSync(conflist, JSON.stringify({
    cniVersion: installed.cniVersion,
    name: network,
    plugins: [{ type: "bridge", bridge: BRIDGE, isGateway: true, ipam: installed.ipam }],
  }, null, 2));
}, 600_000);

afterAll(async () => {
  if (conflist) rmSync(conflist, { force: true });
  await node?.stop();
});

const mode = (path: string) => statSync(path).mode & 0o777;
const sha256 = (path: string) => new Bun.CryptoHasher("sha256").update(readFileSync(path)).digest("hex");

/** The installed plugin, run on the node as a runtime runs it, with the installed config. */
function nodePlugin(command: string, containerID: string) {
  return node.exec([node.host(INSTALLED_BIN)], {
    env: { CNI_COMMAND: command, CNI_CONTAINERID: containerID, CNI_NETNS: "/var/run/netns/none", CNI_IFNAME: "eth0", CNI_PATH: "/usr/lib/cni" },
    stdin: readFileSync(node.host(INSTALLED_CONF), "utf8"),
  });
}

describe("the DaemonSet's containers, from the image", () => {
  test("the image holds exactly the binary under test", async () => {
    const out = await node.podman.ok(["run", "--rm", "--label", node.label, "--network", "none",
      "--entrypoint", '["sha256sum","/usr/local/bin/kube-ipam"]', node.image.name]);
    expect(out.split(" ")[0]).toBe(sha256(BINARY));
  });

  test("the init container installs the etcd TLS files and a kubeconfig for the API, each 0600", async () => {
    const etc = node.host("/etc/kube-ipam");
    const files = ["etcd/ca.crt", "etcd/tls.crt", "etcd/tls.key", "kubernetes/token", "kubernetes/ca.crt", "kube-ipam.kubeconfig"];
    expect(Object.fromEntries(files.map((f) => [f, mode(join(etc, f))]))).toEqual(Object.fromEntries(files.map((f) => [f, 0o600])));
    expect(readFileSync(join(etc, "etcd/tls.key"), "utf8")).toBe(node.cluster.secrets["kube-ipam-etcd-tls"]!["tls.key"]!);
    expect(readFileSync(join(etc, "kubernetes/token"), "utf8")).toBe(node.cluster.api.token);
    // KUBE_IPAM_API_SERVER is empty in the manifest: the server comes from KUBERNETES_SERVICE_HOST/PORT.
    const kubeconfig = Bun.YAML.parse(readFileSync(join(etc, "kube-ipam.kubeconfig"), "utf8")) as Any;
    expect(kubeconfig.clusters[0].cluster).toEqual({ server: node.cluster.api.url, "certificate-authority": "/etc/kube-ipam/kubernetes/ca.crt" });
    expect(kubeconfig.users[0].user).toEqual({ tokenFile: "/etc/kube-ipam/kubernetes/token" });
    expect(await node.pod.logs("install-host-files")).toContain(`Installed /etc/kube-ipam/kube-ipam.kubeconfig (API server ${node.cluster.api.url})`);
  });

  test("the kubeconfig it wrote reaches the API server from the node, as the plugin (which may not list pods)", async () => {
    // gc on the node finds the installed kubeconfig: the API answers, and refuses the plugin's identity the
    // list of every pod (rbac.yaml), which gc's message says how to get round.
    const before = node.cluster.api.requests.length;
    const gc = await node.exec([node.host(INSTALLED_BIN), "gc", "--conf", node.host(INSTALLED_CONF), "--dry-run"]);
    expect(gc.exitCode).toBe(1);
    expect(gc.stderr).toContain(`User "${PLUGIN_USER}" cannot list resource`);
    expect(gc.stderr).toContain("pass --kubeconfig FILE with an identity that may list them");
    expect(node.cluster.api.requests.slice(before).some((r) => r.startsWith("GET /api/v1/pods") || r.startsWith("GET /apis/apps/v1/statefulsets")))
      .toBe(true);
  });

  test("the agent's container has its pod's own service account token (kube-ipam-agent), not the plugin's", async () => {
    const token = await node.podman.ok(["exec", node.pod.containerName("install-cni"), "cat", `${SERVICE_ACCOUNT_DIR}/token`]);
    expect(token).toBe(node.cluster.api.tokens.agent);
    expect(token).not.toBe(node.cluster.api.token);
  });

  test("install-cni installs both executables (0755, the same bytes) and the config with this node's name", async () => {
    for (const [installed, built] of [[INSTALLED_BIN, BINARY], [`${INSTALLED_BIN}-core`, CORE_BINARY]] as const) {
      expect(mode(node.host(installed))).toBe(0o755);
      expect(sha256(node.host(installed))).toBe(sha256(built));
    }
    const conf = node.cluster.networkConf;
    expect(JSON.parse(readFileSync(node.host(INSTALLED_CONF), "utf8"))).toEqual({ ...conf, ipam: { ...conf.ipam, nodeName: node.name } });
    expect(mode(node.host(INSTALLED_CONF))).toBe(0o644);
    expect(readdirSync(node.host("/etc/cni/net.d"))).toEqual(["10-kube-ipam.conf"]);
    expect(await node.pod.logs("install-cni")).toContain(
      `Installed /host/etc/cni/net.d/10-kube-ipam.conf (network "${conf.name}", ipam.nodeName "${node.name}")`);
  });

  test("the agent's socket is root-only, and a plugin ADD on the node is served by the agent", async () => {
    expect(mode(node.host("/run/kube-ipam"))).toBe(0o700);
    expect(statSync(node.host("/run/kube-ipam/agent.sock")).isSocket()).toBe(true);
    expect(mode(node.host("/run/kube-ipam/agent.sock"))).toBe(0o600);
    const before = await node.agentServed("ADD");
    const add = await nodePlugin("ADD", "direct-1");
    expect({ exitCode: add.exitCode, stderr: add.stderr }).toEqual({ exitCode: 0, stderr: "" });
    expect(JSON.parse(add.stdout).ips[0].address.startsWith(`${NET}.`)).toBe(true);
    expect(await node.agentServed("ADD")).toBe(before + 1);
    expect(node.logLines().filter((l) => l.containerID === "direct-1").map((l) => [l.command, l.servedBy])).toEqual([["ADD", "agent"]]);
    expect((await nodePlugin("DEL", "direct-1")).exitCode).toBe(0);
  });
});

let workloads = 0;

/** `podman run -d` of a workload container on the network (the base image, sleeping); its name. */
async function startWorkload(extra: string[] = []): Promise<string> {
  const name = `${node.run}-w${workloads++}`;
  await node.podman.ok(["run", "--detach", "--name", name, "--label", node.label, "--network", network, ...extra,
    "--pull", "never", BASE_IMAGE, "sleep", "infinity"]);
  return name;
}

/** What podman says the container got: its ID and address on the network. */
async function inspect(name: string): Promise<{ id: string; ip: string }> {
  const out = await node.podman.ok(["inspect", "--format", `{{.Id}} {{(index .NetworkSettings.Networks "${network}").IPAddress}}`, name]);
  const [id, ip] = out.trim().split(" ");
  return { id: id!, ip: ip! };
}

/** `kube-ipam ls -o json` on the node, with the network's config (the conflist podman reads). */
async function ls(): Promise<Any[]> {
  const r = await node.exec([node.host(INSTALLED_BIN), "ls", "--conf", conflist, "-o", "json"]);
  if (r.exitCode !== 0) throw new Error(`kube-ipam ls failed: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

const holder = (ip: string, containerID: string, podName: string) => ({ ip, containerID, podName, node: node.name, ifName: "eth0" });
const summary = (a: Any) => holder(a.ip, a.containerID, a.podName);
const byIp = (a: { ip: string }, b: { ip: string }) => a.ip.localeCompare(b.ip);

/**
 * From inside the container, a TCP connection to the bridge's gateway address, where this test listens:
 * the address the host sees it come from (bash's /dev/tcp; the base image has bash).
 */
async function sourceAddressSeenByHost(name: string): Promise<string> {
  gateway ??= Bun.listen<undefined>({
    hostname: `${NET}.1`, port: 0,
    socket: { open(s) { s.end(`${s.remoteAddress}\n`); }, data() {} },
  });
  const out = await node.podman.ok(["exec", name, "bash", "-c", `exec 3<>/dev/tcp/${NET}.1/${gateway.port} && cat <&3`]);
  return out.trim();
}

for (const agent of ["running", "stopped"] as const) {
  describe(`podman starts containers on the installed plugin, the agent ${agent}`, () => {
    const served = async (verb: string) => (agent === "running" ? node.agentServed(verb) : 0);
    let names: string[] = [];

    if (agent === "stopped") {
      test("podman stop ends the agent container cleanly (SIGTERM); its socket goes, the installed files stay", async () => {
        const name = node.pod.containerName("install-cni");
        await node.podman.ok(["stop", name]);
        expect((await node.podman.ok(["inspect", "--format", "{{.State.ExitCode}}", name])).trim()).toBe("0");
        expect(existsSync(node.host("/run/kube-ipam/agent.sock"))).toBe(false);
        expect([readdirSync(node.host("/opt/cni/bin")), readdirSync(node.host("/etc/cni/net.d"))]).toEqual([["kube-ipam", "kube-ipam-core"], ["10-kube-ipam.conf"]]);
      }, 60_000);
    }

    test("20 containers started at once get distinct addresses, each recorded for its container", async () => {
      const before = await served("ADD");
      names = await Promise.all(Array.from({ length: 20 }, () => startWorkload()));
      const got = await Promise.all(names.map(inspect));
      expect(new Set(got.map((g) => g.ip)).size).toBe(20);
      expect((await ls()).map(summary).sort(byIp)).toEqual(got.map((g, i) => holder(g.ip, g.id, names[i]!)).sort(byIp));
      // The address is the container's: its traffic comes from it.
      expect(await Promise.all(names.slice(0, 3).map(sourceAddressSeenByHost))).toEqual(got.slice(0, 3).map((g) => g.ip));
      if (agent === "running") expect(await served("ADD")).toBe(before + 20);
      const ids = new Set(got.map((g) => g.id));
      const adds = node.logLines().filter((l) => ids.has(l.containerID) && l.command === "ADD");
      expect(adds.length).toBe(20);
      expect(new Set(adds.map((l) => l.servedBy))).toEqual(new Set([agent === "running" ? "agent" : "plugin"]));
      if (agent === "stopped") expect(adds.every((l) => typeof l.agentFallback === "string")).toBe(true);
    }, 120_000);

    test("a container asks for an address with --ip: it gets it, and another asking for it is refused", async () => {
      // The top of the range, away from where round-robin hands out (in the second round: released by the first).
      const held = new Set((await ls()).map((a) => a.ip));
      const pinned = [200, 199, 198].map((x) => `${NET}.${x}`).find((ip) => !held.has(ip))!;
      const name = await startWorkload(["--ip", pinned]);
      names.push(name);
      const { id, ip } = await inspect(name);
      expect(ip).toBe(pinned);
      expect((await ls()).filter((a) => a.ip === pinned).map(summary)).toEqual([holder(pinned, id, name)]);
      const other = `${node.run}-w${workloads++}`;
      const refused = await node.podman.run(["run", "--detach", "--name", other, "--label", node.label, "--network", network,
        "--ip", pinned, "--pull", "never", BASE_IMAGE, "sleep", "infinity"]);
      expect(refused.exitCode).not.toBe(0);
      expect(refused.stderr).toContain(`Address "${pinned}" in network "${network}" is held by `);
      expect(refused.stderr).toContain(`container "${id}"`);
      await node.podman.run(["rm", "-f", "-t", "0", other]);
      expect((await ls()).filter((a) => a.ip === pinned).map((a) => a.containerID)).toEqual([id]);
    }, 60_000);

    // podman restart tears the network down (DEL) and sets it up again (ADD) for the same container ID.
    // The allocation is released and a new one made, round-robin: a freed address is the last to be
    // reused, so a dynamic container comes back with another address; a pinned one asks for its own again.
    test("a restarted container gets a new address, a pinned one its own, and both keep working", async () => {
      const restarted = [names[0]!, names.at(-1)!]; // dynamic, pinned
      const before = await Promise.all(restarted.map(inspect));
      await node.podman.ok(["restart", "-t", "0", ...restarted]);
      const after = await Promise.all(restarted.map(inspect));
      expect(after.map((a) => a.id)).toEqual(before.map((b) => b.id));
      expect(after[0]!.ip).not.toBe(before[0]!.ip);
      expect(after[1]!.ip).toBe(before[1]!.ip);
      const held = await ls();
      for (const [i, name] of restarted.entries()) {
        expect(held.filter((a) => a.containerID === after[i]!.id).map(summary)).toEqual([holder(after[i]!.ip, after[i]!.id, name)]);
        expect(node.logLines().filter((l) => l.containerID === after[i]!.id).map((l) => l.command)).toEqual(["ADD", "DEL", "ADD"]);
      }
      expect(held.some((a) => a.ip === before[0]!.ip)).toBe(false);
      expect(await Promise.all(restarted.map(sourceAddressSeenByHost))).toEqual(after.map((a) => a.ip));
      expect(new Set(held.map((a) => a.ip)).size).toBe(names.length);
    }, 60_000);

    test("removing the containers releases every address", async () => {
      const before = await served("DEL");
      await node.podman.ok(["rm", "-f", "-t", "0", ...names]);
      expect(await ls()).toEqual([]);
      if (agent === "running") expect(await served("DEL")).toBeGreaterThanOrEqual(before + names.length);
    }, 60_000);
  });
}
