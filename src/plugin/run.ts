// One CNI invocation: environment and stdin in, one JSON document on stdout, exit status out.
import { hostname } from "../lib/hostname.ts";
import { readFileSync } from "node:fs";
import { type CniArgs, parseCniArgs } from "../cni/args.ts";
import { type CniEnv, readCniEnv } from "../cni/env.ts";
import { type Dns, resultToJSON } from "../cni/result.ts";
import { checkConfigVersion, type CniVersion, CURRENT_VERSION, isSupportedVersion, requireVersionFor,
  SUPPORTED_VERSIONS } from "../cni/version.ts";
import { ConfigError } from "../config/errors.ts";
import { DEFAULT_LOG_FILE, type IpamConfig, loadIpamConfig } from "../config/ipam_config.ts";
import { decodeNetworkConfig } from "../config/network_file.ts";
import { parseResolvConf } from "../config/resolv_conf.ts";
import { add, type PodRef } from "../ipam/add.ts";
import { podPolicy } from "../ipam/pod_policy.ts";
import { check } from "../ipam/check.ts";
import { del } from "../ipam/del.ts";
import { toCniError } from "../ipam/error_map.ts";
import { gcAttachments } from "../ipam/gc.ts";
import { status } from "../ipam/status.ts";
import { rangeSetKey } from "../ip/range_set.ts";
import { Logger } from "../log/logger.ts";
import { CniError, ErrorCode, errorToJSON } from "../cni/errors.ts";
import { withDeadline } from "../lib/deadline.ts";
import { failpoint } from "../lib/failpoint.ts";
import { kubeConfigPath } from "./kube_path.ts";
import { oneShot, type Resources } from "./resources.ts";

export interface CniOutcome {
  readonly stdout: string;
  readonly exitCode: 0 | 1;
}

/** Who runs the request and with what; logged with each request. */
export interface RunContext {
  readonly servedBy: "plugin" | "agent";
  /** Why the agent did not serve a request the plugin ran itself. */
  readonly agentFallback?: string;
  readonly resources?: Resources;
  /** The host name, when not this process's (the agent runs a plugin's request). */
  readonly hostname?: () => string;
  /** When the invocation began (epoch ms): the plugin's start, also for a request the agent runs. */
  readonly startedAt?: number;
}

function readDns(config: IpamConfig): Dns {
  if (!config.resolvConf) return {};
  try {
    return parseResolvConf(readFileSync(config.resolvConf, "utf8"));
  } catch (e) {
    throw new ConfigError("ipam.resolvConf", `cannot read "${config.resolvConf}": ${(e as Error).message}`, { cause: e });
  }
}

/** The log file named by a config we could not fully load, so that its failure is logged where expected. */
function rawLogFile(raw: unknown): string {
  const ipam = (raw as { ipam?: { logFile?: unknown } } | undefined)?.ipam;
  return typeof ipam?.logFile === "string" && ipam.logFile !== "" ? ipam.logFile : DEFAULT_LOG_FILE;
}

/** The pod's policy and a liveness check, when a kubeconfig is configured and CNI_ARGS names a pod. */
async function kubernetesView(resources: Resources, path: string | undefined, ref: PodRef, ifName: string, node: string) {
  if (!path) return undefined;
  const kube = await resources.kube(path);
  const pod = await kube.pod(ref, node);
  return {
    pod: { ...ref, uid: pod.metadata.uid },
    policy: podPolicy(pod, ifName),
    liveness: kube.liveness,
  };
}

async function execute(env: CniEnv, config: IpamConfig, log: Logger, args: CniArgs | undefined, resources: Resources): Promise<unknown> {
  const { store, done } = await resources.store(config.store);
  try {
    const net = store.network(config.network);
    const owner = { containerID: env.containerID, ifName: env.ifName };
    switch (env.command) {
      case "ADD": {
        if (!args) throw new Error("unreachable: ADD parses CNI_ARGS first");
        const dns = readDns(config);
        const ref: PodRef = { namespace: args.podNamespace, name: args.podName, uid: args.podUID };
        const kubePath = ref.namespace && ref.name ? kubeConfigPath(config) : undefined;
        if (ref.name && !kubePath) log.debug("no kubeconfig: pod annotations are not read", { pod: `${ref.namespace}/${ref.name}` });
        const [k8s, snapshot] = await Promise.all([
          kubernetesView(resources, kubePath, ref, env.ifName, config.nodeName),
          net.prepareAdd(owner, config.nodeName, config.rangeSets.map(rangeSetKey)),
        ]);
        failpoint("add.prepared");
        const result = await add(net, {
          config,
          owner,
          pod: k8s?.pod ?? ref,
          dns,
          now: new Date(),
          policy: k8s?.policy,
          liveness: k8s?.liveness,
          snapshot,
        });
        return resultToJSON(result, config.cniVersion);
      }
      case "DEL": {
        const released = await del(net, owner);
        log.debug("released", { ips: released.map((a) => a.ip) });
        return undefined;
      }
      case "CHECK":
        await check(net, config, owner);
        return undefined;
      case "GC": {
        if (!config.validAttachments) {
          // Without the list every allocation of this node would look stale: refuse rather than guess.
          throw new ConfigError("cni.dev/valid-attachments", "GC needs the list of valid attachments (CNI 1.1.0)");
        }
        const released = await gcAttachments(net, config.nodeName, config.validAttachments);
        if (released.length) log.info("gc released", { ips: released.map((a) => a.ip) });
        return undefined;
      }
      case "STATUS":
        await status(store, net, config);
        return undefined;
      case "VERSION":
        throw new Error("unreachable: VERSION is answered before the config is loaded");
    }
  } finally {
    await done();
  }
}

export async function runCni(processEnv: Record<string, string | undefined>, stdin: () => Promise<string>,
  context: RunContext = { servedBy: "plugin" }): Promise<CniOutcome> {
  const started = performance.now();
  let version: CniVersion = CURRENT_VERSION;
  let log: Logger | undefined;
  let env: CniEnv | undefined;
  try {
    env = readCniEnv(processEnv);
    const text = await stdin();
    if (env.command === "VERSION") {
      return { stdout: JSON.stringify({ cniVersion: CURRENT_VERSION, supportedVersions: SUPPORTED_VERSIONS }), exitCode: 0 };
    }
    const raw = decodeNetworkConfig(text);
    log = new Logger(rawLogFile(raw));
    version = checkConfigVersion((raw as { cniVersion?: unknown })?.cniVersion);
    requireVersionFor(env.command, version);
    // CNI_ARGS matter to ADD only; DEL and the others must not fail on an argument they do not use.
    const args = env.command === "ADD" ? parseCniArgs(env.args) : undefined;
    const config = loadIpamConfig(raw, {
      argsIPs: args?.ips ?? [],
      envNodeName: processEnv.KUBE_IPAM_NODE_NAME,
      hostname: context.hostname ?? hostname,
    });
    log = new Logger(config.logFile, config.logLevel);
    const out = await withinBudget(config, context, () => execute(env!, config, log!, args, context.resources ?? oneShot));
    const ips = (out as { ips?: unknown } | undefined)?.ips;
    log.info(`${env.command} ok`, entry(env, config.network, started, context, { outcome: "ok", ips }));
    return { stdout: out === undefined ? "" : JSON.stringify(out), exitCode: 0 };
  } catch (e) {
    const err = toCniError(e);
    (log ?? new Logger(DEFAULT_LOG_FILE)).error(`${env?.command ?? processEnv.CNI_COMMAND} failed`,
      entry(env, undefined, started, context, { outcome: "error", code: err.code, error: err.message, details: err.details || undefined }));
    const out = errorToJSON(err, isSupportedVersion(version) ? version : CURRENT_VERSION);
    return { stdout: JSON.stringify(out), exitCode: 1 };
  }
}

/**
 * Runs `work` within the invocation's budget (ipam.timeoutSeconds from `context.startedAt`): every store and
 * API call under it is bounded by what is left (lib/deadline.ts), and should one still be running at the
 * deadline, the answer is code 11 naming where the state and the API are, and the process moves on.
 */
async function withinBudget<T>(config: IpamConfig, context: RunContext, work: () => Promise<T>): Promise<T> {
  const budgetMs = config.timeoutSeconds * 1000;
  const deadline = (context.startedAt ?? Date.now()) + budgetMs;
  const late = () => new CniError(ErrorCode.TryAgainLater,
    `kube-ipam did not finish within ipam.timeoutSeconds (${config.timeoutSeconds} s)` +
      (context.agentFallback ? ` (${context.agentFallback})` : "") + `: waiting for ${where(config)}`);
  if (Date.now() >= deadline) throw late();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const backstop = new Promise<never>((_, reject) => {
    // A little after the deadline: the calls' own time-outs, which name the endpoint, come first.
    timer = setTimeout(() => reject(late()), deadline - Date.now() + 250);
  });
  try {
    return await Promise.race([withDeadline(deadline, work), backstop]);
  } finally {
    clearTimeout(timer);
  }
}

/** Where an invocation waits: the store, and the Kubernetes API when a kubeconfig is configured. */
function where(config: IpamConfig): string {
  const s = config.store;
  const store = s.kind === "etcd" ? `etcd at ${s.endpoints.map((e) => `"${e}"`).join(", ")}`
    : s.kind === "kubernetes" ? `the Kubernetes API${s.kubeConfig ? ` of "${s.kubeConfig}"` : ""}`
    : `the embedded store "${s.dataDir}"`;
  const kube = kubeConfigPath(config);
  return kube ? `${store} or the Kubernetes API of "${kube}"` : store;
}

function entry(env: CniEnv | undefined, network: string | undefined, started: number, context: RunContext,
  extra: Record<string, unknown>) {
  return {
    command: env?.command,
    containerID: env?.containerID || undefined,
    ifName: env?.ifName || undefined,
    network,
    durationMs: Math.round((performance.now() - started) * 100) / 100,
    servedBy: context.servedBy,
    agentFallback: context.agentFallback,
    ...extra,
  };
}

