// The node agent: serves plugins' CNI requests on a unix socket by running the very function the plugin
// runs (plugin/run.ts runCni) with warm resources, and answers with what the plugin would have printed.
// It is an accelerator, never a dependency: a plugin that cannot reach it runs the request itself.
import { chmodSync, existsSync, lstatSync, mkdirSync, unlinkSync } from "node:fs";
import type { Socket } from "bun";
import { BUILD } from "../build_info.ts";
import { Registry } from "../controller/metrics.ts";
import { type EndpointSecurity, serveEndpoint } from "../http/endpoint.ts";
import type { KubeClient } from "../k8s/client.ts";
import { parentDir } from "../lib/path.ts";
import type { Logger } from "../log/logger.ts";
import { runCni } from "../plugin/run.ts";
import { type AgentReply, type AgentRequest, decodeRequest } from "./protocol.ts";
import { type DropReason, Intake } from "./intake.ts";
import { shallowEnough } from "./json_shape.ts";
import { LogLimit } from "../log/log_limit.ts";
import { type PeerCred, peerCred } from "./peer_cred.ts";
import { WarmResources } from "./warm_resources.ts";
import { failpoint } from "../lib/failpoint.ts";

export interface AgentOptions {
  readonly socket: string;
  /** Where /metrics and /healthz are served, and to whom (src/http/endpoint.ts); none when undefined. */
  readonly metrics?: { readonly hostname: string; readonly port: number; readonly security: EndpointSecurity };
  /** The agent's own Kubernetes identity, for the node's pod cache; without it pods are read as the plugin reads them. */
  readonly podClient?: KubeClient;
  readonly log: Logger;
  readonly signal: AbortSignal;
  /** Called once the socket accepts requests (tests, readiness). */
  readonly onListening?: () => void;
}

/** The only uid served (peer_cred.ts): CNI runtimes run plugins as root, and nothing else may allocate. */
const SERVED_UID = 0;
/** Lines about turned-away connections: one per kind per window, the rest as a count (log_limit.ts). */
const LOG_WINDOW_MS = 60_000;
/** How long a stopping agent lets requests in flight finish. */
const DRAIN_MS = 20_000;

const SECONDS_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

function makeMetrics(resources: WarmResources) {
  const r = new Registry();
  const m = {
    registry: r,
    duration: r.histogram("kube_ipam_cni_request_duration_seconds", "CNI requests served by the agent, by verb and outcome", SECONDS_BUCKETS),
    refused: r.counter("kube_ipam_agent_refused_total", "Requests and connections the agent refused, by reason (another build, not the protocol, late, a peer not root, busy, oversize, slow, incomplete); a refused plugin runs the request itself"),
    pods: r.counter("kube_ipam_pod_cache_lookups_total", "Pod reads of ADDs by where they were answered: hit (the node's pod cache) or miss (a GET)"),
    inflight: r.gauge("kube_ipam_agent_requests_in_flight", "Requests the agent is serving now"),
    build: r.gauge("kube_ipam_build_info", "Build information"),
  };
  m.build.set({ build: BUILD, role: "agent" }, 1);
  return {
    ...m,
    render(inflight: number): string {
      m.pods.set({ result: "hit" }, resources.podLookups.hits);
      m.pods.set({ result: "miss" }, resources.podLookups.misses);
      m.inflight.set({}, inflight);
      return r.render();
    },
  };
}

/** Makes the socket's directory root-only and removes a stale socket; refuses when an agent answers there. */
async function prepareSocket(path: string): Promise<void> {
  const dir = parentDir(path);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700); // anyone who can connect can allocate addresses
  if (!existsSync(path)) return;
  if (!lstatSync(path).isSocket()) throw new Error(`Cannot serve on "${path}": it exists and is not a socket`);
  const alive = await Bun.connect({ unix: path, socket: { data() {}, open(s) { s.end(); } } }).then(() => true, () => false);
  if (alive) throw new Error(`Cannot serve on "${path}": another agent is serving there`);
  unlinkSync(path);
}

interface Conn {
  /** Who connected (SO_PEERCRED); undefined when it could not be read, and the connection was refused. */
  peer: PeerCred | undefined;
}

export async function runAgent(opts: AgentOptions): Promise<void> {
  const { log, signal } = opts;
  const resources = new WarmResources(log, opts.podClient);
  const metrics = makeMetrics(resources);
  let inflight = 0;
  let drained: (() => void) | undefined;

  const reply = (s: Socket<Conn>, r: AgentReply) => s.write(`${JSON.stringify(r)}\n`);

  // Requests of one attachment (container ID, interface) run one after another: a runtime's retry that
  // arrives while the first ADD is still running then finds that ADD's address instead of racing it for a
  // second one, and a DEL never overtakes the ADD it undoes.
  const queues = new Map<string, Promise<void>>();

  function serve(s: Socket<Conn>, req: AgentRequest): Promise<void> {
    const key = `${req.env.CNI_CONTAINERID ?? ""}\u0000${req.env.CNI_IFNAME ?? ""}`;
    inflight++;
    const run = (queues.get(key) ?? Promise.resolve()).then(() => serveNow(s, req));
    queues.set(key, run);
    void run.finally(() => {
      if (queues.get(key) === run) queues.delete(key);
      if (--inflight === 0) drained?.();
    });
    return run;
  }

  async function serveNow(s: Socket<Conn>, req: AgentRequest): Promise<void> {
    const started = performance.now();
    try {
      const out = await runCni(req.env, () => Promise.resolve(req.stdin), {
        servedBy: "agent",
        resources,
        hostname: () => req.hostname,
        startedAt: req.startedAt,
      });
      const verb = req.env.CNI_COMMAND ?? "";
      metrics.duration.observe({ verb, outcome: out.exitCode === 0 ? "ok" : "error" }, (performance.now() - started) / 1000);
      reply(s, { stdout: out.stdout, exitCode: out.exitCode });
    } catch (e) {
      // runCni answers every failure itself; reaching here is a bug. Closing without an answer makes the
      // plugin run the request on its own.
      log.error("agent: request failed", { error: String((e as Error)?.stack ?? e) });
    } finally {
      s.end();
    }
  }

  // Connections turned away before their request: a peer that is not root (peer_cred.ts), and the bounds of
  // intake.ts. Each is counted; log lines are limited (log_limit.ts), since anyone who can connect causes them.
  const limits = new LogLimit(LOG_WINDOW_MS, (kind, count, windowMs) =>
    log.warn("agent: more connections turned away", { kind, count, seconds: windowMs / 1000 }));
  function turnAway(s: Socket<Conn>, reason: DropReason | "peer", why: string): void {
    metrics.refused.add({ reason }, 1);
    if (limits.take(reason)) log.warn("agent: turned a connection away", { reason, why, ...s.data.peer });
    // A peer that has ended its side reads nothing more; every other one learns why (the forwarder runs the
    // request itself either way).
    if (reason !== "incomplete") reply(s, { refused: why });
    s.end();
  }
  const intake = new Intake<Socket<Conn>>(turnAway);

  await prepareSocket(opts.socket);
  const umask = process.umask(0o177);
  let listener;
  try {
    listener = Bun.listen<Conn>({
      unix: opts.socket,
      // A peer that shuts its side after its line still gets the answer; before its line, intake closes it.
      allowHalfOpen: true,
      socket: {
        open(s) {
          const peer = peerCred((s as Socket<Conn> & { readonly fd?: number }).fd);
          s.data = { peer: typeof peer === "string" ? undefined : peer };
          if (typeof peer === "string") {
            // Fail closed: a peer the agent cannot identify is not known to be root.
            metrics.refused.add({ reason: "peer" }, 1);
            if (limits.take("peer-unknown")) log.error("agent: cannot tell who connected; refused the connection", { error: peer });
            reply(s, { refused: `the agent cannot tell who connected: ${peer}` });
            s.end();
          } else if (peer.uid !== SERVED_UID) {
            turnAway(s, "peer", `the agent serves only uid ${SERVED_UID}, not uid ${peer.uid}`);
          } else {
            intake.opened(s);
          }
        },
        data(s, chunk) {
          const line = intake.read(s, chunk);
          if (line === undefined) return;
          // Nothing after the line is the protocol's: read no more, so that no client can stream into the
          // agent once past the intake's bounds (its writes now fail; the answer still goes out).
          s.shutdown(true);
          const req = shallowEnough(line) ? decodeRequest(line) : undefined;
          if (!req || req.build !== BUILD) {
            const why = req ? `agent build "${BUILD}" serves only plugins of that build, not "${req.build}"` : "not the protocol";
            metrics.refused.add({ reason: req ? "build" : "protocol" }, 1);
            reply(s, { refused: why });
            s.end();
            return;
          }
          if (Date.now() > req.acceptBy) {
            // The plugin gave up on us and ran the request itself (see protocol.ts).
            metrics.refused.add({ reason: "late" }, 1);
            if (limits.take("late")) {
              log.warn("agent: dropped a request read after the plugin stopped waiting", { command: req.env.CNI_COMMAND, containerID: req.env.CNI_CONTAINERID });
            }
            s.end();
            return;
          }
          reply(s, { accepted: true });
          failpoint("agent.accepted");
          void serve(s, req);
        },
        end(s) {
          intake.ended(s);
        },
        close(s) {
          intake.closed(s);
        },
        error(_s, err) {
          if (limits.take("error")) log.warn("agent: connection error", { error: err.message });
        },
      },
    });
  } finally {
    process.umask(umask);
  }
  chmodSync(opts.socket, 0o600);

  const http = opts.metrics && serveEndpoint({
    ...opts.metrics,
    log,
    dashboard: false,
    handle(req) {
      const path = new URL(req.url).pathname;
      if (path === "/metrics") return new Response(metrics.render(inflight), { headers: { "content-type": "text/plain; version=0.0.4" } });
      return new Response("not found\n", { status: 404 });
    },
  });
  log.info("agent started", {
    socket: opts.socket, build: BUILD, metrics: http ? `${http.url}` : undefined,
    ...(http ? { auth: opts.metrics!.security.authorizer ? "kubernetes" : "none" } : {}),
    pods: opts.podClient ? `cached, as the agent (${opts.podClient.server})` : "read with each network config's kubeconfig",
  });
  opts.onListening?.();

  await new Promise<void>((resolve) => {
    if (signal.aborted) resolve();
    signal.addEventListener("abort", () => resolve(), { once: true });
  });
  listener.stop(); // no new connections; the ones in flight get their answers
  limits.flush(); // the counts of turned-away connections not yet logged
  try {
    unlinkSync(opts.socket);
  } catch {
    // already gone
  }
  if (inflight > 0) {
    await Promise.race([new Promise<void>((r) => (drained = r)), Bun.sleep(DRAIN_MS)]);
  }
  http?.stop(true);
  await resources.close();
  log.info("agent stopped", { socket: opts.socket });
}
