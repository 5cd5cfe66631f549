// Runs the built binary the way a container runtime does: CNI_* environment, config on stdin,
// one JSON document back on stdout.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";

// KUBE_IPAM_BINARY lets a run test a binary built elsewhere (OUT=... npm run build).
// BINARY is the forwarder the runtime runs; CORE_BINARY the Bun-compiled core next to it (src/forwarder/layout.ts).
export const BINARY = process.env.KUBE_IPAM_BINARY ?? resolve(import.meta.dir, "../../dist/kube-ipam");
export const CORE_BINARY = join(dirname(BINARY), "kube-ipam-core");
export const CNI_BIN_DIR = "/usr/lib/cni";

export interface CniCall {
  command: "ADD" | "DEL" | "CHECK" | "VERSION" | "STATUS" | "GC" | string;
  containerID?: string;
  ifName?: string;
  netns?: string;
  args?: string;
  path?: string;
  /** Extra environment (KUBE_IPAM_NODE_NAME, ...). */
  env?: Record<string, string>;
  /** Omit standard CNI variables to test validation. */
  omit?: string[];
}

export interface CniReply {
  exitCode: number;
  stdout: string;
  stderr: string;
  /** stdout parsed as JSON, undefined when empty. */
  json: any;
}

export function cniEnv(call: CniCall): Record<string, string> {
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    CNI_COMMAND: call.command,
    CNI_CONTAINERID: call.containerID ?? "container-1",
    CNI_NETNS: call.netns ?? "/var/run/netns/test",
    CNI_IFNAME: call.ifName ?? "eth0",
    CNI_PATH: call.path ?? CNI_BIN_DIR,
    ...(call.args !== undefined ? { CNI_ARGS: call.args } : {}),
    ...call.env,
  };
  for (const k of call.omit ?? []) delete env[k];
  return env;
}

function reply(exitCode: number, stdout: string, stderr: string): CniReply {
  let json: any;
  if (stdout.trim() !== "") {
    try {
      json = JSON.parse(stdout);
    } catch {
      throw new Error(`Plugin wrote non-JSON to stdout (exit ${exitCode}): ${stdout}\nstderr: ${stderr}`);
    }
  }
  return { exitCode, stdout, stderr, json };
}

/** Waits for a process and collects what it wrote. */
async function collect(proc: { stdout: ReadableStream<Uint8Array>; stderr: ReadableStream<Uint8Array>; exited: Promise<number> }) {
  const [stdout, stderr, exitCode] = await Promise.all([
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
    proc.exited,
  ]);
  return { stdout, stderr, exitCode };
}

/** Runs the plugin and waits for it. */
export async function runPlugin(config: unknown, call: CniCall, binary = BINARY): Promise<CniReply> {
  const proc = Bun.spawn([binary], {
    env: cniEnv(call),
    stdin: new TextEncoder().encode(typeof config === "string" ? config : JSON.stringify(config)),
    stdout: "pipe",
    stderr: "pipe",
  });
  const { stdout, stderr, exitCode } = await collect(proc);
  return reply(exitCode, stdout, stderr);
}

/** Starts the plugin without waiting, so a test can kill it mid-flight. */
export function spawnPlugin(config: unknown, call: CniCall, binary = BINARY) {
  return Bun.spawn([binary], {
    env: cniEnv(call),
    stdin: new TextEncoder().encode(JSON.stringify(config)),
    stdout: "pipe",
    stderr: "pipe",
  });
}

/** Runs the CLI (no CNI_COMMAND). */
export async function runCli(args: string[], opts: { stdin?: string; env?: Record<string, string> } = {}): Promise<CniReply> {
  const proc = Bun.spawn([BINARY, ...args], {
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", ...opts.env },
    stdin: opts.stdin !== undefined ? new TextEncoder().encode(opts.stdin) : "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  const { stdout, stderr, exitCode } = await collect(proc);
  return { exitCode, stdout, stderr, json: stdout.trim().startsWith("[") || stdout.trim().startsWith("{") ? JSON.parse(stdout) : undefined };
}

let confCount = 0;

/** `kube-ipam ls -o json` on a network config (written to a file in `dir`); throws when ls fails. */
export async function listAllocations(conf: unknown, dir: string): Promise<any[]> {
  const path = join(dir, `ls-${process.pid}-${confCount++}.conf`);
  writeFileSync(path, JSON.stringify(conf));
  const out = await runCli(["ls", "--conf", path, "-o", "json"]);
  if (out.exitCode !== 0) throw new Error(`kube-ipam ls failed: ${out.stderr}`);
  return out.json;
}

/** A temporary directory removed by `cleanup()`. */
export function tempDir(prefix = "kube-ipam-test-"): { path: string; cleanup(): void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, cleanup: () => rmSync(path, { recursive: true, force: true }) };
}

/** A network config on the embedded store in `dir`. */
export function fileNetConf(dir: string, ipam: Record<string, unknown> = {}, top: Record<string, unknown> = {}) {
  return {
    cniVersion: "1.0.0",
    name: "testnet",
    type: "bridge",
    ...top,
    ipam: {
      type: "kube-ipam",
      subnet: "10.10.0.0/24",
      dataDir: join(dir, "data"),
      logFile: join(dir, "kube-ipam.log"),
      ...ipam,
    },
  };
}

let etcdNets = 0;

/** A network config on etcd at `endpoints`, in a key prefix of its own, logging into `dir`. */
export function etcdNetConf(endpoints: string, dir: string, ipam: Record<string, unknown> = {}, name = `etcdnet${etcdNets++}`) {
  return {
    cniVersion: "1.0.0",
    name,
    type: "macvlan",
    ipam: {
      type: "kube-ipam",
      subnet: "10.30.0.0/24",
      etcdConfig: { etcdURL: endpoints, etcdPrefix: `/test-${process.pid}-${name}` },
      logFile: join(dir, "kube-ipam.log"),
      ...ipam,
    },
  };
}

/** Runs `fn` over `items` with at most `limit` in flight. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T, i: number) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!, i);
    }
  });
  await Promise.all(workers);
  return out;
}
