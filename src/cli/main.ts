// `kube-ipam COMMAND ...` when not run by a container runtime, or `kubectl ipam COMMAND ...` when run as
// kubectl-ipam (kubectl_plugin.ts). Exit status: 0 done, 1 failed, 2 usage.
import { homedir } from "node:os";
import { CniError } from "../cni/errors.ts";
import { toCniError } from "../ipam/error_map.ts";
import { VERSION } from "../version.ts";
import { EXAMPLE_KINDS, exampleConfig } from "./example_config.ts";
import { CNI_CONF_DIR, CONF_COMMANDS, programName, type ProgramName, withPluginDefaults } from "./kubectl_plugin.ts";
import { NotFoundError, parseFlags, RefusedError, UsageError } from "./flags.ts";
import { AGENT_VALUED, agentCommand } from "./agent.ts";
import { CONTROLLER_VALUED, controllerCommand } from "./controller.ts";
import { GC_VALUED, gcCommand } from "./gc.ts";
import { INSTALL_CNI_SWITCHES, INSTALL_CNI_VALUED, installCniCommand } from "./install_cni.ts";
import { lsCommand } from "./ls.ts";
import { MIGRATE_VALUED, migrateCommand } from "./migrate.ts";
import { releaseCommand } from "./release.ts";
import { reserveCommand, reservedCommand, unreserveCommand } from "./reserve.ts";
import { showCommand } from "./show.ts";
import { usageCommand } from "./usage.ts";

interface CommandHelp {
  /** After the program name; further lines continue the usage, aligned under its first argument. */
  readonly usage: readonly string[];
  readonly about: readonly string[];
  /** Listed in `kubectl ipam help` too (the operator's commands); the others run a node or a cluster. */
  readonly operator?: true;
}

const COMMANDS: readonly CommandHelp[] = [
  { usage: ["ls --conf FILE [-o table|json]"], about: ["addresses held in the network of FILE"], operator: true },
  { usage: ["show ADDR --conf FILE [-o table|json]"], about: ["who holds ADDR, since when, reserved by what"], operator: true },
  { usage: ["usage --conf FILE [-o table|json]"], about: ["size, used, reserved and free addresses per range"], operator: true },
  { usage: ["release ADDR --conf FILE --yes"], about: ["take ADDR from its holder (force)"], operator: true },
  {
    usage: ["gc --conf FILE [--dry-run] [--grace 5m] [--max-release 50%|N] [--kubeconfig FILE]", "[-o table|json]"],
    about: ["release addresses whose pod is gone (every network);", "refuses the run beyond --max-release"],
    operator: true,
  },
  {
    usage: ["controller --conf FILE [--metrics-addr 0.0.0.0:9153] [--gc-interval 1m] [--grace 5m]",
      "[--max-release 50%|N] [--kubeconfig FILE] [--lease-ttl 5s] [--ui true|false]"],
    about: ["leader-elected gc and Prometheus metrics (runs until SIGTERM)"],
  },
  {
    usage: ["agent [--socket /run/kube-ipam/agent.sock] [--metrics-addr HOST:PORT]"],
    about: ["the node agent: serves this node's plugins' requests", "with warm connections and a pod cache (until SIGTERM)"],
  },
  {
    usage: ["migrate --from v0.2 --conf FILE [--dry-run] [-o table|json]",
      "migrate --from etcd|kubernetes|file --to etcd|kubernetes|file --conf FILE [--dry-run] [--no-freeze] [-o table|json]"],
    about: ["import kube-ipam v0.2's allocations of the network", "(docs/operations.md: upgrading from v0.2),",
      "or move them to another store (docs/kubernetes-store.md)"],
    operator: true,
  },
  { usage: ["reserve NAME ADDR|A-B|CIDR... --conf FILE"], about: ["never hand these addresses out (any network)"], operator: true },
  { usage: ["unreserve NAME --conf FILE"], about: ["remove a reservation"], operator: true },
  { usage: ["reserved --conf FILE [-o table|json]"], about: ["list reservations"], operator: true },
  { usage: [`example-config [${EXAMPLE_KINDS.join("|")}]`], about: ["print a network config to start from"], operator: true },
  {
    usage: ["install-cni --bin-dir DIR --conf-dir DIR --conf FILE [--name FILENAME]",
      "[--sleep | --agent [--socket PATH] [--metrics-addr HOST:PORT]]"],
    about: ["install kube-ipam and kube-ipam-core into DIR and FILE", "into the CNI config directory (with KUBE_IPAM_NODE_NAME",
      "as ipam.nodeName), atomically; --sleep then waits for", "SIGTERM, --agent runs the node agent until then"],
  },
  { usage: ["version"], about: ["print the version"], operator: true },
  { usage: ["help"], about: ["this text"], operator: true },
];

/** The column descriptions start at. */
const ABOUT_COLUMN = 45;

function renderCommand(program: ProgramName, c: CommandHelp): string[] {
  const [first, ...more] = c.usage;
  const word = first!.split(" ")[0]!;
  // As a kubectl plugin --conf has a default (kubectl_plugin.ts).
  const usage = program === "kubectl ipam" && CONF_COMMANDS.has(word) ? first!.replace("--conf FILE", "[--conf FILE]") : first!;
  const lines = [`  ${program} ${usage}`, ...more.map((m) => `${" ".repeat(program.length + word.length + 4)}${m}`)];
  const about = c.about.map((a) => `${" ".repeat(ABOUT_COLUMN)}${a}`);
  if (lines.length === 1 && lines[0]!.length + 3 <= ABOUT_COLUMN) return [lines[0]!.padEnd(ABOUT_COLUMN) + c.about[0], ...about.slice(1)];
  return [...lines, ...about];
}

const FILE_NOTE = "FILE is a CNI network config (.conf or .conflist; - or /dev/stdin reads standard input, a pipe or a socket).";

/** `help`: the binary's usage, or the kubectl plugin's. */
export function helpText(program: ProgramName): string {
  const commands = COMMANDS.filter((c) => program === "kube-ipam" || c.operator).flatMap((c) => renderCommand(program, c));
  if (program === "kube-ipam") {
    return `kube-ipam ${VERSION}: cluster-wide IP address management for Kubernetes CNI plugins

As a CNI IPAM plugin, the container runtime runs it with CNI_COMMAND set
("ipam": {"type": "kube-ipam", ...} in a network config under /etc/cni/net.d).

Commands:
${commands.join("\n")}

${FILE_NOTE}
`;
  }
  return `kubectl ipam: kube-ipam ${VERSION} as a kubectl plugin, cluster-wide IP address management

Commands:
${commands.join("\n")}

${FILE_NOTE}
Without --conf: $KUBE_IPAM_CONF, else the one kube-ipam config in ${CNI_CONF_DIR} (what install-cni installed).
gc reads the cluster kubectl reads: --kubeconfig, else the first file of $KUBECONFIG, else
~/.kube/config (its current context). "kube-ipam help" lists the node and cluster commands
(controller, agent, install-cni).
`;
}

export const HELP = helpText("kube-ipam");

export interface CliOutcome {
  readonly stdout: string;
  readonly stderr: string;
  readonly exitCode: number;
}

async function dispatch(program: ProgramName, command: string, rest: readonly string[]): Promise<string> {
  switch (command) {
    case "version":
    case "-version":
    case "--version":
      return `kube-ipam ${VERSION}\n`;
    case "help":
    case "-help":
    case "--help":
    case "-h":
      return helpText(program);
    case "example-config":
    case "-outputconf":
      return exampleConfig(parseFlags(rest, []).positional[0]);
    case "install-cni":
      return await installCniCommand(parseFlags(rest, INSTALL_CNI_VALUED, INSTALL_CNI_SWITCHES));
    case "ls":
      return await lsCommand(parseFlags(rest, ["conf", "o", "output"]));
    case "show":
      return await showCommand(parseFlags(rest, ["conf", "o", "output"]));
    case "usage":
      return await usageCommand(parseFlags(rest, ["conf", "o", "output"]));
    case "release":
      return await releaseCommand(parseFlags(rest, ["conf"], ["yes"]));
    case "controller":
      return await controllerCommand(parseFlags(rest, CONTROLLER_VALUED));
    case "agent":
      return await agentCommand(parseFlags(rest, AGENT_VALUED));
    case "gc":
      return await gcCommand(parseFlags(rest, GC_VALUED, ["dry-run"]));
    case "migrate":
      return await migrateCommand(parseFlags(rest, MIGRATE_VALUED, ["dry-run", "no-freeze"]));
    case "reserve":
      return await reserveCommand(parseFlags(rest, ["conf"]));
    case "unreserve":
      return await unreserveCommand(parseFlags(rest, ["conf"]));
    case "reserved":
      return await reservedCommand(parseFlags(rest, ["conf", "o", "output"]));
    default:
      throw new UsageError(`Unknown command "${command}"`);
  }
}

/**
 * Runs `kube-ipam COMMAND ...`; `argv0`, how the executable was invoked, makes it `kubectl ipam ...` when
 * that is kubectl-ipam (kubectl_plugin.ts).
 */
export async function runCli(argv: readonly string[], argv0: string = process.argv0): Promise<CliOutcome> {
  const program = programName(argv0);
  const [command] = argv;
  if (!command) return { stdout: "", stderr: helpText(program), exitCode: 2 };
  try {
    const args = program === "kubectl ipam" ? withPluginDefaults(argv, { env: process.env, home: homedir() }) : argv;
    return { stdout: await dispatch(program, command, args.slice(1)), stderr: "", exitCode: 0 };
  } catch (e) {
    if (e instanceof UsageError) {
      return { stdout: "", stderr: `${program}: ${e.message}\nRun "${program} help" for usage.\n`, exitCode: 2 };
    }
    if (e instanceof RefusedError) return { stdout: e.stdout, stderr: `${program}: ${e.message}\n`, exitCode: 1 };
    if (e instanceof NotFoundError) return { stdout: "", stderr: `${program}: ${e.message}\n`, exitCode: 1 };
    const err: CniError = toCniError(e);
    return { stdout: "", stderr: `${program}: ${err.message}\n`, exitCode: 1 };
  }
}
