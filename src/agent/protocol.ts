// The plugin-to-agent protocol over a unix socket: newline-delimited JSON, one exchange per connection.
//
//   plugin: {"build": B, "startedAt": S, "acceptBy": T, "env": {...CNI_*...}, "stdin": "...", "hostname": "..."}\n
//   agent:  {"accepted": true}\n                       at once, before any work
//   agent:  {"stdout": "...", "exitCode": 0 | 1}\n     what the plugin would have printed
// or
//   agent:  {"refused": "why"}\n                       e.g. another build (a rolling upgrade)
//
// The early "accepted" line is what tells a live agent from a socket that only the kernel answers (a
// stopped or hung agent's backlog accepts connections too): without it within the forwarding budget,
// the plugin runs the request itself. And since such a plugin has moved on, an agent that reads a
// request only after its `acceptBy` (a frozen agent resumed) drops it unanswered: run late, an ADD
// could allocate to a container that the plugin's own run already set up and the runtime has since
// deleted. JSON.stringify never emits a raw newline, so a line is a message.
//
// The client is the native forwarder (src/forwarder/forwarder.c); it is compiled with the constants below
// (scripts/forwarder_header.ts), so this file is the protocol's one definition. Keep it free of imports.

/** The environment variables a plugin passes on: what runCni reads, nothing else. */
export const FORWARDED_ENV = [
  "CNI_COMMAND", "CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME", "CNI_ARGS", "CNI_PATH", "KUBE_IPAM_NODE_NAME",
] as const;

/** The verbs the agent serves. VERSION needs nothing the agent keeps warm. */
export const FORWARDED_VERBS: ReadonlySet<string> = new Set(["ADD", "DEL", "CHECK", "STATUS", "GC"]);

/**
 * How long a live agent may take to say "accepted": it does so before any work, but on a loaded 2-core
 * node its one thread may be busy with other requests' synchronous steps (measured: at 10 concurrent ADDs
 * with the machine's load near 20, 1 to 5% of requests waited more than 200 ms). A hung agent costs each
 * request this much before the plugin runs it itself.
 */
export const ACCEPT_BUDGET_MS = 500;
/**
 * How much longer than the invocation's budget the plugin waits for an agent that accepted: the agent keeps
 * the same budget (from the plugin's start) and answers with a time-out error by then.
 */
export const ANSWER_SLACK_MS = 1000;

/**
 * Config fields holding paths. A relative one is relative to the runtime's working directory, which the agent
 * does not share, so such a request is not forwarded.
 */
export const PATH_FIELDS = ["dataDir", "logFile", "kubeConfig", "resolvConf"] as const;
export const ETCD_PATH_FIELDS = ["etcdCertFile", "etcdKeyFile", "etcdTrustedCAFileFile", "etcdTrustedCAFile"] as const;

export const DEFAULT_AGENT_SOCKET = "/run/kube-ipam/agent.sock";
/** ipam.timeoutSeconds when the config does not set it (config/ipam_config.ts validates it). */
export const DEFAULT_TIMEOUT_SECONDS = 15;

export interface AgentRequest {
  /** The plugin's build; the agent serves only its own. */
  readonly build: string;
  /** Epoch milliseconds when the plugin started: the invocation's budget (ipam.timeoutSeconds) runs from it. */
  readonly startedAt: number;
  /** Epoch milliseconds after which the plugin no longer waits for "accepted". */
  readonly acceptBy: number;
  readonly env: Readonly<Record<string, string>>;
  readonly stdin: string;
  /** The plugin's host name, for a config without ipam.nodeName and KUBE_IPAM_NODE_NAME. */
  readonly hostname: string;
}

export type AgentReply =
  | { readonly accepted: true }
  | { readonly refused: string }
  | { readonly stdout: string; readonly exitCode: 0 | 1 };

/** Decodes one request line; undefined when it is not one. */
export function decodeRequest(line: string): AgentRequest | undefined {
  const r = parseLine(line) as Partial<AgentRequest> | undefined;
  if (!r || typeof r.build !== "string" || typeof r.acceptBy !== "number" || typeof r.startedAt !== "number" || typeof r.stdin !== "string" ||
    typeof r.hostname !== "string" || !r.env || typeof r.env !== "object") return undefined;
  const env: Record<string, string> = {};
  for (const k of FORWARDED_ENV) {
    const x = (r.env as Record<string, unknown>)[k];
    if (typeof x === "string") env[k] = x;
  }
  return { build: r.build, startedAt: r.startedAt, acceptBy: r.acceptBy, env, stdin: r.stdin, hostname: r.hostname };
}

/** Decodes one reply line; undefined when it is not one. */
export function decodeReply(line: string): AgentReply | undefined {
  const r = parseLine(line) as Record<string, unknown> | undefined;
  if (!r) return undefined;
  if (r.accepted === true) return { accepted: true };
  if (typeof r.refused === "string") return { refused: r.refused };
  if (typeof r.stdout === "string" && (r.exitCode === 0 || r.exitCode === 1)) return { stdout: r.stdout, exitCode: r.exitCode };
  return undefined;
}

/** The JSON object on one line; undefined for anything else. */
function parseLine(line: string): object | undefined {
  try {
    const v: unknown = JSON.parse(line);
    return typeof v === "object" && v !== null ? v : undefined;
  } catch {
    return undefined;
  }
}
