// The controller's read-only dashboard (docs/dashboard.md), served beside /metrics: the page at `/`, its
// files under `/ui/`, the JSON API under `/api/` and the live changes at `/api/events`. The controller
// loads this module only when the dashboard is on, and feeds it the store's change stream it already
// watches for the metrics.
import type { Server } from "bun";
import type { UsageConfig } from "../ipam/usage.ts";
import { sleep } from "../lib/sleep.ts";
import type { Logger } from "../log/logger.ts";
import type { Store, StoreChange } from "../store/store.ts";
import { Api, HttpError, json } from "./api.ts";
import { ASSETS } from "./assets.ts";
import { LiveHub } from "./live.ts";
import { StoreView } from "./store_view.ts";

export interface DashboardOptions {
  /** The network of the controller's --conf: the one whose ranges are known. */
  readonly config: UsageConfig;
  readonly store: Store;
  readonly log: Logger;
  readonly replica: () => { identity: string; leader: boolean };
}

/** A page reads each list at most this often (sooner after a change it is told of). */
const MAX_AGE_MS = 2000;
/** How often a broken change stream is checked for being back. */
const PROBE_MS = 1000;

const SECURITY_HEADERS = {
  // Nothing but this server: no CDN, no fonts, no images from elsewhere, no framing.
  "content-security-policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
};

export class Dashboard {
  readonly #opts: DashboardOptions;
  readonly #view: StoreView;
  readonly #hub: LiveHub;
  readonly #api: Api;
  #lastStreamError = 0;

  constructor(opts: DashboardOptions) {
    this.#opts = opts;
    this.#view = new StoreView(opts.store, opts.config.network, MAX_AGE_MS);
    this.#hub = new LiveHub(opts.store.watchChanges !== undefined);
    this.#api = new Api({
      config: opts.config,
      view: this.#view,
      hub: this.#hub,
      storeLocation: opts.store.location,
      replica: opts.replica,
    });
  }

  /** A change from the store's change stream. */
  onChange(c: StoreChange): void {
    this.#view.changed(c.network);
    this.#hub.record(c);
  }

  /** The change stream broke; it is being reopened (and resumes where it was). */
  onStreamError(e: unknown): void {
    this.#lastStreamError = Date.now();
    this.#hub.setState("reconnecting", e);
  }

  /** The dashboard's answer to `req`, or undefined when the path is not the dashboard's. */
  async handle(req: Request, server: Server<unknown>): Promise<Response | undefined> {
    const url = new URL(req.url);
    const path = url.pathname;
    const asset = ASSETS.get(path === "/index.html" ? "/" : path);
    if (!asset && !path.startsWith("/api/")) return undefined;
    if (req.method !== "GET" && req.method !== "HEAD") {
      return new Response("the dashboard is read-only\n", { status: 405, headers: { allow: "GET, HEAD" } });
    }
    if (asset) {
      return new Response(asset.body, { headers: { "content-type": asset.type, "cache-control": "no-cache", ...SECURITY_HEADERS } });
    }
    if (path === "/api/events") {
      server.timeout(req, 0); // a stream stays open: keepalives, not the idle timeout, tell it is alive
      return this.#hub.events(req);
    }
    try {
      return await this.#api.handle(path, url.searchParams) ?? json({ error: `No such API path "${path}" (docs/dashboard.md)` }, 404);
    } catch (e) {
      if (e instanceof HttpError) return json({ error: e.message }, e.status);
      this.#opts.log.warn("dashboard cannot read the store", { path, error: String(e) });
      return json({ error: `Cannot read the store (${this.#opts.store.location}): ${(e as Error).message}` }, 503);
    }
  }

  /**
   * Until `signal` aborts: watches the reservations where the store can, and tells the pages when a
   * broken change stream is back (a read answers and the stream has not failed again since).
   */
  async run(signal: AbortSignal): Promise<void> {
    const watching = this.#opts.store.watchReservations?.(signal, () => {
      this.#view.reservationsChanged();
      this.#hub.reservationsChanged();
    }, (e) => this.onStreamError(e));
    while (!signal.aborted) {
      await sleep(PROBE_MS, signal);
      if (signal.aborted || this.#hub.status.state !== "reconnecting") continue;
      if (Date.now() - this.#lastStreamError < PROBE_MS * 1.5) continue;
      try {
        await this.#opts.store.reservations();
        if (Date.now() - this.#lastStreamError < PROBE_MS * 1.5) continue;
        this.#view.reset();
        this.#hub.setState("live");
      } catch {
        // still down
      }
    }
    await watching;
    this.#hub.close();
  }
}
