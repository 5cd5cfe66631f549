// Real etcd processes for integration tests: loopback only, free ports, throw-away data directories on
// tmpfs when there is one (etcd 3.4 has no --unsafe-no-fsync) unless the caller names another parent
// directory (the bench puts etcd on disk, as in production), quiet logs kept in a file for failures.
// Every process is killed on stop() and, as a last resort, when the test process exits.
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Subprocess } from "bun";
import type { TestPki } from "./certs.ts";

export interface EtcdServer {
  readonly endpoint: string;
  stop(): Promise<void>;
  /** SIGKILL, then the same member again on its ports and data, healthy on return. */
  restart(): Promise<void>;
}

export interface Member {
  readonly name: string;
  readonly clientURL: string;
  /** SIGKILL, and wait for the process to be gone. */
  kill(): Promise<void>;
  /** Starts the member again on the same ports and data, and waits until it is healthy. */
  restart(): Promise<void>;
}

export interface EtcdCluster {
  readonly members: readonly Member[];
  readonly endpoints: readonly string[];
  /** The member the running members agree is leader (waits for an election, bounded). */
  leader(): Promise<Member>;
  stop(): Promise<void>;
}

const ETCD = process.env.ETCD_BIN ?? "etcd";
const READY_MS = 20_000;
const POLL_MS = 25;
const ATTEMPTS = 3;

const live = new Set<Subprocess>();
const dirs = new Set<string>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  const cleanUp = () => {
    for (const p of live) p.kill("SIGKILL");
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  };
  process.on("exit", cleanUp);
  for (const [signal, n] of [["SIGINT", 2], ["SIGTERM", 15], ["SIGHUP", 1]] as const) {
    process.once(signal, () => {
      cleanUp();
      process.exit(128 + n);
    });
  }
}

function baseDir(): string {
  return existsSync("/dev/shm") ? "/dev/shm" : tmpdir();
}

/** Ports free on loopback right now (bound to port 0, then released). */
export function freePorts(n: number): number[] {
  const listeners = Array.from({ length: n }, () =>
    Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } }));
  const ports = listeners.map((l) => l.port);
  for (const l of listeners) l.stop(true);
  return ports;
}

/** An http:// endpoint on loopback that nothing listens on: connections are refused. */
export function refusedEndpoint(): string {
  return `http://127.0.0.1:${freePorts(1)[0]}`;
}

class StartError extends Error {
  constructor(message: string, readonly portTaken: boolean) {
    super(message);
  }
}

interface Node {
  readonly name: string;
  readonly clientURL: string;
  readonly peerURL: string;
  readonly dir: string;
}

class Proc {
  #proc: Subprocess | undefined;

  constructor(readonly node: Node, readonly args: string[], readonly tls: TlsFetch | undefined, readonly binary = ETCD) {}

  get running(): boolean {
    return this.#proc !== undefined && this.#proc.exitCode === null && this.#proc.signalCode === null;
  }

  spawn(): void {
    const log = join(this.node.dir, "etcd.log");
    const fd = openSync(log, "a");
    try {
      this.#proc = Bun.spawn([this.binary, ...this.args], { stdin: "ignore", stdout: fd, stderr: fd });
    } finally {
      closeSync(fd);
    }
    live.add(this.#proc);
  }

  /** Polls /health until this member serves requests, or fails with the end of its log. */
  async waitReady(): Promise<void> {
    const until = Date.now() + READY_MS;
    while (Date.now() < until) {
      if (!this.running) break;
      if (await healthy(this.node.clientURL, this.tls)) return;
      await Bun.sleep(POLL_MS);
    }
    const log = this.log();
    const taken = /address already in use/.test(log);
    await this.kill();
    throw new StartError(`etcd "${this.node.name}" did not become ready at "${this.node.clientURL}":\n${log}`, taken);
  }

  log(): string {
    try {
      return readFileSync(join(this.node.dir, "etcd.log"), "utf8").split("\n").slice(-20).join("\n");
    } catch {
      return "";
    }
  }

  async kill(): Promise<void> {
    const p = this.#proc;
    if (!p) return;
    p.kill("SIGKILL");
    await p.exited;
    live.delete(p);
  }
}

interface TlsFetch {
  readonly cert: string;
  readonly key: string;
  readonly ca: string;
}

async function healthy(url: string, tls: TlsFetch | undefined): Promise<boolean> {
  try {
    const res = await fetch(`${url}/health`, { signal: AbortSignal.timeout(1000), tls });
    return res.ok && ((await res.json()) as { health?: string }).health === "true";
  } catch {
    return false;
  }
}

function argsFor(node: Node, cluster: string, token: string, pki: TestPki | undefined, extra: readonly string[] = []): string[] {
  const args = [
    "--name", node.name, "--data-dir", join(node.dir, "data"),
    "--listen-client-urls", node.clientURL, "--advertise-client-urls", node.clientURL,
    "--listen-peer-urls", node.peerURL, "--initial-advertise-peer-urls", node.peerURL,
    "--initial-cluster", cluster, "--initial-cluster-token", token,
    "--heartbeat-interval", "50", "--election-timeout", "500",
    "--logger", "zap", "--log-level", "error",
  ];
  if (pki) {
    args.push("--client-cert-auth", "--trusted-ca-file", pki.ca.cert,
      "--cert-file", pki.server.cert, "--key-file", pki.server.key);
  }
  return [...args, ...extra];
}

/** Starts members on fresh ports; retries with new ports when another process took one in between. */
async function startNodes(size: number, pki: TestPki | undefined, parent = baseDir(), extra: readonly string[] = [],
  binary = ETCD): Promise<Proc[]> {
  installExitHook();
  const scheme = pki ? "https" : "http";
  const tls = pki && {
    cert: readFileSync(pki.client.cert, "utf8"),
    key: readFileSync(pki.client.key, "utf8"),
    ca: readFileSync(pki.ca.cert, "utf8"),
  };
  for (let attempt = 1; ; attempt++) {
    const ports = freePorts(2 * size);
    const token = `t${ports[0]}`;
    const nodes: Node[] = Array.from({ length: size }, (_, i) => {
      const dir = mkdtempSync(join(parent, "kube-ipam-etcd-"));
      dirs.add(dir);
      return {
        name: `m${i}`, dir,
        clientURL: `${scheme}://127.0.0.1:${ports[2 * i]}`,
        peerURL: `http://127.0.0.1:${ports[2 * i + 1]}`,
      };
    });
    const cluster = nodes.map((n) => `${n.name}=${n.peerURL}`).join(",");
    const procs = nodes.map((n) => new Proc(n, argsFor(n, cluster, token, pki, extra), tls, binary));
    for (const p of procs) p.spawn();
    try {
      await Promise.all(procs.map((p) => p.waitReady()));
      return procs;
    } catch (err) {
      await Promise.all(procs.map((p) => p.kill()));
      for (const n of nodes) removeDir(n.dir);
      if (!(err instanceof StartError && err.portTaken && attempt < ATTEMPTS)) throw err;
    }
  }
}

function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
  dirs.delete(dir);
}

/** Where a member's data directory is made: `dataDir` when given, else tmpfs when there is one. */
export interface DataDirOption {
  readonly dataDir?: string;
}

/**
 * One etcd on loopback; with `pki`, it serves HTTPS and requires client certificates signed by `pki.ca`.
 * The member's data directory is made under `dataDir` when given. `binary` is the etcd program to run (the
 * kube-apiserver fixture's etcd 3.6); default $ETCD_BIN or `etcd` from PATH (Debian's 3.4).
 */
export async function startEtcd(opts: { pki?: TestPki; args?: readonly string[]; binary?: string } & DataDirOption = {}): Promise<EtcdServer> {
  const [proc] = await startNodes(1, opts.pki, opts.dataDir, opts.args, opts.binary);
  return {
    endpoint: proc!.node.clientURL,
    async stop() {
      await proc!.kill();
      removeDir(proc!.node.dir);
    },
    async restart() {
      await proc!.kill();
      proc!.spawn();
      await proc!.waitReady();
    },
  };
}

/** A cluster of `size` members on loopback (plain HTTP), all healthy on return. */
export async function startEtcdCluster(size = 3, opts: DataDirOption = {}): Promise<EtcdCluster> {
  const procs = await startNodes(size, undefined, opts.dataDir);
  const members: Member[] = procs.map((p) => ({
    name: p.node.name,
    clientURL: p.node.clientURL,
    kill: () => p.kill(),
    async restart() {
      await p.kill();
      p.spawn();
      await p.waitReady();
    },
  }));
  return {
    members,
    endpoints: members.map((m) => m.clientURL),
    async leader() {
      const until = Date.now() + READY_MS;
      while (Date.now() < until) {
        for (const [i, p] of procs.entries()) {
          if (!p.running) continue;
          const s = await memberStatus(p.node.clientURL);
          if (s && s.leader !== "0" && s.leader === s.member) return members[i]!;
        }
        await Bun.sleep(POLL_MS);
      }
      throw new Error("No etcd member became leader in time");
    },
    async stop() {
      await Promise.all(procs.map((p) => p.kill()));
      for (const p of procs) removeDir(p.node.dir);
    },
  };
}

/** A member's view of the cluster's leader (`leader` "0" during an election); undefined when it does not answer within 1 s. */
export async function memberStatus(url: string): Promise<{ leader: string; member: string } | undefined> {
  try {
    const res = await fetch(`${url}/v3/maintenance/status`,
      { method: "POST", body: "{}", signal: AbortSignal.timeout(1000) });
    const body = (await res.json()) as { leader?: string; header?: { member_id?: string } };
    return { leader: body.leader ?? "0", member: body.header?.member_id ?? "" };
  } catch {
    return undefined;
  }
}
