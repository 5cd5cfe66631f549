// An HTTPS stand-in for the Kubernetes API: the few GETs kube-ipam makes, answered the way the real
// API server answers them (objects, lists with limit/continue and fieldSelector, watches, Status errors),
// plus fault controls.
//
//   const api = startKubeApi(pki);                 // bearer token; startKubeApi(pki, { auth: "client-cert" })
//   api.setPod(makePod({ namespace: "default", name: "web-0", ownerStatefulSet: "web" }));
//   const kubeconfig = api.writeKubeconfig(dir, "token");
//   ... api.requests.length ...; api.stop();
//
// Watches (`?watch=true&resourceVersion=RV`) replay the retained history after RV, then stream live events;
// `compactWatchHistory()` makes older versions answer an Expired ERROR event, `dropWatches()` cuts every
// open stream, `sendBookmarks()` sends a BOOKMARK to the watches that allowed them.
import { readFileSync } from "node:fs";
import type { Server } from "bun";
import type { Pod, StatefulSet, Status } from "../../src/k8s/types.ts";
import type { TestPki } from "./certs.ts";

export { makePod, type MakePodOptions, makeStatefulSet } from "./kube_objects.ts";
import { type KubeconfigVariant, type WriteKubeconfigOptions, writeKubeconfigFile } from "./kube_apiserver.ts";

export type KubeApiAuth = "token" | "client-cert";
export type { KubeconfigVariant, WriteKubeconfigOptions };

export interface KubeApiOptions {
  /** "token" (default) checks `Authorization: Bearer`; "client-cert" requires a certificate from the test CA. */
  readonly auth?: KubeApiAuth;
  readonly token?: string;
}

const EXPIRED_MESSAGE = "The provided continue parameter is too old to display a consistent list result. " +
  "You can start a new list without the continue parameter, or use the continue token in this response to " +
  "retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list " +
  "- objects that were created, modified, or deleted between the time the first chunk was returned and now " +
  "may show up in the list.";

const REASONS: Readonly<Record<number, string>> = {
  400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 405: "MethodNotAllowed",
  410: "Expired", 429: "TooManyRequests", 500: "InternalError", 503: "ServiceUnavailable", 504: "Timeout",
};

type KubeObject = Pod | StatefulSet;

interface Resource {
  readonly plural: "pods" | "statefulsets";
  readonly group: string; // "" for the core group
  readonly apiVersion: string;
  readonly kind: string;
  readonly objects: Map<string, KubeObject>; // by "namespace/name"
  /** Field labels the real API accepts in a fieldSelector for this resource, and how to read them. */
  readonly fields: Readonly<Record<string, (o: KubeObject) => string>>;
}

type EventType = "ADDED" | "MODIFIED" | "DELETED";

/** One change, as the API server's watch cache keeps it: the object before and after (after = as deleted). */
interface Change {
  readonly rv: number;
  readonly resource: Resource;
  readonly type: EventType;
  readonly object: KubeObject;
  readonly prev: KubeObject | undefined;
}

interface Watcher {
  readonly resource: Resource;
  readonly namespace: string | undefined;
  readonly matches: (o: KubeObject) => boolean;
  readonly bookmarks: boolean;
  readonly send: (event: { type: string; object: unknown }) => void;
  /** Ends the stream as the server does at timeoutSeconds: a clean end of the chunked body. */
  readonly close: () => void;
  /** Cuts the connection: the client reads a reset, not an end. */
  readonly drop: () => void;
}

const metaFields = {
  "metadata.name": (o: KubeObject) => o.metadata.name,
  "metadata.namespace": (o: KubeObject) => o.metadata.namespace ?? "default",
};

// As pkg/registry/core/pod/strategy.go selects pods (the fields kube-ipam could plausibly use).
const podFields = {
  ...metaFields,
  "spec.nodeName": (o: KubeObject) => (o as Pod).spec?.nodeName ?? "",
  "spec.hostNetwork": (o: KubeObject) => String((o as Pod).spec?.hostNetwork ?? false),
  "status.phase": (o: KubeObject) => (o as Pod).status?.phase ?? "",
  "status.podIP": (o: KubeObject) => (o as Pod).status?.podIP ?? "",
};

export class KubeApi {
  /** Every request as "GET /path?query", in arrival order. */
  readonly requests: string[] = [];
  readonly url: string;
  readonly token: string;
  readonly auth: KubeApiAuth;
  /** Called as each request arrives, before it is answered: lets a test change the world mid-list. */
  onRequest: ((request: string) => void) | undefined;
  readonly #pki: TestPki;
  readonly #server: Server<undefined>;
  readonly #pods: Resource = {
    plural: "pods", group: "", apiVersion: "v1", kind: "Pod", objects: new Map(), fields: podFields,
  };
  readonly #sets: Resource = {
    plural: "statefulsets", group: "apps", apiVersion: "apps/v1", kind: "StatefulSet", objects: new Map(),
    fields: metaFields,
  };
  #resourceVersion = 1000;
  #compactedAt = 0;
  /** Changes after #historyFrom, oldest first: what a watch from an older resourceVersion replays. */
  #history: Change[] = [];
  #historyFrom = 1000;
  readonly #watchers = new Set<Watcher>();
  #failStatus: number | undefined;
  #failAfter = 0;
  #delayMs = 0;
  readonly #waiting = new Set<() => void>();

  constructor(pki: TestPki, options: KubeApiOptions = {}) {
    this.#pki = pki;
    this.auth = options.auth ?? "token";
    this.token = options.token ?? "test-token-0123456789";
    const clientCert = this.auth === "client-cert";
    this.#server = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      tls: {
        cert: readFileSync(pki.server.cert, "utf8"),
        key: readFileSync(pki.server.key, "utf8"),
        ...(clientCert ? { ca: readFileSync(pki.ca.cert, "utf8"), requestCert: true, rejectUnauthorized: true } : {}),
      },
      fetch: (req) => this.#handle(req),
    });
    this.url = `https://127.0.0.1:${this.#server.port}`;
  }

  /** Stores a pod (replacing one of the same namespace/name) with a fresh resourceVersion; returns it. */
  setPod(pod: Pod): Pod {
    return this.#set(this.#pods, pod) as Pod;
  }

  deletePod(namespace: string, name: string): boolean {
    return this.#delete(this.#pods, namespace, name);
  }

  setStatefulSet(sts: StatefulSet): StatefulSet {
    return this.#set(this.#sets, sts) as StatefulSet;
  }

  deleteStatefulSet(namespace: string, name: string): boolean {
    return this.#delete(this.#sets, namespace, name);
  }

  /** Answers every request with this HTTP status (a Status body), after `after` more normal answers; undefined heals. */
  failWith(status: number | undefined, options: { after?: number } = {}): void {
    this.#failStatus = status;
    this.#failAfter = options.after ?? 0;
  }

  /** Holds every answer back this long; 0 releases the ones waiting. */
  delay(ms: number): void {
    this.#delayMs = ms;
    if (ms === 0) this.#release();
  }

  /** Like an etcd compaction: every continue token handed out so far now gets 410 Expired. */
  expireContinueTokens(): void {
    this.#compactedAt = this.#resourceVersion;
  }

  /** The current resourceVersion: that of the last create, update or delete. */
  get resourceVersion(): string {
    return String(this.#resourceVersion);
  }

  /** The requests that were watches, in arrival order. */
  get watchRequests(): string[] {
    return this.requests.filter(isWatchRequest);
  }

  /** Watch streams open now. */
  get openWatches(): number {
    return this.#watchers.size;
  }

  /**
   * Forgets the watch history, as the API server's watch cache does as it fills up: a watch from a
   * resourceVersion older than the current one now gets an Expired ERROR event.
   */
  compactWatchHistory(): void {
    this.#history = [];
    this.#historyFrom = this.#resourceVersion;
  }

  /** Cuts every open watch stream (the client reads a connection reset), as an API server restart does. */
  dropWatches(): void {
    for (const w of [...this.#watchers]) w.drop();
  }

  /** Sends a BOOKMARK at the current resourceVersion to every open watch that allowed bookmarks. */
  sendBookmarks(): void {
    for (const w of this.#watchers) {
      if (w.bookmarks) w.send({ type: "BOOKMARK", object: this.#bookmark(w.resource, this.#resourceVersion) });
    }
  }

  /** Closes the port: the API becomes unreachable. */
  stop(): void {
    this.#release();
    this.dropWatches();
    this.#server.stop(true);
  }

  /** Writes a kubeconfig for this server in dir and returns its path (the real server's writer). */
  writeKubeconfig(dir: string, variant: KubeconfigVariant, options: WriteKubeconfigOptions = {}): string {
    return writeKubeconfigFile(dir, variant, {
      server: options.server ?? this.url, ca: this.#pki.ca.cert, token: options.token ?? this.token,
      client: options.client ?? this.#pki.client, form: options.form, file: options.file,
    });
  }


  async #handle(req: Request): Promise<Response> {
    const url = new URL(req.url);
    const request = `${req.method} ${url.pathname}${url.search}`;
    this.requests.push(request);
    this.onRequest?.(request);
    if (this.#delayMs > 0) await this.#wait(this.#delayMs);
    if (this.#failStatus !== undefined) {
      if (this.#failAfter > 0) this.#failAfter--;
      else return status(this.#failStatus, `injected failure ${this.#failStatus}`);
    }
    if (this.auth === "token" && req.headers.get("authorization") !== `Bearer ${this.token}`) {
      return status(401, "Unauthorized");
    }
    if (req.method !== "GET") return status(405, `the server does not allow this method on the requested resource`);
    return this.#route(url, req.signal);
  }

  #route(url: URL, signal: AbortSignal): Response {
    const p = url.pathname;
    let m: RegExpMatchArray | null;
    for (const r of [this.#pods, this.#sets]) {
      const base = r.group ? `/apis/${r.apiVersion}` : `/api/${r.apiVersion}`;
      const prefix = escape(base);
      if ((m = p.match(new RegExp(`^${prefix}/namespaces/([^/]+)/${r.plural}/([^/]+)$`)))) {
        return this.#get(r, decodeURIComponent(m[1]!), decodeURIComponent(m[2]!));
      }
      if ((m = p.match(new RegExp(`^${prefix}(?:/namespaces/([^/]+))?/${r.plural}$`)))) {
        const namespace = m[1] === undefined ? undefined : decodeURIComponent(m[1]);
        const selector = fieldSelector(r, url.searchParams.get("fieldSelector") ?? "");
        if (typeof selector === "string") return status(400, selector);
        return isWatchRequest(url.search)
          ? this.#watch(r, namespace, selector, url.searchParams, signal)
          : this.#list(r, namespace, selector, url.searchParams);
      }
    }
    return json(404, statusBody(404, "the server could not find the requested resource", {}));
  }

  #get(r: Resource, namespace: string, name: string): Response {
    const obj = r.objects.get(`${namespace}/${name}`);
    if (!obj) {
      const kind = r.group ? `${r.plural}.${r.group}` : r.plural;
      const details = r.group ? { name, group: r.group, kind: r.plural } : { name, kind: r.plural };
      return json(404, statusBody(404, `${kind} "${name}" not found`, details));
    }
    return json(200, { kind: r.kind, apiVersion: r.apiVersion, ...obj });
  }

  #list(r: Resource, namespace: string | undefined, matches: (o: KubeObject) => boolean,
    query: URLSearchParams): Response {
    let listRV = String(this.#resourceVersion);
    let after = "";
    const cont = query.get("continue");
    if (cont) {
      let parsed: { rv?: unknown; start?: unknown };
      try {
        parsed = JSON.parse(Buffer.from(cont, "base64url").toString("utf8"));
      } catch {
        return status(400, `continue key is not valid: illegal base64 data`);
      }
      if (typeof parsed.rv !== "string" || typeof parsed.start !== "string") {
        return status(400, "continue key is not valid: incorrect encoded start resourceVersion");
      }
      if (Number(parsed.rv) <= this.#compactedAt) return status(410, EXPIRED_MESSAGE);
      listRV = parsed.rv;
      after = parsed.start;
    }
    const keys = [...r.objects.keys()]
      .filter((k) => (namespace === undefined || k.startsWith(`${namespace}/`)) && matches(r.objects.get(k)!))
      .sort()
      .filter((k) => k > after);
    const limit = Number(query.get("limit") ?? 0);
    const page = limit > 0 ? keys.slice(0, limit) : keys;
    const metadata: Record<string, unknown> = { resourceVersion: listRV };
    if (page.length < keys.length) {
      metadata.continue = Buffer.from(JSON.stringify({ rv: listRV, start: page.at(-1) })).toString("base64url");
      metadata.remainingItemCount = keys.length - page.length;
    }
    return json(200, {
      kind: `${r.kind}List`,
      apiVersion: r.apiVersion,
      metadata,
      items: page.map((k) => r.objects.get(k)),
    });
  }

  #set(r: Resource, obj: KubeObject): KubeObject {
    const { kind: _k, apiVersion: _a, ...rest } = obj;
    const stored = { ...rest, metadata: { ...obj.metadata, resourceVersion: String(++this.#resourceVersion) } };
    const key = `${obj.metadata.namespace ?? "default"}/${obj.metadata.name}`;
    const prev = r.objects.get(key);
    r.objects.set(key, stored);
    this.#changed({ rv: this.#resourceVersion, resource: r, type: prev ? "MODIFIED" : "ADDED", object: stored, prev });
    return stored;
  }

  #delete(r: Resource, namespace: string, name: string): boolean {
    const key = `${namespace}/${name}`;
    const prev = r.objects.get(key);
    this.#resourceVersion++;
    if (!prev) return false;
    r.objects.delete(key);
    // The DELETED event carries the object's last state at the deletion's resourceVersion.
    const object = { ...prev, metadata: { ...prev.metadata, resourceVersion: String(this.#resourceVersion) } };
    this.#changed({ rv: this.#resourceVersion, resource: r, type: "DELETED", object, prev });
    return true;
  }

  #changed(change: Change): void {
    this.#history.push(change);
    for (const w of this.#watchers) {
      const event = w.resource === change.resource ? eventFor(w, change) : undefined;
      if (event) w.send(event);
    }
  }

  #watch(r: Resource, namespace: string | undefined, matches: (o: KubeObject) => boolean, query: URLSearchParams,
    signal: AbortSignal): Response {
    const rvParam = query.get("resourceVersion") ?? "";
    const from = Number(rvParam || 0);
    if (!/^\d*$/.test(rvParam)) return status(400, `invalid resource version: strconv.ParseUint: parsing "${rvParam}": invalid syntax`);
    const timeoutSeconds = Number(query.get("timeoutSeconds") ?? 0);
    const encoder = new TextEncoder();
    let watcher: Watcher | undefined;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const end = () => {
      clearTimeout(timer);
      if (watcher) this.#watchers.delete(watcher);
    };
    // A client that went away may not have been noticed yet: its stream is closed, and it is forgotten.
    const guard = (f: () => void, last = false) => {
      try {
        f();
      } catch {
        end();
      }
      if (last) end();
    };
    const body = new ReadableStream<Uint8Array>({
      start: (controller) => {
        const w: Watcher = {
          resource: r,
          namespace,
          matches,
          bookmarks: query.get("allowWatchBookmarks") === "true",
          send: (event) => guard(() => controller.enqueue(encoder.encode(`${JSON.stringify(event)}\n`))),
          close: () => guard(() => controller.close(), true),
          // error() without a reason: Bun then resets the connection without logging a server error.
          drop: () => guard(() => controller.error(), true),
        };
        watcher = w;
        // The real API flushes its headers as a watch starts; Bun sends them only with the first byte of the
        // body. A newline is that byte: JSON stream decoders skip whitespace between values.
        controller.enqueue(encoder.encode("\n"));
        if (rvParam === "" || rvParam === "0") {
          // No resourceVersion, or "0": the current state as synthetic ADDED events, then changes.
          for (const [key, o] of [...r.objects].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
            if (inNamespace(key, namespace) && matches(o)) w.send({ type: "ADDED", object: withKind(r, o) });
          }
        } else if (from < this.#historyFrom) {
          // The real API answers 200 and then this one ERROR event (not HTTP 410) for a watch that is too old.
          // Sent a moment later, or Bun would answer with a Content-Length instead of a chunked stream.
          const expired = statusBody(410, `too old resource version: ${from} (${this.#historyFrom})`);
          setTimeout(() => {
            w.send({ type: "ERROR", object: expired });
            w.close();
          }, 0);
          return;
        } else {
          for (const change of this.#history) {
            const event = change.rv > from && change.resource === r ? eventFor(w, change) : undefined;
            if (event) w.send(event);
          }
        }
        this.#watchers.add(w);
        if (timeoutSeconds > 0) timer = setTimeout(() => w.close(), timeoutSeconds * 1000);
      },
      cancel: end,
    });
    signal.addEventListener("abort", end, { once: true });
    return new Response(body, { status: 200, headers: { "Content-Type": "application/json" } });
  }

  #bookmark(r: Resource, rv: number): unknown {
    // As the API sends them: kind and apiVersion, and nothing of the object but the resourceVersion.
    return { kind: r.kind, apiVersion: r.apiVersion, metadata: { resourceVersion: String(rv), creationTimestamp: null } };
  }

  #wait(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#waiting.delete(done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.#waiting.add(done);
    });
  }

  #release(): void {
    for (const done of [...this.#waiting]) done();
  }
}

/** Starts a stand-in on a random loopback port. */
export function startKubeApi(pki: TestPki, options: KubeApiOptions = {}): KubeApi {
  return new KubeApi(pki, options);
}

function statusBody(code: number, message: string, details?: Status["details"]): Status {
  return {
    kind: "Status", apiVersion: "v1", metadata: {}, status: "Failure", message,
    reason: REASONS[code] ?? "Unknown", ...(details ? { details } : {}), code,
  };
}

/** What watcher `w` sees of a change: a move into its selection is ADDED, a move out of it DELETED. */
function eventFor(w: Watcher, c: Change): { type: EventType; object: unknown } | undefined {
  const key = `${c.object.metadata.namespace ?? "default"}/${c.object.metadata.name}`;
  if (!inNamespace(key, w.namespace)) return undefined;
  const now = c.type !== "DELETED" && w.matches(c.object);
  const before = c.prev !== undefined && w.matches(c.prev);
  let type: EventType;
  let object = c.object;
  if (c.type === "DELETED") {
    if (!before) return undefined;
    type = "DELETED";
  } else if (now) {
    type = before ? "MODIFIED" : "ADDED";
  } else if (before) {
    // Moved out of the selection: the old object at the new resourceVersion, as the watch cache sends it.
    type = "DELETED";
    object = { ...c.prev!, metadata: { ...c.prev!.metadata, resourceVersion: String(c.rv) } };
  } else {
    return undefined;
  }
  return { type, object: withKind(w.resource, object) };
}

function inNamespace(key: string, namespace: string | undefined): boolean {
  return namespace === undefined || key.startsWith(`${namespace}/`);
}

function withKind(r: Resource, o: KubeObject): unknown {
  return { kind: r.kind, apiVersion: r.apiVersion, ...o };
}

function isWatchRequest(requestOrSearch: string): boolean {
  return /[?&]watch=(true|1)(&|$)/.test(requestOrSearch);
}

/**
 * The fieldSelector as a predicate, or the real API's message for one it refuses: `a=b`, `a==b` and `a!=b`
 * terms joined by commas (no escapes), on the field labels the resource supports.
 */
function fieldSelector(r: Resource, selector: string): ((o: KubeObject) => boolean) | string {
  const terms: ((o: KubeObject) => boolean)[] = [];
  for (const part of selector.split(",")) {
    if (!part) continue;
    const m = part.match(/^([^=!]+)(==|=|!=)(.*)$/);
    if (!m) return `invalid selector: '${selector}'; can't understand '${part}'`;
    const [, field, op, value] = m as unknown as [string, string, string, string];
    const read = r.fields[field];
    if (!read) return `field label not supported: ${field}`;
    terms.push(op === "!=" ? (o) => read(o) !== value : (o) => read(o) === value);
  }
  return (o) => terms.every((t) => t(o));
}

function status(code: number, message: string): Response {
  return json(code, statusBody(code, message));
}

function json(code: number, body: unknown): Response {
  return new Response(JSON.stringify(body), { status: code, headers: { "Content-Type": "application/json" } });
}

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
}
