// `kubectl ipam ...`: the binary installed or linked as `kubectl-ipam` on PATH is a kubectl plugin. kubectl
// runs it with the arguments after `ipam` and its own path as argv[0] (process.argv0; a Bun executable's
// process.argv[0] is always "bun"). As a plugin it behaves as a kubectl user expects on a node:
//   - `--conf` defaults to $KUBE_IPAM_CONF, else to the one kube-ipam network config in /etc/cni/net.d (what
//     install-cni installed), so `kubectl ipam ls` needs no flag; with several there, it asks for --conf;
//   - gc reads the cluster kubectl reads: --kubeconfig, else $KUBECONFIG (its first file that exists: files
//     are not merged), else ~/.kube/config, else what `kube-ipam gc` would use. The file's current context
//     is the one used.
// Pure except for reading the directory and probing files; main.ts applies it before dispatching.
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { basename, join } from "node:path";
import { UsageError } from "./flags.ts";

/** The executable name that makes this binary a kubectl plugin, and what it is called then. */
export const PLUGIN_EXECUTABLE = "kubectl-ipam";
export type ProgramName = "kube-ipam" | "kubectl ipam";

/** Where kubelet and install-cni keep network configs. */
export const CNI_CONF_DIR = "/etc/cni/net.d";

/** The commands whose `--conf` names the network (and store) to act on: it gets a default. */
export const CONF_COMMANDS: ReadonlySet<string> = new Set(["ls", "show", "usage", "release", "gc", "reserve", "unreserve", "reserved", "migrate"]);

/** The name to show in usage and errors, from how the executable was invoked (argv[0]). */
export function programName(argv0: string): ProgramName {
  return basename(argv0) === PLUGIN_EXECUTABLE ? "kubectl ipam" : "kube-ipam";
}

export interface PluginEnvironment {
  readonly env: Readonly<Record<string, string | undefined>>;
  /** The home directory (~/.kube/config). */
  readonly home: string | undefined;
  /** Where to look for the installed network config; CNI_CONF_DIR unless a test says otherwise. */
  readonly confDir?: string;
}

/** Whether `flag` (`conf`) is given in argv, as `--conf X`, `-conf X` or `--conf=X`, before any `--`. */
function hasFlag(argv: readonly string[], flag: string): boolean {
  for (const a of argv) {
    if (a === "--") return false;
    if (a === `--${flag}` || a === `-${flag}` || a.startsWith(`--${flag}=`) || a.startsWith(`-${flag}=`)) return true;
  }
  return false;
}

type NetworkDoc = { ipam?: { type?: unknown }; plugins?: unknown } | null;

/** A .conf whose ipam.type is kube-ipam, or a .conflist with such a plugin (what load_conf.ts accepts). */
function isKubeIpamConfig(doc: unknown): boolean {
  const d = doc as NetworkDoc;
  if (typeof d !== "object" || d === null) return false;
  if (Array.isArray(d.plugins)) return d.plugins.some((p) => (p as NetworkDoc)?.ipam?.type === "kube-ipam");
  return d.ipam?.type === "kube-ipam";
}

/**
 * The kube-ipam network configs in `dir`, in the order libcni reads them (file names sorted, `.conf`,
 * `.conflist` and `.json`). Files that cannot be read or parsed are someone else's problem: skipped.
 */
export function installedConfigs(dir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  return names
    .filter((n) => /\.(conf|conflist|json)$/.test(n))
    .sort()
    .map((n) => join(dir, n))
    .filter((path) => {
      try {
        return isKubeIpamConfig(JSON.parse(readFileSync(path, "utf8")));
      } catch {
        return false;
      }
    });
}

/** The network config `kubectl ipam` uses without `--conf`. */
export function defaultConf(environment: PluginEnvironment): string {
  const fromEnv = environment.env.KUBE_IPAM_CONF;
  if (fromEnv) return fromEnv;
  const dir = environment.confDir ?? CNI_CONF_DIR;
  const found = installedConfigs(dir);
  if (found.length === 1) return found[0]!;
  if (found.length === 0) {
    throw new UsageError(`No --conf FILE, no KUBE_IPAM_CONF, and no kube-ipam network config in ${dir}: pass --conf FILE`);
  }
  throw new UsageError(`No --conf FILE and several kube-ipam network configs in ${dir} (${found.map((f) => basename(f)).join(", ")}): ` +
    "pass --conf FILE or set KUBE_IPAM_CONF");
}

/** The kubeconfig kubectl would read: $KUBECONFIG's first existing file, else ~/.kube/config; undefined when neither. */
export function kubectlKubeconfig(environment: PluginEnvironment): string | undefined {
  const list = (environment.env.KUBECONFIG ?? "").split(":").filter((p) => p !== "");
  // None of them exists: the first one, so that the error names what the user set.
  if (list.length > 0) return list.find((p) => existsSync(p)) ?? list[0];
  const home = environment.home && join(environment.home, ".kube", "config");
  return home && existsSync(home) ? home : undefined;
}

/** argv (after the plugin name) with the plugin's defaults added: `--conf`, and gc's `--kubeconfig`. */
export function withPluginDefaults(argv: readonly string[], environment: PluginEnvironment): string[] {
  const [command, ...rest] = argv;
  if (command === undefined || !CONF_COMMANDS.has(command)) return [...argv];
  const extra: string[] = [];
  if (!hasFlag(rest, "conf")) extra.push("--conf", defaultConf(environment));
  if (command === "gc" && !hasFlag(rest, "kubeconfig")) {
    const kubeconfig = kubectlKubeconfig(environment);
    if (kubeconfig) extra.push("--kubeconfig", kubeconfig);
  }
  // Before any `--`, after which everything is positional.
  const end = rest.indexOf("--");
  return end < 0 ? [command, ...rest, ...extra] : [command, ...rest.slice(0, end), ...extra, ...rest.slice(end)];
}
