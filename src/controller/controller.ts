// `kube-ipam controller`: every replica serves /metrics and /healthz; the one elected leader runs
// garbage collection every interval and releases a leak only when it has seen the very same record
// leak twice, one interval apart (Calico's rule), and only while it still leads (every write compares
// the leader's fence). A run that would release more than --max-release of a network's pod addresses
// is refused, every run, until the picture of the cluster changes or an operator raises the limit.
import { collectGarbage, type ClusterLister, type Leak, leakKey } from "../ipam/collect_garbage.ts";
import { describeRefusals, formatReleaseLimit, type ReleaseLimit } from "../ipam/release_guard.ts";
import { reservedAddresses } from "../ipam/reservations.ts";
import { poolUsage } from "../ipam/usage.ts";
import type { IpamConfig } from "../config/ipam_config.ts";
import type { Logger } from "../log/logger.ts";
import type { Leadership, Store } from "../store/store.ts";
import { type EndpointSecurity, serveEndpoint } from "../http/endpoint.ts";
import { sleep } from "../lib/sleep.ts";
import { VERSION } from "../version.ts";
import { Registry } from "./metrics.ts";

/** Without a shared store there is one host and one controller: it always leads. */
const SOLE_LEADER: Leadership = { isLeader: true, run: () => Promise.resolve() };

export interface ControllerOptions {
  readonly config: IpamConfig;
  readonly store: Store;
  readonly cluster: ClusterLister;
  readonly hostname: string;
  readonly port: number;
  readonly gcIntervalMs: number;
  readonly graceMs: number;
  readonly maxRelease: ReleaseLimit;
  readonly identity: string;
  readonly log: Logger;
  readonly signal: AbortSignal;
  readonly leaseTtlSeconds?: number;
  /** Serve the read-only dashboard (src/ui/) at / beside /metrics. */
  readonly ui?: boolean;
  /** Who may read /metrics and the dashboard, over HTTP or HTTPS (src/http/endpoint.ts). */
  readonly security: EndpointSecurity;
}

class LostLeadership extends Error {
  override name = "LostLeadership";
}

function makeMetrics() {
  const r = new Registry();
  return {
    registry: r,
    size: r.gauge("kube_ipam_pool_size", "Addresses a range can hand out (gateway, network, broadcast and exclude left out)"),
    used: r.gauge("kube_ipam_pool_used", "Addresses of a range held by pods (live or kept for a sticky pod name)"),
    reserved: r.gauge("kube_ipam_pool_reserved", "Addresses of a range in a reservation and not held"),
    free: r.gauge("kube_ipam_pool_free", "Addresses of a range that can still be handed out"),
    allocations: r.counter("kube_ipam_allocations_total", "Addresses given to a container, seen in the store since this replica started"),
    releases: r.counter("kube_ipam_releases_total", "Addresses released or parked, seen in the store since this replica started"),
    conflicts: r.counter("kube_ipam_conflicts_total", "Claims plugins lost to a concurrent claim before succeeding, from new allocation records"),
    retries: r.counter("kube_ipam_retries_total", "etcd requests of this replica retried on another endpoint or later"),
    gcReleases: r.counter("kube_ipam_gc_releases_total", "Leaked addresses released (or sticky ones parked) by garbage collection"),
    gcRuns: r.counter("kube_ipam_gc_runs_total", "Garbage collection runs by outcome"),
    leader: r.gauge("kube_ipam_leader", "1 when this replica is the elected leader"),
    build: r.gauge("kube_ipam_build_info", "Build information"),
  };
}

type Metrics = ReturnType<typeof makeMetrics>;

async function refreshPool(m: Metrics, opts: ControllerOptions): Promise<void> {
  const [list, reservations] = await Promise.all([opts.store.network(opts.config.network).list(), opts.store.reservations()]);
  for (const u of poolUsage(opts.config, list, reservedAddresses(reservations))) {
    const labels = { network: u.network, range_set: String(u.rangeSet), range: u.range };
    m.size.set(labels, u.size);
    m.used.set(labels, u.used);
    m.reserved.set(labels, u.reserved);
    m.free.set(labels, u.free);
  }
}

/** The dashboard's module is loaded only when it is on: a controller without it never parses it. */
async function openDashboard(opts: ControllerOptions, leadership: Leadership) {
  const { Dashboard } = await import("../ui/dashboard.ts");
  return new Dashboard({
    config: opts.config,
    store: opts.store,
    log: opts.log,
    replica: () => ({ identity: opts.identity, leader: leadership.isLeader }),
  });
}

export async function runController(opts: ControllerOptions): Promise<void> {
  const { log, signal } = opts;
  const m = makeMetrics();
  m.build.set({ version: VERSION }, 1);
  const leadership: Leadership = opts.store.elect?.(opts.identity, {
    ttlSeconds: opts.leaseTtlSeconds,
    onChange: (leader) => log.info(leader ? "became leader" : "lost leadership", { identity: opts.identity }),
  }) ?? SOLE_LEADER;
  const dashboard = opts.ui ? await openDashboard(opts, leadership) : undefined;

  const server = serveEndpoint({
    hostname: opts.hostname,
    port: opts.port,
    security: opts.security,
    log,
    dashboard: dashboard !== undefined,
    handle: async (req, srv) => {
      const path = new URL(req.url).pathname;
      if (path !== "/metrics") return (await dashboard?.handle(req, srv)) ?? new Response("not found\n", { status: 404 });
      m.leader.set({}, leadership.isLeader ? 1 : 0);
      if (opts.store.retries !== undefined) m.retries.set({}, opts.store.retries);
      try {
        await refreshPool(m, opts);
      } catch (e) {
        log.warn("cannot read the pool for metrics", { error: String(e) });
      }
      return new Response(m.registry.render(), { headers: { "content-type": "text/plain; version=0.0.4" } });
    },
  });
  log.info("controller started", {
    identity: opts.identity, metrics: `${server.url}`, dashboard: dashboard ? "/" : "off", version: VERSION,
    auth: opts.security.authorizer ? "kubernetes" : "none",
  });

  const background = [leadership.run(signal)];
  if (dashboard) background.push(dashboard.run(signal));
  const watching = opts.store.watchChanges?.(signal, (c) => {
    dashboard?.onChange(c);
    const labels = { network: c.network };
    if (c.kind === "released") return m.releases.add(labels, 1);
    m.allocations.add(labels, 1);
    m.conflicts.add(labels, c.record?.conflicts ?? 0);
  }, (e) => {
    dashboard?.onStreamError(e);
    log.warn("store watch reconnecting", { error: String(e) });
  });
  if (watching) background.push(watching);

  // Leaks seen in the previous run, by exact record: only a second sighting releases.
  let suspects = new Set<string>();
  while (!signal.aborted) {
    await sleep(opts.gcIntervalMs, signal);
    if (signal.aborted) break;
    if (!leadership.isLeader) {
      suspects = new Set();
      continue;
    }
    let released = 0;
    try {
      const seen = suspects;
      const report = await collectGarbage(opts.store, opts.cluster, {
        graceMs: opts.graceMs,
        maxRelease: opts.maxRelease,
        leader: leadership,
        confirm: (leak: Leak) => {
          if (!leadership.isLeader) throw new LostLeadership("leadership lost during garbage collection");
          return seen.has(leakKey(leak));
        },
        onDone: (leak: Leak) => {
          released++;
          m.gcReleases.add({ network: leak.allocation.network }, 1);
          log.info(leak.action === "park" ? "gc parked" : "gc released", {
            ip: leak.allocation.ip, network: leak.allocation.network,
            pod: `${leak.allocation.podNamespace}/${leak.allocation.podName}`, reason: leak.reason,
            // The leader's term the write was fenced by (etcd: the leader key's creation revision).
            term: leadership.fence?.revision.toString(),
          });
        },
      });
      // A refused run keeps its leaks as suspects: while the picture stays the same, every run is refused.
      suspects = new Set([...report.deferred, ...report.withheld].map(leakKey));
      if (report.refusals.length > 0) {
        m.gcRuns.add({ outcome: "refused" }, 1);
        const limit = formatReleaseLimit(opts.maxRelease);
        log.warn(`gc run refused: it would release more than --max-release ${limit} (${describeRefusals(report.refusals)}); nothing released`, {
          maxRelease: limit,
          refusals: report.refusals,
          hint: "check that the controller sees the right cluster and may list every pod; if the pods are really gone, " +
            "run kube-ipam gc --max-release 100% once (docs/operations.md)",
        });
        continue;
      }
      m.gcRuns.add({ outcome: "success" }, 1);
    } catch (e) {
      // Partial knowledge (API down, list incomplete): nothing released. Lost leadership: nothing more
      // released from that instant (the writes compare the leader's fence). Try again later.
      suspects = new Set();
      m.gcRuns.add({ outcome: "error" }, 1);
      log.warn(`gc run failed: ${released === 0 ? "nothing" : `only ${released}`} released`, { error: (e as Error).message });
    }
  }
  server.stop(true);
  await Promise.allSettled(background);
  log.info("controller stopped", { identity: opts.identity });
}
