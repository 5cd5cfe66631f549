// `kube-ipam COMMAND ...` when not run by a container runtime. Exit status: 0 done, 1 failed, 2 usage.
import { CniError } from "../cni/errors.ts";
import { toCniError } from "../ipam/error_map.ts";
import { VERSION } from "../version.ts";
import { EXAMPLE_KINDS, exampleConfig } from "./example_config.ts";
import { NotFoundError, parseFlags, RefusedError, UsageError } from "./flags.ts";
import { AGENT_VALUED, agentCommand } from "./agent.ts";
import { CONTROLLER_VALUED, controllerCommand } from "./controller.ts";
import { GC_VALUED, gcCommand } from "./gc.ts";
import { INSTALL_CNI_SWITCHES, INSTALL_CNI_VALUED, installCniCommand } from "./install_cni.ts";
import { lsCommand } from "./ls.ts";
import { releaseCommand } from "./release.ts";
import { reserveCommand, reservedCommand, unreserveCommand } from "./reserve.ts";
import { showCommand } from "./show.ts";
import { usageCommand } from "./usage.ts";

export const HELP = `kube-ipam ${VERSION}: cluster-wide IP address management for Kubernetes CNI plugins

As a CNI IPAM plugin, the container runtime runs it with CNI_COMMAND set
("ipam": {"type": "kube-ipam", ...} in a network config under /etc/cni/net.d).

Commands:
  kube-ipam ls --conf FILE [-o table|json]   addresses held in the network of FILE
  kube-ipam show ADDR --conf FILE [-o table|json]
                                             who holds ADDR, since when, reserved by what
  kube-ipam usage --conf FILE [-o table|json]
                                             size, used, reserved and free addresses per range
  kube-ipam release ADDR --conf FILE --yes   take ADDR from its holder (force)
  kube-ipam gc --conf FILE [--dry-run] [--grace 5m] [--max-release 50%|N] [--kubeconfig FILE]
               [-o table|json]
                                             release addresses whose pod is gone (every network);
                                             refuses the run beyond --max-release
  kube-ipam controller --conf FILE [--metrics-addr 0.0.0.0:9153] [--gc-interval 1m] [--grace 5m]
                       [--max-release 50%|N] [--kubeconfig FILE] [--lease-ttl 5s]
                                             leader-elected gc and Prometheus metrics (runs until SIGTERM)
  kube-ipam agent [--socket /run/kube-ipam/agent.sock] [--metrics-addr HOST:PORT]
                                             the node agent: serves this node's plugins' requests
                                             with warm connections and a pod cache (until SIGTERM)
  kube-ipam reserve NAME ADDR|A-B|CIDR... --conf FILE
                                             never hand these addresses out (any network)
  kube-ipam unreserve NAME --conf FILE       remove a reservation
  kube-ipam reserved --conf FILE [-o table|json]
                                             list reservations
  kube-ipam example-config [${EXAMPLE_KINDS.join("|")}]
                                             print a network config to start from
  kube-ipam install-cni --bin-dir DIR --conf-dir DIR --conf FILE [--name FILENAME]
                       [--sleep | --agent [--socket PATH] [--metrics-addr HOST:PORT]]
                                             install this binary as DIR/kube-ipam and FILE into the
                                             CNI config directory (with KUBE_IPAM_NODE_NAME as
                                             ipam.nodeName), atomically; --sleep then waits for SIGTERM,
                                             --agent runs the node agent until then
  kube-ipam version                          print the version
  kube-ipam help                             this text

FILE is a CNI network config (.conf or .conflist; - or /dev/stdin reads standard input, a pipe or a socket).
`;

export interface CliOutcome {
  readonly stdout: string;
  readonly stderr: string;
  readonly exitCode: number;
}

async function dispatch(command: string, rest: readonly string[]): Promise<string> {
  switch (command) {
    case "version":
    case "-version":
    case "--version":
      return `kube-ipam ${VERSION}\n`;
    case "help":
    case "-help":
    case "--help":
    case "-h":
      return HELP;
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

export async function runCli(argv: readonly string[]): Promise<CliOutcome> {
  const [command, ...rest] = argv;
  if (!command) return { stdout: "", stderr: HELP, exitCode: 2 };
  try {
    return { stdout: await dispatch(command, rest), stderr: "", exitCode: 0 };
  } catch (e) {
    if (e instanceof UsageError) {
      return { stdout: "", stderr: `kube-ipam: ${e.message}\nRun "kube-ipam help" for usage.\n`, exitCode: 2 };
    }
    if (e instanceof RefusedError) return { stdout: e.stdout, stderr: `kube-ipam: ${e.message}\n`, exitCode: 1 };
    if (e instanceof NotFoundError) return { stdout: "", stderr: `kube-ipam: ${e.message}\n`, exitCode: 1 };
    const err: CniError = toCniError(e);
    return { stdout: "", stderr: `kube-ipam: ${err.message}\n`, exitCode: 1 };
  }
}
