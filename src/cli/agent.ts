// `kube-ipam agent [--socket PATH] [--metrics-addr HOST:PORT]`: the node agent, until SIGTERM.
import { DEFAULT_AGENT_SOCKET } from "../agent/protocol.ts";
import { runAgent } from "../agent/server.ts";
import { Logger } from "../log/logger.ts";
import { type ParsedFlags, parseAddr, UsageError } from "./flags.ts";

export const AGENT_VALUED = ["socket", "metrics-addr"] as const;

export async function agentCommand(flags: ParsedFlags): Promise<string> {
  const socket = flags.values.get("socket") ?? DEFAULT_AGENT_SOCKET;
  if (!socket.startsWith("/")) throw new UsageError(`--socket "${socket}" is not an absolute path`);
  const addr = flags.values.get("metrics-addr");
  const metrics = addr === undefined ? undefined : parseAddr(addr);
  const abort = new AbortController();
  for (const sig of ["SIGTERM", "SIGINT"] as const) process.once(sig, () => abort.abort());
  // Its own lines go to stderr (the container log); each request's line goes to the log file its
  // network config names, as the plugin's would.
  await runAgent({ socket, metrics, log: new Logger(undefined, "info"), signal: abort.signal });
  return "";
}
