// The node agent for the bench: one `kube-ipam agent` process for the whole run, serving every agent
// variant (its socket under the bench's work directory), and its own count of the requests it served.
// The plugin falls back to running a request itself whenever the agent refuses or does not answer, and
// that fallback is silent by design: the bench compares the agent's count with its own calls so that a
// "through the agent" number that was in fact measured without it is flagged, not published.
import { closeSync, existsSync, mkdirSync, openSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { freePorts } from "../test/support/etcd.ts";

const READY_MS = 10_000;

export interface Agent {
  readonly socket: string;
  /** Requests the agent has served so far (all verbs and outcomes), from its /metrics; NaN if unreadable. */
  served(): Promise<number>;
  /** The sum of the agent's metric lines that start with `prefix` (a name, or a name and labels). */
  metric(prefix: string): Promise<number>;
  /** The agent's peak resident memory so far, in KiB (VmHWM), when readable. */
  peakRssKiB(): number | undefined;
  stop(): Promise<void>;
}

export type AgentStart = { agent: Agent } | { skipped: string };

/**
 * Starts `binary agent` with its socket in `dir`; waits (bounded) until the socket file exists. When the
 * binary has no agent yet, or it dies or is slow to start, says why instead of failing the run. `kubeconfig`
 * is the agent's own identity (`--kubeconfig`), for its pod cache; without it the agent reads each ADD's pod
 * as the plugin would.
 */
export async function startAgent(binary: string, dir: string, kubeconfig?: string): Promise<AgentStart> {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const socket = join(dir, "agent.sock");
  const log = join(dir, "agent.log");
  const metrics = `127.0.0.1:${freePorts(1)[0]}`;
  const fd = openSync(log, "a");
  let proc: Subprocess;
  try {
    const identity = kubeconfig ? ["--kubeconfig", kubeconfig] : [];
    proc = Bun.spawn([binary, "agent", "--socket", socket, "--metrics-addr", metrics, "--auth", "none", ...identity],
      { stdin: "ignore", stdout: fd, stderr: fd });
  } finally {
    closeSync(fd);
  }
  const until = Date.now() + READY_MS;
  while (!existsSync(socket)) {
    if (proc.exitCode !== null || Date.now() > until) {
      const exited = proc.exitCode !== null;
      proc.kill("SIGKILL");
      await proc.exited;
      const tail = readTail(log);
      const why = exited ? `exited with status ${proc.exitCode} before serving ${socket}` : `did not serve ${socket} within ${READY_MS / 1000} s`;
      return { skipped: `\`${binary} agent\` ${why}${tail ? `: ${tail}` : ""}` };
    }
    await Bun.sleep(20);
  }
  const agent = agentHandle(proc, socket, metrics);
  // The socket can appear before the metrics server listens: the served count must start from it.
  while (Number.isNaN(await agent.served()) && Date.now() < until) await Bun.sleep(20);
  return { agent };
}

function agentHandle(proc: Subprocess, socket: string, metrics: string): Agent {
  // NaN when the metrics server does not answer.
  const metric = async (prefix: string) => {
    let text: string;
    try {
      text = await (await fetch(`http://${metrics}/metrics`, { signal: AbortSignal.timeout(2000) })).text();
    } catch {
      return NaN;
    }
    let n = 0;
    for (const line of text.split("\n")) {
      if (line.startsWith(prefix)) n += Number(line.slice(line.lastIndexOf(" ") + 1));
    }
    return n;
  };
  return {
    socket,
    metric,
    served: () => metric("kube_ipam_cni_request_duration_seconds_count"),
    peakRssKiB() {
      try {
        const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${proc.pid}/status`, "utf8"));
        return m ? Number(m[1]) : undefined;
      } catch {
        return undefined;
      }
    },
    async stop() {
      proc.kill("SIGTERM");
      const timer = setTimeout(() => proc.kill("SIGKILL"), 5000);
      await proc.exited;
      clearTimeout(timer);
    },
  };
}

function readTail(path: string): string {
  try {
    return readFileSync(path, "utf8").trim().split("\n").slice(-3).join(" / ");
  } catch {
    return "";
  }
}
