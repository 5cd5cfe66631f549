// `kube-ipam controller --conf FILE --metrics-addr HOST:PORT --gc-interval D --grace D [--max-release 50%|N]
//  [--kubeconfig FILE] [--lease-ttl D] [--ui true|false] [--auth kubernetes|none]
//  [--tls-cert-file FILE --tls-private-key-file FILE]`
import { hostname } from "../lib/hostname.ts";
import { runController } from "../controller/controller.ts";
import { Logger } from "../log/logger.ts";
import { openStore } from "../store/open.ts";
import { clusterClient } from "./cluster.ts";
import { parseDuration } from "./duration.ts";
import { ENDPOINT_VALUED, endpointSecurity } from "./endpoint_flags.ts";
import { type ParsedFlags, parseAddr, UsageError } from "./flags.ts";
import { DEFAULT_GRACE_MS, parseReleaseLimit } from "./gc.ts";
import { loadConfFile } from "./load_conf.ts";

export const DEFAULT_METRICS_ADDR = "0.0.0.0:9153";

/** The flags the controller takes a value for. */
export const CONTROLLER_VALUED = ["conf", "metrics-addr", "gc-interval", "grace", "max-release", "kubeconfig", "lease-ttl", "ui", ...ENDPOINT_VALUED];

/** `--ui true|false` (`--ui=false`): the dashboard at / on --metrics-addr, on unless false. */
export function parseUiFlag(value: string | undefined): boolean {
  if (value === undefined || value === "true") return true;
  if (value === "false") return false;
  throw new UsageError(`--ui "${value}" is not "true" or "false"`);
}

export async function controllerCommand(flags: ParsedFlags): Promise<string> {
  const addr = parseAddr(flags.values.get("metrics-addr") ?? DEFAULT_METRICS_ADDR);
  const gcIntervalMs = parseDuration(flags.values.get("gc-interval") ?? "1m", "--gc-interval");
  const graceMs = flags.values.has("grace") ? parseDuration(flags.values.get("grace")!, "--grace") : DEFAULT_GRACE_MS;
  const maxRelease = parseReleaseLimit(flags.values.get("max-release"));
  const ui = parseUiFlag(flags.values.get("ui"));
  const leaseTtlSeconds = flags.values.has("lease-ttl") ? Math.max(2, Math.round(parseDuration(flags.values.get("lease-ttl")!, "--lease-ttl") / 1000)) : undefined;
  const config = loadConfFile(flags.values.get("conf"));
  const cluster = await clusterClient(config, flags.values.get("kubeconfig"));
  const log = new Logger(undefined, "info");
  const security = endpointSecurity(flags, {
    api: cluster, bind: addr.hostname, log, what: ui ? "/metrics and the dashboard" : "/metrics", noApiHint: "pass --kubeconfig FILE",
  });
  // --kubeconfig is the controller's identity for everything it asks of the API, the Kubernetes store's
  // requests included (the network config's kubeConfig names the plugin's).
  const kubeconfigFlag = flags.values.get("kubeconfig");
  const store = await openStore(config.store.kind === "kubernetes" && kubeconfigFlag ? { ...config.store, kubeConfig: kubeconfigFlag } : config.store);
  const abort = new AbortController();
  for (const sig of ["SIGTERM", "SIGINT"] as const) process.once(sig, () => abort.abort());
  try {
    await runController({
      config,
      store,
      cluster,
      ...addr,
      gcIntervalMs,
      graceMs,
      maxRelease,
      leaseTtlSeconds,
      ui,
      security,
      identity: `${process.env.POD_NAME ?? hostname()}/${process.pid}`,
      log,
      signal: abort.signal,
    });
  } finally {
    await store.close();
  }
  return "";
}
