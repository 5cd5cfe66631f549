// `kube-ipam agent [--socket PATH] [--metrics-addr HOST:PORT] [--kubeconfig FILE] [--auth kubernetes|none]
//  [--tls-cert-file FILE --tls-private-key-file FILE]`: the node agent, until SIGTERM.
//
// The agent's own Kubernetes identity (--kubeconfig, else its pod's service account) reads the node's pods
// for its cache and checks the tokens of requests to /metrics. Without one it reads each ADD's pod with the
// network config's kubeconfig, as the plugin would, and /metrics needs --auth none.
import { existsSync } from "node:fs";
import { DEFAULT_AGENT_SOCKET } from "../agent/protocol.ts";
import { runAgent } from "../agent/server.ts";
import { KubeClient } from "../k8s/client.ts";
import { inClusterConfig, loadKubeConfig, SA_DIR } from "../k8s/kubeconfig.ts";
import { Logger } from "../log/logger.ts";
import { ENDPOINT_VALUED, endpointSecurity } from "./endpoint_flags.ts";
import { type ParsedFlags, parseAddr, UsageError } from "./flags.ts";

export const AGENT_VALUED = ["socket", "metrics-addr", "kubeconfig", ...ENDPOINT_VALUED] as const;

async function agentIdentity(kubeconfig: string | undefined): Promise<KubeClient | undefined> {
  if (kubeconfig) return new KubeClient(await loadKubeConfig(kubeconfig), { timeoutMs: 3000 });
  if (process.env.KUBERNETES_SERVICE_HOST && existsSync(`${SA_DIR}/token`)) return new KubeClient(inClusterConfig(), { timeoutMs: 3000 });
  return undefined;
}

export async function agentCommand(flags: ParsedFlags): Promise<string> {
  const socket = flags.values.get("socket") ?? DEFAULT_AGENT_SOCKET;
  if (!socket.startsWith("/")) throw new UsageError(`--socket "${socket}" is not an absolute path`);
  const addr = flags.values.get("metrics-addr");
  const metrics = addr === undefined ? undefined : parseAddr(addr);
  const stray = ENDPOINT_VALUED.find((f) => flags.values.has(f));
  if (!metrics && stray) throw new UsageError(`--${stray} is a flag of the agent's /metrics endpoint: add --metrics-addr HOST:PORT`);
  // Its own lines go to stderr (the container log); each request's line goes to the log file its
  // network config names, as the plugin's would.
  const log = new Logger(undefined, "info");
  const identity = await agentIdentity(flags.values.get("kubeconfig"));
  const security = metrics && endpointSecurity(flags, {
    api: identity, bind: metrics.hostname, log, what: "/metrics",
    noApiHint: "pass --kubeconfig FILE (the agent's own identity) or run the agent in a pod with a service account token",
  });
  const abort = new AbortController();
  for (const sig of ["SIGTERM", "SIGINT"] as const) process.once(sig, () => abort.abort());
  await runAgent({
    socket, log, signal: abort.signal,
    ...(metrics && security ? { metrics: { ...metrics, security } } : {}),
    ...(identity ? { podClient: identity } : {}),
  });
  return "";
}
