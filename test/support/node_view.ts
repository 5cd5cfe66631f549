// The node as the plugin sees it, without touching this machine's real /etc/kube-ipam, /run/kube-ipam,
// /var/log: a mount namespace in which the temporary directories standing for them are bind-mounted at
// those very paths. The network config installed by the DaemonSet names host paths (/etc/kube-ipam/etcd/...,
// /var/log/kube-ipam.log, /run/kube-ipam/agent.sock); the agent container sees the stand-ins there through
// its volume mounts, and the plugin (run by podman) and the CLI see them there in this namespace.
//
//   const view = await startNodeView({ "/etc/kube-ipam": join(host, "etc/kube-ipam"), ... });
//   await view.run(["kube-ipam", "ls", ...]);   // nsenter -t view.pid -m
//   await view.stop();
import { existsSync, mkdirSync, rmdirSync } from "node:fs";

export interface NodeView {
  /** A process in the namespace, for nsenter -t PID -m. */
  readonly pid: number;
  run(argv: readonly string[], opts?: { env?: Record<string, string>; stdin?: string }): Promise<{ exitCode: number; stdout: string; stderr: string }>;
  /** Ends the namespace and removes the empty mount points it had to create on this machine. */
  stop(): Promise<void>;
  /** The same, synchronously, for exit hooks. */
  stopSync(): void;
}

/** `binds`: real path -> directory bind-mounted over it in the namespace. */
export async function startNodeView(binds: Readonly<Record<string, string>>): Promise<NodeView> {
  // A bind mount needs its mount point; one this machine lacks is made empty now and removed at stop().
  const created: string[] = [];
  for (const target of Object.keys(binds)) {
    if (existsSync(target)) continue;
    const parts = target.split("/").filter(Boolean);
    for (let i = 1; i <= parts.length; i++) {
      const p = `/${parts.slice(0, i).join("/")}`;
      if (!existsSync(p)) {
        mkdirSync(p, { mode: 0o755 });
        created.push(p);
      }
    }
  }
  const script = [
    ...Object.entries(binds).map(([target, source]) => `mount --bind ${JSON.stringify(source)} ${JSON.stringify(target)}`),
    "echo ready",
    "exec sleep infinity",
  ].join(" && ");
  // --propagation private: nothing mounted in here (binds, podman's container mounts) leaks out.
  const holder = Bun.spawn(["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", script],
    { stdin: "ignore", stdout: "pipe", stderr: "pipe" });
  const reader = holder.stdout.getReader();
  const first = await reader.read();
  if (first.done || !new TextDecoder().decode(first.value).includes("ready")) {
    const err = await new Response(holder.stderr).text();
    holder.kill("SIGKILL");
    throw new Error(`Cannot set up the node's mount namespace: ${err}`);
  }
  reader.releaseLock();
  const removeCreated = () => {
    for (const p of created.reverse()) {
      try {
        rmdirSync(p); // only when still empty
      } catch {}
    }
  };
  return {
    pid: holder.pid,
    async run(argv, opts = {}) {
      const proc = Bun.spawn(["nsenter", "-t", String(holder.pid), "-m", "--", ...argv], {
        env: { PATH: process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin", ...opts.env },
        stdin: opts.stdin === undefined ? "ignore" : new TextEncoder().encode(opts.stdin),
        stdout: "pipe",
        stderr: "pipe",
      });
      const [stdout, stderr, exitCode] = await Promise.all([
        new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
      return { exitCode, stdout, stderr };
    },
    async stop() {
      holder.kill("SIGKILL");
      await holder.exited;
      removeCreated();
    },
    stopSync() {
      holder.kill("SIGKILL");
      removeCreated();
    },
  };
}
