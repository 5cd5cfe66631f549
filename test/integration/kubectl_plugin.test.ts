// The binary as a kubectl plugin: linked as kubectl-ipam on PATH, run by a real kubectl (`kubectl ipam ...`;
// KUBECTL names another kubectl, e.g. Debian's kubernetes-client), against a file-store network with
// allocations made through the CNI plugin. Plus the plugin's defaults (kubectl_plugin.ts) on their own.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { defaultConf, installedConfigs, kubectlKubeconfig, programName, withPluginDefaults } from "../../src/cli/kubectl_plugin.ts";
import { type KubeApiServer, makePod, startKubeApiServer } from "../support/kube_apiserver.ts";
import { BINARY, fileNetConf, runCli, runPlugin, tempDir } from "../support/plugin.ts";

const VERSION: string = JSON.parse(readFileSync(resolve(import.meta.dir, "../../package.json"), "utf8")).version;
const KUBECTL = process.env.KUBECTL ?? Bun.which("kubectl");

let dir: ReturnType<typeof tempDir>;
let bin: string; // holds kubectl-ipam -> the binary
let home: string; // an empty home: no ~/.kube/config unless a test writes one
let api: KubeApiServer;
let conf: ReturnType<typeof fileNetConf>;
let confFile: string;
let ips: string[];
/**
 * kubectl's own kubeconfig, an operator's: gc lists every pod, which the plugin's identity (the ADDs') may not.
 * The controller's ServiceAccount stands in for an operator allowed to.
 */
let operatorKubeconfig: string;

interface Run {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/** `kubectl ARGS...` with kubectl-ipam first on PATH and nothing of this machine's kubectl setup. */
async function kubectl(args: string[], env: Record<string, string> = {}): Promise<Run> {
  const proc = Bun.spawn([KUBECTL!, ...args], {
    env: { PATH: `${bin}:/usr/local/bin:/usr/bin:/bin`, HOME: home, ...env },
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  const [stdout, stderr, exitCode] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  return { exitCode, stdout, stderr };
}

beforeAll(async () => {
  if (!KUBECTL) throw new Error("kubectl is not installed: install Debian's kubernetes-client (scripts/test.sh does)");
  dir = tempDir("kube-ipam-kubectl-");
  bin = join(dir.path, "bin");
  home = join(dir.path, "home");
  mkdirSync(bin);
  mkdirSync(home);
  symlinkSync(BINARY, join(bin, "kubectl-ipam"));
  api = await startKubeApiServer();
  const kubeconfig = api.writeKubeconfig(join(dir.path, "kube"), "token");
  operatorKubeconfig = api.writeKubeconfig(join(dir.path, "kube-operator"), "token", { identity: "controller" });
  // The pods' ADDs read them from the API; `kubectl ipam` commands get a config without kubeConfig.
  conf = fileNetConf(dir.path, { kubeConfig: kubeconfig }, { name: "kubectlnet" });
  ips = [];
  for (const pod of ["web-0", "web-1", "gone"]) {
    await api.setPod(makePod({ name: pod }));
    const r = await runPlugin(conf, { command: "ADD", containerID: `c-${pod}`, args: `K8S_POD_NAMESPACE=default;K8S_POD_NAME=${pod}` });
    expect(r.exitCode).toBe(0);
    ips.push(r.json.ips[0].address.split("/")[0]);
  }
  await api.deletePod("default", "gone"); // leaked: no DEL
  const ipam: Record<string, unknown> = { ...conf.ipam };
  delete ipam.kubeConfig;
  confFile = join(dir.path, "10-kubectlnet.conf");
  writeFileSync(confFile, JSON.stringify({ ...conf, ipam }));
}, 90_000);
afterAll(async () => {
  await api?.stop();
  dir?.cleanup();
});

describe("kubectl finds and runs kubectl-ipam", () => {
  test("kubectl plugin list lists it", async () => {
    const r = await kubectl(["plugin", "list"]);
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toContain(join(bin, "kubectl-ipam"));
  });

  test("kubectl ipam help speaks of kubectl ipam and the --conf default", async () => {
    const r = await kubectl(["ipam", "help"]);
    expect({ exitCode: r.exitCode, stderr: r.stderr }).toEqual({ exitCode: 0, stderr: "" });
    expect(r.stdout).toStartWith(`kubectl ipam: kube-ipam ${VERSION} as a kubectl plugin`);
    for (const line of ["  kubectl ipam ls [--conf FILE] [-o table|json]", "  kubectl ipam gc [--conf FILE]", "KUBE_IPAM_CONF", "/etc/cni/net.d", "KUBECONFIG"]) {
      expect(r.stdout).toContain(line);
    }
    expect(r.stdout).not.toContain("  kube-ipam ");
    expect(r.stdout).not.toContain("install-cni --bin-dir"); // the node's commands are kube-ipam's
  });

  test("kubectl ipam ls --conf FILE -o json lists what the plugin allocated, as kube-ipam ls does", async () => {
    const r = await kubectl(["ipam", "ls", "--conf", confFile, "-o", "json"]);
    expect({ exitCode: r.exitCode, stderr: r.stderr }).toEqual({ exitCode: 0, stderr: "" });
    const listed = JSON.parse(r.stdout);
    expect(listed.map((a: any) => `${a.ip} ${a.containerID} ${a.podName}`).sort())
      .toEqual([`${ips[0]} c-web-0 web-0`, `${ips[1]} c-web-1 web-1`, `${ips[2]} c-gone gone`].sort());
    expect(r.stdout).toBe((await runCli(["ls", "--conf", confFile, "-o", "json"])).stdout);
  });

  test("kubectl ipam usage --conf FILE", async () => {
    const r = await kubectl(["ipam", "usage", "--conf", confFile]);
    expect({ exitCode: r.exitCode, stderr: r.stderr }).toEqual({ exitCode: 0, stderr: "" });
    expect(r.stdout).toBe((await runCli(["usage", "--conf", confFile])).stdout);
    expect(r.stdout).toContain("kubectlnet");
    expect(r.stdout).toMatch(/\b3\b/); // used
  });

  test("without --conf, KUBE_IPAM_CONF names the network", async () => {
    const r = await kubectl(["ipam", "ls", "-o", "json"], { KUBE_IPAM_CONF: confFile });
    expect(r.exitCode).toBe(0);
    expect(JSON.parse(r.stdout)).toHaveLength(3);
  });

  test("errors and usage speak of kubectl ipam", async () => {
    const r = await kubectl(["ipam", "frobnicate"]);
    expect(r).toEqual({ exitCode: 2, stdout: "", stderr: 'kubectl ipam: Unknown command "frobnicate"\nRun "kubectl ipam help" for usage.\n' });
  });
});

describe("kubectl ipam gc reads the cluster kubectl reads", () => {
  const gc = ["ipam", "gc", "--dry-run", "--grace", "0s", "-o", "json"];
  const wouldRelease = (r: Run) => JSON.parse(r.stdout).done.map((l: any) => `${l.action} ${l.ip} ${l.podName}`);

  test("KUBECONFIG (its first file that exists)", async () => {
    const r = await kubectl(gc, { KUBE_IPAM_CONF: confFile, KUBECONFIG: `${join(dir.path, "missing")}:${operatorKubeconfig}` });
    expect({ exitCode: r.exitCode, stderr: r.stderr }).toEqual({ exitCode: 0, stderr: "" });
    expect(wouldRelease(r)).toEqual([`release ${ips[2]} gone`]);
  });

  test("~/.kube/config without KUBECONFIG; --kubeconfig over both", async () => {
    const withHome = join(dir.path, "home-with-config");
    api.writeKubeconfig(join(withHome, ".kube"), "token", { file: "config", identity: "controller" });
    let r = await kubectl(gc, { KUBE_IPAM_CONF: confFile, HOME: withHome });
    expect(r.exitCode).toBe(0);
    expect(wouldRelease(r)).toEqual([`release ${ips[2]} gone`]);
    // An explicit --kubeconfig wins: here a file that does not exist, named in the error.
    r = await kubectl([...gc, "--kubeconfig", join(dir.path, "nowhere")], { KUBE_IPAM_CONF: confFile, HOME: withHome });
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain(join(dir.path, "nowhere"));
  });

  test("neither: what kube-ipam gc does (here: no API configured)", async () => {
    const r = await kubectl(gc, { KUBE_IPAM_CONF: confFile });
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toStartWith("kubectl ipam: ");
    expect(r.stderr).toContain("No Kubernetes API configured");
  });
});

describe("the plugin's defaults", () => {
  const write = (path: string, doc: unknown) => writeFileSync(path, typeof doc === "string" ? doc : JSON.stringify(doc));
  const kubeIpam = { cniVersion: "1.0.0", name: "n", type: "macvlan", ipam: { type: "kube-ipam", subnet: "10.1.0.0/24" } };

  test("programName: kubectl-ipam by any path is the plugin", () => {
    expect([programName("/usr/local/bin/kubectl-ipam"), programName("kubectl-ipam"), programName("./kube-ipam"), programName("bun")])
      .toEqual(["kubectl ipam", "kubectl ipam", "kube-ipam", "kube-ipam"]);
  });

  test("the installed config: kube-ipam's only, in libcni's order, others and broken files skipped", () => {
    const d = join(dir.path, "net.d-1");
    mkdirSync(d);
    write(join(d, "05-bridge.conf"), { cniVersion: "1.0.0", name: "b", type: "bridge", ipam: { type: "host-local" } });
    write(join(d, "07-broken.conf"), "{not json");
    write(join(d, "10-kube-ipam.conflist"), { cniVersion: "1.0.0", name: "n", plugins: [{ type: "macvlan", ipam: { type: "kube-ipam" } }, { type: "tuning" }] });
    write(join(d, "20-kube-ipam.txt"), kubeIpam); // not a config name libcni reads
    expect(installedConfigs(d)).toEqual([join(d, "10-kube-ipam.conflist")]);
    expect(defaultConf({ env: {}, home: undefined, confDir: d })).toBe(join(d, "10-kube-ipam.conflist"));
    expect(defaultConf({ env: { KUBE_IPAM_CONF: "/x.conf" }, home: undefined, confDir: d })).toBe("/x.conf");
  });

  test("no kube-ipam config, or several: a usage error that says what to do", () => {
    const d = join(dir.path, "net.d-2");
    mkdirSync(d);
    expect(() => defaultConf({ env: {}, home: undefined, confDir: d }))
      .toThrow(`No --conf FILE, no KUBE_IPAM_CONF, and no kube-ipam network config in ${d}: pass --conf FILE`);
    write(join(d, "10-a.conf"), kubeIpam);
    write(join(d, "99-b.json"), kubeIpam);
    expect(() => defaultConf({ env: {}, home: undefined, confDir: d }))
      .toThrow(`No --conf FILE and several kube-ipam network configs in ${d} (10-a.conf, 99-b.json): pass --conf FILE or set KUBE_IPAM_CONF`);
  });

  test("withPluginDefaults adds --conf where it is missing, and gc's --kubeconfig", () => {
    const d = join(dir.path, "net.d-3");
    mkdirSync(d);
    write(join(d, "10-kube-ipam.conf"), kubeIpam);
    const conf = join(d, "10-kube-ipam.conf");
    const env = (vars: Record<string, string> = {}) => ({ env: vars, home, confDir: d });
    const kc = join(dir.path, "kube", "kubeconfig");
    const table: [string[], Record<string, string>, string[]][] = [
      [["ls"], {}, ["ls", "--conf", conf]],
      [["ls", "-o", "json"], {}, ["ls", "-o", "json", "--conf", conf]],
      [["ls", "--conf", "/a.conf"], {}, ["ls", "--conf", "/a.conf"]],
      [["ls", "--conf=/a.conf"], {}, ["ls", "--conf=/a.conf"]],
      [["ls", "-conf", "/a.conf"], {}, ["ls", "-conf", "/a.conf"]],
      [["reserve", "r1", "--", "--conf"], {}, ["reserve", "r1", "--conf", conf, "--", "--conf"]],
      [["migrate", "--from", "v0.2"], {}, ["migrate", "--from", "v0.2", "--conf", conf]],
      [["gc", "--dry-run"], { KUBECONFIG: kc }, ["gc", "--dry-run", "--conf", conf, "--kubeconfig", kc]],
      [["gc", "--kubeconfig", "/k"], { KUBECONFIG: kc }, ["gc", "--kubeconfig", "/k", "--conf", conf]],
      [["gc"], {}, ["gc", "--conf", conf]], // no KUBECONFIG, no ~/.kube/config: gc's own resolution
      [["ls"], { KUBECONFIG: kc }, ["ls", "--conf", conf]], // only gc reads the API
      [["install-cni", "--bin-dir", "/b"], {}, ["install-cni", "--bin-dir", "/b"]], // its --conf is a source
      [["help"], {}, ["help"]],
      [[], {}, []],
    ];
    for (const [argv, vars, expected] of table) expect(withPluginDefaults(argv, env(vars))).toEqual(expected);
  });

  test("kubectlKubeconfig: KUBECONFIG's first existing file, else its first, else ~/.kube/config", () => {
    const kc = join(dir.path, "kube", "kubeconfig");
    expect(kubectlKubeconfig({ env: { KUBECONFIG: `/none-1:${kc}` }, home })).toBe(kc);
    expect(kubectlKubeconfig({ env: { KUBECONFIG: "/none-1:/none-2" }, home })).toBe("/none-1");
    expect(kubectlKubeconfig({ env: {}, home })).toBeUndefined();
    const withHome = join(dir.path, "home-2");
    api.writeKubeconfig(join(withHome, ".kube"), "token", { file: "config" });
    expect(kubectlKubeconfig({ env: {}, home: withHome })).toBe(join(withHome, ".kube", "config"));
  });
});
