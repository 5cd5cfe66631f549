// The HTTP(S) endpoint of the controller and of the agent: /healthz for probes, open to all (it says "ok"
// and nothing else); every other path only for a bearer token the authorizer allows, unless the operator
// asked for `--auth none`. The dashboard is a page in a browser, which sends no Authorization header: it
// logs in once with a token (POST /login), kept in an HttpOnly, Secure, SameSite=Strict cookie.
import type { Server } from "bun";
import type { Logger } from "../log/logger.ts";
import { LogLimit } from "../log/log_limit.ts";
import { AUTHORIZED_TTL_MS, MAX_TOKEN_BYTES, type RequestAuthorizer, type Verdict } from "./kube_auth.ts";

export interface EndpointSecurity {
  /** Undefined: `--auth none`, everyone is served. */
  readonly authorizer?: RequestAuthorizer;
  /** Undefined: plain HTTP. */
  readonly tls?: { readonly cert: string; readonly key: string };
}

export interface EndpointOptions {
  readonly hostname: string;
  readonly port: number;
  readonly security: EndpointSecurity;
  readonly log: Logger;
  /** Whether the paths other than /metrics are a dashboard a person opens in a browser (login page). */
  readonly dashboard: boolean;
  readonly handle: (req: Request, server: Server<undefined>) => Response | Promise<Response>;
}

/**
 * The non-resource URL a request is authorized as: /metrics as Prometheus's scrape role grants it, every
 * dashboard path (page, assets, its JSON under /api/) as one URL. The dashboard's own paths are not used:
 * the default ClusterRole system:discovery grants /api/* to every authenticated user.
 */
export function authorizationUrl(pathname: string): string {
  return pathname === "/metrics" ? "/metrics" : DASHBOARD_URL;
}

export const DASHBOARD_URL = "/kube-ipam/dashboard";
export const TOKEN_COOKIE = "kube-ipam-token";
/** A refusal of the same kind (status, user, URL, client address) is logged once in this long. */
const REFUSAL_LOG_MS = 60_000;
const REFUSAL_KINDS = 1024;
const MAX_BODY_BYTES = 64 * 1024;

/** The bearer token of `Authorization`, else the dashboard's cookie. */
export function requestToken(req: Request): string | undefined {
  const header = req.headers.get("authorization");
  if (header !== null) {
    const m = /^bearer\s+(\S+)\s*$/i.exec(header);
    return m?.[1];
  }
  for (const part of (req.headers.get("cookie") ?? "").split(";")) {
    const eq = part.indexOf("=");
    if (eq > 0 && part.slice(0, eq).trim() === TOKEN_COOKIE) {
      try {
        return decodeURIComponent(part.slice(eq + 1).trim()) || undefined;
      } catch {
        return undefined; // not ours: refused as no token
      }
    }
  }
  return undefined;
}

/** Logs the first refusal of each kind (status, user, URL, client address) in a minute; the rest as a count. */
class RefusalLog {
  readonly #limit: LogLimit;

  constructor(readonly log: Logger) {
    this.#limit = new LogLimit(REFUSAL_LOG_MS, (kind, count, windowMs) =>
      log.warn("refused more requests like one logged", { kind, count, seconds: windowMs / 1000 }), REFUSAL_KINDS);
  }

  note(verdict: Verdict & { allowed: false }, url: string, client: string): void {
    const kind = `${verdict.status} ${verdict.user ?? "(no user)"} ${url} ${client}`;
    if (!this.#limit.take(kind)) return;
    this.log.warn("refused a request", {
      status: verdict.status, reason: verdict.reason, url, client, ...(verdict.user ? { user: verdict.user } : {}),
      ...(verdict.detail ? { detail: verdict.detail } : {}),
    });
  }
}

function text(status: number, body: string, headers: Record<string, string> = {}): Response {
  return new Response(`${body}\n`, { status, headers: { "content-type": "text/plain; charset=utf-8", ...headers } });
}

const LOGIN_HEADERS = {
  "content-type": "text/html; charset=utf-8",
  "content-security-policy": "default-src 'none'; form-action 'self'; frame-ancestors 'none'",
  "cache-control": "no-store",
};

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** The page a browser gets instead of the dashboard until it has logged in. */
function loginPage(status: number, message: string): Response {
  return new Response(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>kube-ipam: log in</title></head>
<body>
<h1>kube-ipam</h1>
<p>${escapeHtml(message)}</p>
<form method="post" action="/login">
<label for="token">A bearer token that may get ${DASHBOARD_URL}, e.g. from <code>kubectl create token NAME</code>:</label><br>
<textarea id="token" name="token" rows="6" cols="80" autocomplete="off" required></textarea><br>
<button type="submit">Log in</button>
</form>
</body></html>
`, { status, headers: LOGIN_HEADERS });
}

/** A form posted by another site's page (the browser says so); a client that says nothing is not a browser. */
function crossSite(req: Request): boolean {
  const site = req.headers.get("sec-fetch-site");
  if (site !== null) return site !== "same-origin" && site !== "none";
  const origin = req.headers.get("origin");
  if (origin === null) return false;
  try {
    return new URL(origin).host !== (req.headers.get("host") ?? "");
  } catch {
    return true;
  }
}

/**
 * A stream (the dashboard's live events) is authorized once, when it opens: it ends after an authorized
 * decision's lifetime, and the browser's reconnect is checked anew, so a removed binding or an expired token
 * stops it too.
 */
function expiring(res: Response): Response {
  if (!res.body || !(res.headers.get("content-type") ?? "").startsWith("text/event-stream")) return res;
  const reader = res.body.getReader();
  const until = Date.now() + AUTHORIZED_TTL_MS;
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      const left = until - Date.now();
      let timer: ReturnType<typeof setTimeout> | undefined;
      const ended = new Promise<"ended">((resolve) => (timer = setTimeout(() => resolve("ended"), Math.max(0, left))));
      const next = await Promise.race([reader.read(), ended]);
      clearTimeout(timer);
      if (next === "ended" || next.done) {
        void reader.cancel();
        controller.close();
        return;
      }
      controller.enqueue(next.value);
    },
    cancel: (reason) => reader.cancel(reason),
  });
  return new Response(body, { status: res.status, headers: res.headers });
}

function wantsPage(req: Request): boolean {
  return req.method === "GET" && (req.headers.get("accept") ?? "").includes("text/html");
}

async function formToken(req: Request): Promise<string | undefined> {
  const length = Number(req.headers.get("content-length") ?? NaN);
  if (!(length <= MAX_TOKEN_BYTES + 64)) return undefined;
  const form = new URLSearchParams(await req.text());
  return form.get("token")?.trim() || undefined;
}

export function serveEndpoint(opts: EndpointOptions): Server<undefined> {
  const { authorizer } = opts.security;
  const refusals = new RefusalLog(opts.log);

  async function login(req: Request, server: Server<undefined>): Promise<Response> {
    const token = await formToken(req);
    const verdict = await authorizer!.check(token, DASHBOARD_URL);
    if (!verdict.allowed) {
      refusals.note(verdict, DASHBOARD_URL, server.requestIP(req)?.address ?? "");
      return loginPage(verdict.status, `Not logged in: ${verdict.reason}.`);
    }
    opts.log.info("dashboard login", { user: verdict.user, client: server.requestIP(req)?.address });
    return new Response(null, {
      status: 303,
      headers: { location: "/", "set-cookie": `${TOKEN_COOKIE}=${encodeURIComponent(token!)}; Path=/; HttpOnly; Secure; SameSite=Strict` },
    });
  }

  return Bun.serve({
    hostname: opts.hostname,
    port: opts.port,
    // Nothing served takes a body but the login form: a larger one is refused before it is read.
    maxRequestBodySize: MAX_BODY_BYTES,
    development: false,
    error(e) {
      opts.log.error("endpoint: a request failed", { error: String((e as Error)?.stack ?? e) });
      return text(500, "Internal error (see the log)");
    },
    ...(opts.security.tls ? { tls: opts.security.tls } : {}),
    fetch: async (req, server) => {
      const path = new URL(req.url).pathname;
      if (path === "/healthz") return text(200, "ok");
      if (!authorizer) return opts.handle(req, server);
      if (opts.dashboard && (path === "/login" || path === "/logout") && req.method === "POST" && crossSite(req)) {
        return text(403, "Forbidden: a login or logout from another site");
      }
      if (opts.dashboard && path === "/login" && req.method === "POST") return login(req, server);
      if (opts.dashboard && path === "/logout" && req.method === "POST") {
        return new Response(null, { status: 303, headers: { location: "/", "set-cookie": `${TOKEN_COOKIE}=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Strict` } });
      }
      const url = authorizationUrl(path);
      const verdict = await authorizer.check(requestToken(req), url);
      if (verdict.allowed) return expiring(await opts.handle(req, server));
      refusals.note(verdict, url, server.requestIP(req)?.address ?? "");
      if (opts.dashboard && url === DASHBOARD_URL && wantsPage(req) && (verdict.status === 401 || verdict.status === 403)) {
        return loginPage(verdict.status, verdict.status === 401 ? "Log in to see the dashboard." : `Refused: ${verdict.reason}.`);
      }
      const headers: Record<string, string> = verdict.status === 401 ? { "www-authenticate": 'Bearer realm="kube-ipam"' }
        : verdict.status === 429 || verdict.status === 503 ? { "retry-after": "1" } : {};
      return text(verdict.status, `${verdict.status === 401 ? "Unauthorized" : verdict.status === 403 ? "Forbidden" : "Unavailable"}: ${verdict.reason}`, headers);
    },
  });
}
