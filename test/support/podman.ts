// Podman as the image tests use it: every call with the tests' containers.conf (CONTAINERS_CONF), its
// output collected; optionally inside another mount namespace (the node's view, test/support/node_view.ts).
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export interface PodmanResult {
  readonly exitCode: number;
  readonly stdout: string;
  readonly stderr: string;
}

export interface PodmanOptions {
  /** containers.conf for every call (see writeContainersConf). */
  readonly conf: string;
  /** Run podman inside this process's mount namespace (nsenter -t PID -m). */
  readonly mountNamespaceOf?: number;
}

export class Podman {
  constructor(readonly options: PodmanOptions) {}

  /** Runs `podman ...args` and collects its output, whatever its exit status. */
  async run(args: readonly string[]): Promise<PodmanResult> {
    const proc = Bun.spawn(this.argv(args), {
      env: { PATH: process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin", CONTAINERS_CONF: this.options.conf },
      stdin: "ignore",
      stdout: "pipe",
      stderr: "pipe",
    });
    const [stdout, stderr, exitCode] = await Promise.all([
      new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
    return { exitCode, stdout, stderr };
  }

  /** Runs `podman ...args`; throws with its stderr unless it exits 0; returns stdout. */
  async ok(args: readonly string[]): Promise<string> {
    const r = await this.run(args);
    if (r.exitCode !== 0) throw new Error(`podman ${args.join(" ")} failed (exit ${r.exitCode}): ${r.stderr}${r.stdout}`);
    return r.stdout;
  }

  /** The argv of `podman ...args`, inside the mount namespace if there is one. */
  argv(args: readonly string[]): string[] {
    const ns = this.options.mountNamespaceOf;
    return ns === undefined ? ["podman", ...args] : ["nsenter", "-t", String(ns), "-m", "--", "podman", ...args];
  }

  /** For exit hooks: removes the containers carrying `label` (all at once) and the `images`, synchronously. */
  removeSync(label: string, images: readonly string[]): void {
    const env = { PATH: process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin", CONTAINERS_CONF: this.options.conf };
    const ids = Bun.spawnSync(this.argv(["ps", "-aq", "--filter", `label=${label}`]), { env }).stdout.toString().split("\n").filter(Boolean);
    const rm = ids.map((id) => `${this.argv(["rm", "-f", "-t", "0", id]).join(" ")} >/dev/null 2>&1 &`).join("\n");
    Bun.spawnSync(["sh", "-c", `${rm}\nwait`], { env });
    if (images.length > 0) Bun.spawnSync(this.argv(["rmi", "--force", ...images]), { env });
  }

  /** Removes every container carrying `label` (force: running ones are killed). */
  async removeLabelled(label: string): Promise<void> {
    const ids = (await this.ok(["ps", "-aq", "--filter", `label=${label}`])).split("\n").filter(Boolean);
    if (ids.length > 0) await this.run(["rm", "-f", "-t", "0", ...ids]);
  }
}

/** runc's absolute path: podman's own search would take the first of its list that exists. */
function runcPath(): string {
  for (const p of ["/usr/sbin/runc", "/usr/bin/runc", "/sbin/runc", "/usr/local/sbin/runc", "/usr/local/bin/runc"]) {
    if (existsSync(p)) return p;
  }
  throw new Error("runc is not installed: the image tests run containers with runc (apt-get install runc)");
}

/** One limit's hard value from /proc/self/limits ("unlimited" -> undefined). */
function hardLimit(name: string): number | undefined {
  const line = readFileSync("/proc/self/limits", "utf8").split("\n").find((l) => l.startsWith(name));
  const hard = line?.slice(26).trim().split(/\s+/)[1];
  return hard === undefined || hard === "unlimited" ? undefined : Number(hard);
}

export interface NetworkSettings {
  /** Where podman (CNI backend) reads network configs. */
  readonly networkConfigDir: string;
  /** Where it looks for CNI plugins, in order. */
  readonly cniPluginDirs: readonly string[];
}

/**
 * Writes a containers.conf for the tests in `dir` and returns its path. Default ulimits: podman asks for
 * nofile 1048576 and a large nproc, which a runtime without CAP_SYS_RESOURCE (a sandboxed CI machine)
 * cannot set ("error setting rlimit type 7: operation not permitted"); the test containers get this
 * process's hard limits, nproc at most kernel.pid_max (more was refused there too). Kubernetes sets no
 * ulimits of its own, so this changes nothing the manifests say.
 *
 * The OCI runtime is runc, by absolute path, whatever else is installed: podman prefers crun when both are
 * there (Debian installs crun with podman), and Debian 12's crun 1.8 refuses hybrid cgroups ("cgroups in
 * hybrid mode not supported, drop all controllers from cgroupv2"), while runc runs on cgroup v1, hybrid and
 * v2 alike. It is also the runtime containerd runs the real cluster's pods with (scripts/cluster/).
 */
export function writeContainersConf(dir: string, network: NetworkSettings): string {
  const pidMax = Number(readFileSync("/proc/sys/kernel/pid_max", "utf8").trim());
  const nofile = hardLimit("Max open files") ?? 1048576;
  const nproc = Math.min(hardLimit("Max processes") ?? pidMax, pidMax);
  const q = (s: string) => JSON.stringify(s);
  const path = join(dir, "containers.conf");
  writeFileSync(path, [
    "[containers]",
    `default_ulimits = [${q(`nofile=${nofile}:${nofile}`)}, ${q(`nproc=${nproc}:${nproc}`)}]`,
    "[engine]",
    'runtime = "runc"',
    "[engine.runtimes]",
    `runc = [${q(runcPath())}]`,
    "[network]",
    'network_backend = "cni"',
    `network_config_dir = ${q(network.networkConfigDir)}`,
    `cni_plugin_dirs = [${network.cniPluginDirs.map(q).join(", ")}]`,
    "",
  ].join("\n"));
  return path;
}
