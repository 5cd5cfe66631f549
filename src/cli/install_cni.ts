// `kube-ipam install-cni --bin-dir DIR --conf-dir DIR --conf FILE [--name FILENAME] [--sleep | --agent
// [the agent's flags: --socket PATH --metrics-addr HOST:PORT --kubeconfig FILE --auth ... --tls-...]]`: the
// install-cni step of the DaemonSet (deploy/kube-ipam-daemonset.yaml), as Calico and whereabouts do it.
//
// 1. Reads the network config FILE (the ConfigMap), injects KUBE_IPAM_NODE_NAME as `ipam.nodeName` (the
//    plugin runs under the container runtime and never sees the pod's environment) and validates the
//    result with the plugin's own loader: a broken ConfigMap never reaches the node, and nothing is
//    written when it is refused.
// 2. Copies the running executable (the core) to DIR/kube-ipam-core and the forwarder next to it to
//    DIR/kube-ipam (src/forwarder/layout.ts), then the config to CONF-DIR/FILENAME (default: FILE's
//    basename), each atomically: a temporary file in the target directory, chmod, fsync, rename. A runtime
//    running the plugin at that moment runs the old or the new file, never a partial one. The core goes
//    first, so that the forwarder never execs a core that is not there; the executables before the config,
//    so that the config never names a plugin that is not there yet.
// 3. With --sleep, sleeps until SIGTERM or SIGINT and exits 0; with --agent, runs the node agent
//    (`kube-ipam agent`) until then instead: the DaemonSet's main container.
//
// Usage errors exit 2 (UsageError); unreadable, invalid or unwritable files exit 1 naming the path.
import { closeSync, copyFileSync, chmodSync, existsSync, fsyncSync, openSync, readFileSync, renameSync, statSync, unlinkSync,
  writeFileSync } from "node:fs";
import { hostname } from "../lib/hostname.ts";
import { basename, join } from "node:path";
import { CniError, ErrorCode } from "../cni/errors.ts";
import { ConfigError, DecodeError } from "../config/errors.ts";
import { loadIpamConfig } from "../config/ipam_config.ts";
import { decodeNetworkConfig, selectKubeIpamConfig } from "../config/network_file.ts";
import { VERSION } from "../version.ts";
import { CORE_EXECUTABLE, FORWARDER_EXECUTABLE } from "../forwarder/layout.ts";
import { AGENT_VALUED, agentCommand } from "./agent.ts";
import { type ParsedFlags, UsageError } from "./flags.ts";
import { isRecord } from "../lib/is_record.ts";

export const INSTALL_CNI_VALUED = ["bin-dir", "conf-dir", "conf", "name", ...AGENT_VALUED] as const;
export const INSTALL_CNI_SWITCHES = ["sleep", "agent"] as const;

type Obj = Record<string, unknown>;

export interface InstallCniIO {
  /** The executable to install; the running one by default. */
  readonly execPath: string;
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Writes progress at once (the --sleep container's log shows it before it sleeps). */
  readonly print: (text: string) => void;
  /** Resolves with the signal's name when the process is asked to stop. */
  readonly waitForTermination: () => Promise<string>;
  /** Runs the node agent until the process is asked to stop. */
  readonly runAgent: (flags: ParsedFlags) => Promise<string>;
}

/** The compiled executable; `bun src/main.ts` would install the Bun runtime itself, so that is refused. */
function selfExecutable(): string {
  if (!Bun.main.startsWith("/$bunfs/")) {
    throw new CniError(ErrorCode.InvalidEnvironment,
      `install-cni installs the compiled executable it runs from, but this is "${process.execPath}" running ` +
        `${Bun.main}: build it (npm run build) and run dist/kube-ipam install-cni`);
  }
  return process.execPath;
}

const defaultIO: InstallCniIO = {
  get execPath() {
    return selfExecutable();
  },
  env: process.env,
  print: (text) => process.stdout.write(text),
  waitForTermination,
  runAgent: agentCommand,
};

/** Parses, validates, installs; returns what is left to print (nothing, or the exit line after --sleep). */
export async function installCniCommand(flags: ParsedFlags, io: InstallCniIO = defaultIO): Promise<string> {
  if (flags.positional.length > 0) {
    throw new UsageError(`install-cni takes no arguments, got "${flags.positional.join(" ")}"`);
  }
  const binDir = required(flags, "bin-dir", "the host's CNI binary directory, e.g. /host/opt/cni/bin");
  const confDir = required(flags, "conf-dir", "the host's CNI config directory, e.g. /host/etc/cni/net.d");
  const confFile = required(flags, "conf", "the network config to install (.conf or .conflist)");
  const name = flags.values.get("name") ?? basename(confFile);
  if (name === "." || name === ".." || name.includes("/") || name.startsWith(".")) {
    throw new UsageError(`--name "${name}" must be a plain file name, not starting with "."`);
  }
  if (!/\.(conf|conflist|json)$/.test(name)) {
    // libcni loads only these extensions from the config directory.
    throw new UsageError(`--name "${name}" must end in .conf, .conflist or .json, or the runtime ignores it`);
  }

  const agent = flags.switches.has("agent");
  if (agent && flags.switches.has("sleep")) throw new UsageError("install-cni takes --sleep or --agent, not both");
  for (const f of AGENT_VALUED) {
    if (!agent && flags.values.has(f)) throw new UsageError(`--${f} is a flag of the agent: add --agent`);
  }
  const self = io.execPath;
  const nodeName = io.env.KUBE_IPAM_NODE_NAME || undefined;
  const conf = prepareConfig(confFile, nodeName);
  for (const dir of [binDir, confDir]) requireDirectory(dir);

  const forwarder = join(self, "..", FORWARDER_EXECUTABLE);
  if (!existsSync(forwarder)) {
    throw new CniError(ErrorCode.IOFailure, `Cannot install the plugin: "${forwarder}", the forwarder built with "${self}", is missing`, forwarder);
  }
  for (const [from, name, what] of [[self, CORE_EXECUTABLE, "core"], [forwarder, FORWARDER_EXECUTABLE, "forwarder"]] as const) {
    const binPath = join(binDir, name);
    atomicWrite(binPath, 0o755, (tmp) => copyFileSync(from, tmp), `copy of "${from}"`);
    io.print(`Installed ${binPath} (kube-ipam ${VERSION} ${what}, ${statSync(binPath).size} bytes)\n`);
  }

  const confPath = join(confDir, name);
  atomicWrite(confPath, 0o644, (tmp) => writeFileSync(tmp, conf.text), "config");
  const node = nodeName ? `, ipam.nodeName "${nodeName}"${conf.replaced ? ` (replacing "${conf.replaced}")` : ""}` : "";
  io.print(`Installed ${confPath} (network "${conf.network}"${node}) from ${confFile}\n`);

  if (agent) {
    io.print("Running the node agent\n");
    return io.runAgent(flags);
  }
  if (!flags.switches.has("sleep")) return "";
  const terminated = io.waitForTermination(); // handlers first: a SIGTERM right after the line below is ours
  io.print("Sleeping until terminated\n");
  const signal = await terminated;
  return `Received ${signal}, exiting\n`;
}

function required(flags: ParsedFlags, flag: string, what: string): string {
  const v = flags.values.get(flag);
  if (!v) throw new UsageError(`install-cni needs --${flag} ${flag === "conf" ? "FILE" : "DIR"}: ${what}`);
  return v;
}

interface PreparedConfig {
  /** The bytes to install: the file as it is, or re-serialised with ipam.nodeName. */
  readonly text: string;
  readonly network: string;
  /** A nodeName the file had and KUBE_IPAM_NODE_NAME replaced. */
  readonly replaced?: string;
}

/** Reads FILE, injects the node name, and validates the result as the plugin will read it. */
export function prepareConfig(file: string, nodeName: string | undefined): PreparedConfig {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    throw new CniError(ErrorCode.IOFailure, `Cannot read --conf "${file}": ${reason(e)}`, file, { cause: e });
  }
  try {
    const doc = decodeNetworkConfig(text, `"${file}"`);
    let replaced: string | undefined;
    if (nodeName !== undefined) {
      for (const ipam of kubeIpamSections(doc)) {
        if (typeof ipam.nodeName === "string" && ipam.nodeName !== "" && ipam.nodeName !== nodeName) {
          replaced = ipam.nodeName;
        }
        ipam.nodeName = nodeName;
      }
      text = `${JSON.stringify(doc, null, 2)}\n`;
    }
    // The plugin's own reading: conflist selection, every field, ranges, etcdConfig.
    const selected = selectKubeIpamConfig(doc, `"${file}"`);
    const config = loadIpamConfig(selected, { hostname });
    return { text, network: config.network, ...(replaced !== undefined ? { replaced } : {}) };
  } catch (e) {
    if (!(e instanceof ConfigError || e instanceof DecodeError || e instanceof CniError)) throw e;
    const code = e instanceof CniError ? e.code : e instanceof DecodeError ? ErrorCode.DecodingFailure : ErrorCode.InvalidConfig;
    const details = e instanceof CniError && e.details ? ` (${e.details})` : "";
    throw new CniError(code, `Refusing to install "${file}", nothing was installed: ${e.message}${details}`, file, { cause: e });
  }
}

/** The ipam sections of type kube-ipam: the config's own, or every such plugin's of a conflist. */
function kubeIpamSections(doc: unknown): Obj[] {
  if (!isRecord(doc)) return []; // selectKubeIpamConfig reports it
  const candidates = Array.isArray(doc.plugins) ? doc.plugins : [doc];
  return candidates
    .map((p) => (isRecord(p) && isRecord(p.ipam) && p.ipam.type === "kube-ipam" ? p.ipam : undefined))
    .filter((ipam): ipam is Obj => ipam !== undefined);
}

function requireDirectory(dir: string): void {
  let isDir: boolean;
  try {
    isDir = statSync(dir).isDirectory();
  } catch (e) {
    throw new CniError(ErrorCode.IOFailure, `Cannot install into "${dir}": ${reason(e)}`, dir, { cause: e });
  }
  if (!isDir) throw new CniError(ErrorCode.IOFailure, `Cannot install into "${dir}": not a directory`, dir);
}

/** Writes `target` through a temporary file in its directory, then renames it over the target. */
function atomicWrite(target: string, mode: number, fill: (tmp: string) => void, what: string): void {
  const tmp = join(target, "..", `.${basename(target)}.tmp-${process.pid}-${Math.random().toString(36).slice(2, 10)}`);
  try {
    fill(tmp);
    chmodSync(tmp, mode);
    fsyncPath(tmp);
    renameSync(tmp, target);
  } catch (e) {
    try {
      unlinkSync(tmp);
    } catch { /* never created, or already renamed */ }
    throw new CniError(ErrorCode.IOFailure, `Cannot write "${target}" (${what}): ${reason(e)}`, target, { cause: e });
  }
  try {
    fsyncPath(join(target, "..")); // the rename itself survives a crash
  } catch { /* some filesystems refuse fsync on a directory; the file is in place */ }
}

function fsyncPath(path: string): void {
  const fd = openSync(path, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

function reason(e: unknown): string {
  if (e instanceof ConfigError) return e.message;
  const err = e as NodeJS.ErrnoException;
  switch (err.code) {
    case "ENOENT": return "no such file or directory";
    case "EACCES": case "EPERM": return "permission denied";
    case "EISDIR": return "is a directory";
    case "ENOTDIR": return "a path component is not a directory";
    case "EROFS": return "read-only file system";
    case "ENOSPC": return "no space left on device";
    default: return err.message ?? String(e);
  }
}

/** Resolves on the first SIGTERM or SIGINT; a timer keeps the process alive meanwhile. */
export function waitForTermination(): Promise<string> {
  return new Promise((resolve) => {
    const keepAlive = setInterval(() => {}, 1 << 30);
    const onSignal = (signal: NodeJS.Signals) => {
      clearInterval(keepAlive);
      process.off("SIGTERM", onSignal);
      process.off("SIGINT", onSignal);
      resolve(signal);
    };
    process.on("SIGTERM", onSignal);
    process.on("SIGINT", onSignal);
  });
}
