// `kube-ipam controller` as a real process for integration tests: its log (stderr) collected, its
// /metrics read and parsed, its leadership seen through etcd's leader key.
import type { Subprocess } from "bun";
import { freePorts } from "./etcd.ts";
import { BINARY } from "./plugin.ts";

export interface Controller {
  readonly name: string;
  readonly proc: Subprocess<"ignore", "ignore", "pipe">;
  readonly port: number;
  /** Everything it logged so far (JSON lines). */
  log(): string;
  /** /metrics, or undefined while it does not answer. */
  metrics(): Promise<string | undefined>;
  /** One sample of /metrics (`kube_ipam_leader`, `kube_ipam_gc_runs_total{outcome="error"}`), undefined when absent. */
  metric(sample: string): Promise<number | undefined>;
  /** SIGKILL and wait (the default) or another signal without waiting. */
  kill(signal?: NodeJS.Signals): Promise<void>;
}

/**
 * Starts `kube-ipam controller --conf path ...flags` with POD_NAME=name, so that its identity in the
 * leader key is `name/<pid>`; on `port` when given (a restart), else on a free one. Its endpoint is plain
 * HTTP for all (`--auth none`) unless `flags` name another --auth or `opts.defaultAuth` leaves the default:
 * test/integration/endpoint_auth.test.ts tests the authenticated one.
 */
export function startController(name: string, path: string, flags: readonly string[], port = freePorts(1)[0]!,
  opts: { defaultAuth?: boolean } = {}): Controller {
  const auth = opts.defaultAuth || flags.some((f) => f.startsWith("--auth")) ? [] : ["--auth", "none"];
  const proc = Bun.spawn([BINARY, "controller", "--conf", path, "--metrics-addr", `127.0.0.1:${port}`, ...auth, ...flags], {
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", POD_NAME: name },
    stdin: "ignore",
    stdout: "ignore",
    stderr: "pipe",
  });
  let text = "";
  void (async () => {
    const decoder = new TextDecoder();
    for await (const chunk of proc.stderr) text += decoder.decode(chunk, { stream: true });
  })();
  const metrics = async () => {
    try {
      const res = await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(5000) });
      return res.ok ? await res.text() : undefined;
    } catch {
      return undefined;
    }
  };
  return {
    name,
    proc,
    port,
    log: () => text,
    metrics,
    metric: async (sample) => sampleOf(await metrics(), sample),
    async kill(signal = "SIGKILL") {
      proc.kill(signal);
      if (signal === "SIGKILL" || signal === "SIGTERM") await proc.exited;
    },
  };
}

export function sampleOf(text: string | undefined, sample: string): number | undefined {
  const line = text?.split("\n").find((l) => l.startsWith(`${sample} `));
  return line === undefined ? undefined : Number(line.slice(sample.length + 1));
}

const b64 = (s: string) => Buffer.from(s).toString("base64");

/** The leader key `<prefix>/controller/leader` as etcd holds it: the leader's identity and its lease. */
export async function leaderKey(endpoint: string, prefix: string, timeoutMs = 10_000): Promise<{ identity: string; lease: string } | undefined> {
  const res = await fetch(`${endpoint}/v3/kv/range`, {
    method: "POST", body: JSON.stringify({ key: b64(`${prefix}/controller/leader`) }), signal: AbortSignal.timeout(timeoutMs),
  });
  const body = (await res.json()) as { kvs?: Array<{ value: string; lease?: string }> };
  const kv = body.kvs?.[0];
  return kv && { identity: Buffer.from(kv.value, "base64").toString(), lease: kv.lease ?? "0" };
}

/** Revokes a lease directly in etcd: its keys vanish at once, whoever holds it. */
export async function revokeLease(endpoint: string, lease: string): Promise<void> {
  const res = await fetch(`${endpoint}/v3/lease/revoke`, { method: "POST", body: JSON.stringify({ ID: lease }) });
  if (!res.ok) throw new Error(`Cannot revoke lease ${lease}: ${res.status} ${await res.text()}`);
}
