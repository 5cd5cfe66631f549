// The plugin's fast path: hand the request to the node agent and print its answer. It runs before
// anything else is loaded, so it imports only the protocol (no imports of its own), the failpoint hook
// (empty in a release build) and the host name from procfs (node:fs, which reading stdin loads anyway). Whenever the agent cannot serve (no socket, refused, silent,
// another build, dead before answering) it says why and the plugin runs the request itself.
import { hostname } from "../lib/hostname.ts";
import {
  type AgentRequest, DEFAULT_AGENT_SOCKET, DEFAULT_TIMEOUT_SECONDS, decodeReply, FORWARDED_ENV, FORWARDED_VERBS,
} from "./protocol.ts";
import { failpoint } from "../lib/failpoint.ts";

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

export type Forwarded =
  | { readonly served: true; readonly stdout: string; readonly exitCode: 0 | 1 }
  /**
   * `reason` is undefined when forwarding was not attempted (disabled, VERSION, a config the plugin must
   * judge). `budgetSpent`: the agent accepted and the invocation's budget ran out waiting for it.
   */
  | { readonly served: false; readonly reason?: string; readonly budgetSpent?: boolean };

/** Where to forward, and the invocation's budget. */
export interface ForwardTarget {
  readonly socket: string;
  readonly timeoutMs: number;
}

// Paths in the config are relative to the runtime's working directory, which the agent does not share.
const PATH_FIELDS = ["dataDir", "logFile", "kubeConfig", "resolvConf"] as const;
const ETCD_PATH_FIELDS = ["etcdCertFile", "etcdKeyFile", "etcdTrustedCAFileFile", "etcdTrustedCAFile"] as const;

function relativePath(obj: Record<string, unknown> | undefined, keys: readonly string[]): boolean {
  return !!obj && keys.some((k) => typeof obj[k] === "string" && obj[k] !== "" && !(obj[k] as string).startsWith("/"));
}

/** The socket to forward to and the budget, or undefined when this request is the plugin's to run. */
export function agentTargetFor(command: string | undefined, stdin: string): ForwardTarget | undefined {
  if (!command || !FORWARDED_VERBS.has(command)) return undefined;
  let conf: { ipam?: Record<string, unknown> } | null;
  try {
    conf = JSON.parse(stdin);
  } catch {
    return undefined; // the plugin words the decode error
  }
  const ipam = conf && typeof conf === "object" && conf.ipam && typeof conf.ipam === "object" ? conf.ipam : undefined;
  if (!ipam) return undefined;
  const socket = ipam.agentSocket === undefined ? DEFAULT_AGENT_SOCKET : ipam.agentSocket;
  if (typeof socket !== "string" || !socket.startsWith("/")) return undefined; // "" disables; others are the config's error
  const etcd = ipam.etcdConfig && typeof ipam.etcdConfig === "object" ? ipam.etcdConfig as Record<string, unknown> : undefined;
  if (relativePath(ipam, PATH_FIELDS) || relativePath(etcd, ETCD_PATH_FIELDS)) return undefined;
  const t = ipam.timeoutSeconds;
  // An invalid value is the config's error to report, by whoever runs the request.
  const seconds = typeof t === "number" && t > 0 && Number.isFinite(t) ? t : DEFAULT_TIMEOUT_SECONDS;
  return { socket, timeoutMs: seconds * 1000 };
}

/**
 * Sends the request to the agent and waits for "accepted" (ACCEPT_BUDGET_MS) and then for its answer (until
 * the invocation's budget from `startedAt` has run out, plus ANSWER_SLACK_MS).
 */
export function forward({ socket, timeoutMs }: ForwardTarget, build: string, startedAt: number,
  env: Record<string, string | undefined>, stdin: string): Promise<Forwarded> {
  const picked: Record<string, string> = {};
  for (const k of FORWARDED_ENV) if (env[k] !== undefined) picked[k] = env[k]!;
  const acceptMs = ACCEPT_BUDGET_MS;
  const request: AgentRequest = { build, startedAt, acceptBy: Date.now() + acceptMs, env: picked, stdin, hostname: hostname() };
  const line = `${JSON.stringify(request)}\n`;

  return new Promise<Forwarded>((resolve) => {
    let buffered = "";
    let accepted = false;
    let done = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let conn: { end(): void } | undefined;
    const finish = (f: Forwarded) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      conn?.end();
      resolve(f);
    };
    const fallBack = (reason: string, budgetSpent = false) => finish({ served: false, reason, budgetSpent });
    timer = setTimeout(() => fallBack(`agent at "${socket}" did not accept within ${acceptMs} ms`), acceptMs);

    Bun.connect({
      unix: socket,
      socket: {
        open(s) {
          conn = s;
          if (done) {
            s.end();
          } else {
            s.write(line);
            failpoint("plugin.forwarded");
          }
        },
        data(_s, chunk) {
          buffered += chunk.toString();
          for (let nl = buffered.indexOf("\n"); nl >= 0 && !done; nl = buffered.indexOf("\n")) {
            const reply = decodeReply(buffered.slice(0, nl));
            buffered = buffered.slice(nl + 1);
            if (!reply) return fallBack(`agent at "${socket}" sent a message that is not the protocol`);
            if ("refused" in reply) return fallBack(`agent at "${socket}" refused: ${reply.refused}`);
            if ("accepted" in reply) {
              accepted = true;
              clearTimeout(timer);
              timer = setTimeout(() => fallBack(`the node agent at "${socket}" accepted the request but did not answer`, true),
                Math.max(0, startedAt + timeoutMs - Date.now()) + ANSWER_SLACK_MS);
              continue;
            }
            return finish({ served: true, stdout: reply.stdout, exitCode: reply.exitCode });
          }
        },
        close() {
          fallBack(`agent at "${socket}" closed the connection ${accepted ? "before answering" : "without accepting"}`);
        },
        error(_s, err) {
          fallBack(`agent at "${socket}": ${err.message}`);
        },
      },
    }).catch((err: { code?: string; message?: string }) => {
      fallBack(`agent at "${socket}": ${err.code === "ENOENT" ? "no socket" : err.code === "ECONNREFUSED" ? "connection refused"
        : `${err.message ?? String(err)}${err.code ? ` (${err.code})` : ""}`}`);
    });
  });
}
