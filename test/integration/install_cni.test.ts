// `kube-ipam install-cni`: the real binary installs itself and a network config into temporary "host"
// directories, as the DaemonSet does on every node.
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { chmodSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { BINARY, CORE_BINARY, fileNetConf, runCli, runPlugin, tempDir } from "../support/plugin.ts";

const VERSION: string = JSON.parse(readFileSync(resolve(import.meta.dir, "../../package.json"), "utf8")).version;
const USAGE_HINT = 'Run "kube-ipam help" for usage.\n';

let dir: ReturnType<typeof tempDir>;
let binDir: string;
let confDir: string;
beforeEach(() => {
  dir = tempDir("kube-ipam-install-");
  binDir = join(dir.path, "opt/cni/bin");
  confDir = join(dir.path, "etc/cni/net.d");
  mkdirSync(binDir, { recursive: true });
  mkdirSync(confDir, { recursive: true });
});
afterEach(() => dir.cleanup());

function writeSource(name: string, conf: unknown): string {
  mkdirSync(join(dir.path, "configmap"), { recursive: true });
  const file = join(dir.path, "configmap", name);
  writeFileSync(file, typeof conf === "string" ? conf : JSON.stringify(conf, null, 2));
  return file;
}

function install(args: string[], nodeName?: string) {
  return runCli(["install-cni", "--bin-dir", binDir, "--conf-dir", confDir, ...args],
    { env: nodeName === undefined ? {} : { KUBE_IPAM_NODE_NAME: nodeName } });
}

/** Everything in the two target directories, hidden temporary files included. */
function written(): string[] {
  return [...readdirSync(binDir).map((f) => `bin/${f}`), ...readdirSync(confDir).map((f) => `net.d/${f}`)].sort();
}

const readJSON = (path: string) => JSON.parse(readFileSync(path, "utf8"));

describe("install", () => {
  test("copies the forwarder and the core (0755, they run) and the config with ipam.nodeName from KUBE_IPAM_NODE_NAME", async () => {
    const source = fileNetConf(dir.path);
    const file = writeSource("10-kube-ipam.conf", source);
    const r = await install(["--conf", file], "node-a");
    expect({ exitCode: r.exitCode, stderr: r.stderr }).toEqual({ exitCode: 0, stderr: "" });
    expect(written()).toEqual(["bin/kube-ipam", "bin/kube-ipam-core", "net.d/10-kube-ipam.conf"]);

    const bin = join(binDir, "kube-ipam");
    const core = join(binDir, "kube-ipam-core");
    for (const [installed, built] of [[bin, BINARY], [core, CORE_BINARY]] as const) {
      expect(statSync(installed).mode & 0o777).toBe(0o755);
      expect(readFileSync(installed).equals(readFileSync(built))).toBe(true);
    }
    const version = Bun.spawnSync([bin, "version"]);
    expect(version.exitCode).toBe(0);
    expect(version.stdout.toString()).toBe(`kube-ipam ${VERSION}\n`);

    const installed = readJSON(join(confDir, "10-kube-ipam.conf"));
    expect(installed).toEqual({ ...source, ipam: { ...source.ipam, nodeName: "node-a" } });
    expect(statSync(join(confDir, "10-kube-ipam.conf")).mode & 0o777).toBe(0o644);
    expect(r.stdout).toContain(`Installed ${core} (kube-ipam ${VERSION} core, `);
    expect(r.stdout).toContain(`Installed ${bin} (kube-ipam ${VERSION} forwarder, `);
    expect(r.stdout).toContain(`Installed ${join(confDir, "10-kube-ipam.conf")} (network "testnet", ipam.nodeName "node-a") from ${file}`);
  });

  test("the installed binary, run by a runtime with the installed config, records the node's name", async () => {
    const file = writeSource("10-kube-ipam.conf", fileNetConf(dir.path));
    expect((await install(["--conf", file], "node-b")).exitCode).toBe(0);
    const conf = readJSON(join(confDir, "10-kube-ipam.conf"));
    // No KUBE_IPAM_NODE_NAME in the plugin's environment, as under a container runtime.
    const add = await runPlugin(conf, { command: "ADD", containerID: "c1" }, join(binDir, "kube-ipam"));
    expect({ exitCode: add.exitCode, stderr: add.stderr }).toEqual({ exitCode: 0, stderr: "" });
    const ls = await runCli(["ls", "--conf", join(confDir, "10-kube-ipam.conf"), "-o", "json"]);
    expect(ls.json.map((a: { ip: string; node: string }) => [a.ip, a.node])).toEqual([["10.10.0.2", "node-b"]]);
  });

  test("without KUBE_IPAM_NODE_NAME the config is installed byte for byte", async () => {
    const text = `{"cniVersion":"0.3.1","name":"k8snetwork","type":"macvlan","master":"eth1",
      "ipam":{"type":"kube-ipam","subnet":"10.188.0.0/16","rangeStart":"10.188.0.10","rangeEnd":"10.188.0.200"}}`;
    const file = writeSource("1-kube-ipam.conf", text);
    const r = await install(["--conf", file]);
    expect(r.exitCode).toBe(0);
    expect(readFileSync(join(confDir, "1-kube-ipam.conf"), "utf8")).toBe(text);
    expect(r.stdout).toContain('(network "k8snetwork") from');
  });

  test("a conflist: nodeName goes into the kube-ipam plugin only; --name sets the file name", async () => {
    const conflist = {
      cniVersion: "1.0.0",
      name: "chain",
      plugins: [
        { type: "macvlan", master: "eth1", ipam: { type: "kube-ipam", subnet: "10.20.0.0/24", dataDir: join(dir.path, "d") } },
        { type: "portmap", capabilities: { portMappings: true } },
        { type: "tuning", ipam: { type: "host-local" } },
      ],
    };
    const file = writeSource("chain.conflist", conflist);
    const r = await install(["--conf", file, "--name", "05-chain.conflist"], "node-c");
    expect(r.exitCode).toBe(0);
    expect(written()).toEqual(["bin/kube-ipam", "bin/kube-ipam-core", "net.d/05-chain.conflist"]);
    const installed = readJSON(join(confDir, "05-chain.conflist"));
    expect(installed.plugins[0].ipam.nodeName).toBe("node-c");
    expect(installed.plugins[1]).toEqual(conflist.plugins[1]);
    expect(installed.plugins[2]).toEqual(conflist.plugins[2]);
  });

  test("KUBE_IPAM_NODE_NAME replaces a nodeName written in the config, and says so", async () => {
    const file = writeSource("10-kube-ipam.conf", fileNetConf(dir.path, { nodeName: "copied-from-elsewhere" }));
    const r = await install(["--conf", file], "node-d");
    expect(r.exitCode).toBe(0);
    expect(readJSON(join(confDir, "10-kube-ipam.conf")).ipam.nodeName).toBe("node-d");
    expect(r.stdout).toContain('ipam.nodeName "node-d" (replacing "copied-from-elsewhere")');
  });

  test("an upgrade replaces all three files by rename and leaves no temporary file", async () => {
    const file = writeSource("10-kube-ipam.conf", fileNetConf(dir.path));
    expect((await install(["--conf", file], "node-e")).exitCode).toBe(0);
    const files = [join(binDir, "kube-ipam"), join(binDir, "kube-ipam-core"), join(confDir, "10-kube-ipam.conf")];
    const before = files.map((f) => statSync(f).ino);
    writeFileSync(file, JSON.stringify(fileNetConf(dir.path, { subnet: "10.11.0.0/24" })));
    expect((await install(["--conf", file], "node-e")).exitCode).toBe(0);
    const after = files.map((f) => statSync(f).ino);
    for (const [i, ino] of after.entries()) expect(ino).not.toBe(before[i]);
    expect(readJSON(join(confDir, "10-kube-ipam.conf")).ipam.subnet).toBe("10.11.0.0/24");
    expect(written()).toEqual(["bin/kube-ipam", "bin/kube-ipam-core", "net.d/10-kube-ipam.conf"]);
  });
});

describe("a config the plugin would refuse is never installed", () => {
  const cases: [string, string | object, string][] = [
    ["host bits in the subnet", { cniVersion: "1.0.0", name: "n", type: "macvlan", ipam: { type: "kube-ipam", subnet: "10.0.0.1/24" } }, "ipam.subnet"],
    ["not JSON", "{ \"cniVersion\": \"1.0.0\", ", "Cannot decode network config"],
    ["an unsupported cniVersion", { cniVersion: "9.9.9", name: "n", ipam: { type: "kube-ipam", subnet: "10.0.0.0/24" } }, "9.9.9"],
    ["a conflist without kube-ipam", { cniVersion: "1.0.0", name: "n", plugins: [{ type: "bridge", ipam: { type: "host-local" } }] }, "kube-ipam"],
    ["an etcdURL that is not a URL", { cniVersion: "1.0.0", name: "n", ipam: { type: "kube-ipam", subnet: "10.0.0.0/24", etcdConfig: { etcdURL: "etcd:2379" } } }, "ipam.etcdConfig.etcdURL"],
  ];
  test.each(cases)("%s: exit 1 naming the file and the problem, nothing written", async (_name, conf, problem) => {
    const file = writeSource("bad.conf", conf);
    const r = await install(["--conf", file], "node-a");
    expect(r.exitCode).toBe(1);
    expect(r.stdout).toBe("");
    expect(r.stderr).toStartWith(`kube-ipam: Refusing to install "${file}", nothing was installed: `);
    expect(r.stderr).toContain(problem);
    expect(written()).toEqual([]);
  });

  test("a refused config leaves a previous installation as it was", async () => {
    const good = writeSource("10-kube-ipam.conf", fileNetConf(dir.path));
    expect((await install(["--conf", good], "node-a")).exitCode).toBe(0);
    const before = readFileSync(join(confDir, "10-kube-ipam.conf"), "utf8");
    writeFileSync(good, JSON.stringify(fileNetConf(dir.path, { rangeEnd: "10.99.0.1" })));
    const r = await install(["--conf", good], "node-a");
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain("rangeEnd");
    expect(readFileSync(join(confDir, "10-kube-ipam.conf"), "utf8")).toBe(before);
    expect(written()).toEqual(["bin/kube-ipam", "bin/kube-ipam-core", "net.d/10-kube-ipam.conf"]);
  });
});

describe("I/O errors: exit 1 naming the path", () => {
  test("a missing config file", async () => {
    const missing = join(dir.path, "missing.conf");
    const r = await install(["--conf", missing]);
    expect(r).toMatchObject({ exitCode: 1, stdout: "", stderr: `kube-ipam: Cannot read --conf "${missing}": no such file or directory\n` });
  });

  test("a missing conf dir: nothing is written to the bin dir either", async () => {
    const file = writeSource("10-kube-ipam.conf", fileNetConf(dir.path));
    const missing = join(dir.path, "nowhere");
    const r = await runCli(["install-cni", "--bin-dir", binDir, "--conf-dir", missing, "--conf", file]);
    expect(r).toMatchObject({ exitCode: 1, stderr: `kube-ipam: Cannot install into "${missing}": no such file or directory\n` });
    expect(written()).toEqual([]);
  });

  test("a bin dir that is a file", async () => {
    const file = writeSource("10-kube-ipam.conf", fileNetConf(dir.path));
    const notDir = join(dir.path, "plain-file");
    writeFileSync(notDir, "");
    const r = await runCli(["install-cni", "--bin-dir", notDir, "--conf-dir", confDir, "--conf", file]);
    expect(r).toMatchObject({ exitCode: 1, stderr: `kube-ipam: Cannot install into "${notDir}": not a directory\n` });
  });

  test("an unwritable conf dir names the file it could not write and leaves no temporary file", async () => {
    const file = writeSource("10-kube-ipam.conf", fileNetConf(dir.path));
    // Root ignores directory modes; a read-only bind is not available everywhere, so use a directory
    // whose target name is taken by a directory (rename over a directory fails for everyone).
    mkdirSync(join(confDir, "10-kube-ipam.conf"));
    chmodSync(confDir, 0o755);
    const r = await install(["--conf", file]);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toStartWith(`kube-ipam: Cannot write "${join(confDir, "10-kube-ipam.conf")}" (config): `);
    expect(readdirSync(confDir)).toEqual(["10-kube-ipam.conf"]);
  });
});

describe("usage errors: exit 2", () => {
  const cases: [string, string[], string][] = [
    ["no --bin-dir", ["install-cni", "--conf-dir", "/x", "--conf", "/y.conf"], "install-cni needs --bin-dir DIR"],
    ["no --conf-dir", ["install-cni", "--bin-dir", "/x", "--conf", "/y.conf"], "install-cni needs --conf-dir DIR"],
    ["no --conf", ["install-cni", "--bin-dir", "/x", "--conf-dir", "/y"], "install-cni needs --conf FILE"],
    ["an unknown flag", ["install-cni", "--bin-dir", "/x", "--conf-dir", "/y", "--conf", "/z.conf", "--force"], 'Unknown flag "--force"'],
    ["an argument", ["install-cni", "extra", "--bin-dir", "/x", "--conf-dir", "/y", "--conf", "/z.conf"], 'takes no arguments, got "extra"'],
    ["a --name with a slash", ["install-cni", "--bin-dir", "/x", "--conf-dir", "/y", "--conf", "/z.conf", "--name", "../a.conf"], "must be a plain file name"],
    ["a --name libcni ignores", ["install-cni", "--bin-dir", "/x", "--conf-dir", "/y", "--conf", "/z.conf", "--name", "kube-ipam"], "must end in .conf, .conflist or .json"],
  ];
  test.each(cases)("%s", async (_name, args, message) => {
    const r = await runCli(args);
    expect(r.exitCode).toBe(2);
    expect(r.stdout).toBe("");
    expect(r.stderr).toStartWith("kube-ipam: ");
    expect(r.stderr).toContain(message);
    expect(r.stderr).toEndWith(USAGE_HINT);
  });
});

describe("--sleep", () => {
  test.each([["SIGTERM"], ["SIGINT"]] as const)("installs, then sleeps until %s and exits 0", async (signal) => {
    const file = writeSource("10-kube-ipam.conf", fileNetConf(dir.path));
    const proc = Bun.spawn([BINARY, "install-cni", "--bin-dir", binDir, "--conf-dir", confDir, "--conf", file, "--sleep"], {
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin", KUBE_IPAM_NODE_NAME: "node-s" },
      stdout: "pipe",
      stderr: "pipe",
    });
    const reader = proc.stdout.getReader();
    const decoder = new TextDecoder();
    let out = "";
    while (!out.includes("Sleeping until terminated\n")) {
      const { value, done } = await reader.read();
      if (done) break;
      out += decoder.decode(value, { stream: true });
    }
    expect(out).toContain("Sleeping until terminated\n");
    expect(written()).toEqual(["bin/kube-ipam", "bin/kube-ipam-core", "net.d/10-kube-ipam.conf"]);
    await Bun.sleep(300);
    expect(proc.exitCode).toBeNull(); // still sleeping
    proc.kill(signal);
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      out += decoder.decode(value, { stream: true });
    }
    expect(await proc.exited).toBe(0);
    expect(out).toEndWith(`Sleeping until terminated\nReceived ${signal}, exiting\n`);
  });

  test("a refused config fails at once instead of sleeping", async () => {
    const file = writeSource("bad.conf", { cniVersion: "1.0.0", name: "n", ipam: { type: "kube-ipam" } });
    const r = await install(["--conf", file, "--sleep"], "node-a");
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toContain("no IP ranges");
    expect(written()).toEqual([]);
  });
});
