// Starts the built binary's node agent (`kube-ipam agent`) as a real process, for tests and the bench.
//   const agent = await startAgent(dir);          // socket in dir, metrics on a free port
//   ... agent.served("ADD") ...; await agent.stop();  // or agent.kill() for SIGKILL
import { join } from "node:path";
import type { Subprocess } from "bun";
import { freePorts } from "./etcd.ts";
import { BINARY } from "./plugin.ts";

export interface Agent {
  readonly socket: string;
  readonly metricsUrl: string;
  readonly proc: Subprocess<"ignore", "ignore", "pipe">;
  /** What it wrote to stderr so far (its own log lines). */
  stderr(): string;
  /** The /metrics text. */
  metrics(): Promise<string>;
  /** Requests of `verb` the agent answered (its histogram's count, every outcome). */
  served(verb: string): Promise<number>;
  /** SIGTERM, and waits for the exit. */
  stop(): Promise<number>;
  /** SIGKILL, and waits for the exit. */
  kill(): Promise<void>;
}

/** The value of a sample line of `name` with all of `labels` in Prometheus text; 0 when absent, summed over matches. */
export function metricValue(text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const line of text.split("\n")) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) sum += Number(line.slice(line.lastIndexOf(" ") + 1));
  }
  return sum;
}

export interface StartAgentOptions {
  readonly socket?: string;
  readonly binary?: string;
  readonly env?: Record<string, string>;
  /** The agent's own identity (`--kubeconfig`): its pod cache reads through it. */
  readonly kubeconfig?: string;
}

/**
 * Starts the agent with its socket in `dir` (or opts.socket) and its /metrics on a free port, served as plain
 * HTTP to all (`--auth none`): test/integration/endpoint_auth.test.ts tests the authenticated endpoint.
 */
export async function startAgent(dir: string, opts: StartAgentOptions = {}): Promise<Agent> {
  const socket = opts.socket ?? join(dir, "run", "agent.sock");
  const [port] = freePorts(1);
  const identity = opts.kubeconfig ? ["--kubeconfig", opts.kubeconfig] : [];
  const proc = Bun.spawn([opts.binary ?? BINARY, "agent", "--socket", socket, "--metrics-addr", `127.0.0.1:${port}`, "--auth", "none", ...identity], {
    stdin: "ignore",
    stdout: "ignore",
    stderr: "pipe",
    env: { ...process.env, ...opts.env },
  });
  let log = "";
  const reader = proc.stderr.getReader();
  const decoder = new TextDecoder();
  const started = (async () => {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return false;
      log += decoder.decode(value);
      if (log.includes('"agent started"')) return true;
    }
  })();
  if (!(await started)) throw new Error(`kube-ipam agent exited (${await proc.exited}) before serving:\n${log}`);
  void (async () => {
    for (;;) {
      const { value, done } = await reader.read().catch(() => ({ value: undefined, done: true }));
      if (done) return;
      log += decoder.decode(value);
    }
  })();
  const metricsUrl = `http://127.0.0.1:${port}/metrics`;
  const metrics = async () => (await fetch(metricsUrl)).text();
  return {
    socket,
    metricsUrl,
    proc,
    stderr: () => log,
    metrics,
    served: async (verb) => metricValue(await metrics(), "kube_ipam_cni_request_duration_seconds_count", { verb }),
    async stop() {
      proc.kill("SIGTERM");
      return proc.exited;
    },
    async kill() {
      proc.kill("SIGKILL");
      await proc.exited;
    },
  };
}
