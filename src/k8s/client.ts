// Reads pods and StatefulSets from the Kubernetes API: plain HTTPS GETs with Bun's fetch, and pod watches.
// Those reads are what kube-ipam's identities may do (deploy/rbac.yaml): GET a pod (the plugin), list pods
// and StatefulSets (gc), list and watch a node's pods (the agent). The plugin takes a pod's StatefulSet from
// its owner references: nothing GETs a StatefulSet.
// Every failure becomes a KubeUnavailableError in one place (`unavailable` below); the only answer that is
// not an error is a real NotFound for the object asked for.
import { readFileSync } from "node:fs";
import { KubeUnavailableError } from "./errors.ts";
import { budgetLeft } from "../lib/deadline.ts";
import type { KubeConfig } from "./kubeconfig.ts";

export { KubeUnavailableError };
import type { List, Pod, StatefulSet, Status, WatchEvent } from "./types.ts";
import { isRecord } from "../lib/is_record.ts";

export interface KubeClientOptions {
  /** Per request (each page of a list), in milliseconds. Default 3000. */
  readonly timeoutMs?: number;
  /** Items per page when listing. Default 500, as kubectl. */
  readonly pageSize?: number;
}

/** A complete list and the resourceVersion it was read at: where a watch of the same selection starts. */
export interface VersionedList<T> {
  readonly items: T[];
  readonly resourceVersion: string;
}

export interface ListOptions {
  /** As the API takes it, e.g. "spec.nodeName=node-1". */
  readonly fieldSelector?: string;
  /** As the API takes it, e.g. "kube-ipam.io/network=net1,kube-ipam.io/block in (4-0a000,4-0a001)". */
  readonly labelSelector?: string;
  /**
   * Unset: the current state (a consistent read, from etcd where the API server cannot serve it from its
   * cache). "0": whatever the API server's watch cache holds. A version with resourceVersionMatch
   * "NotOlderThan": the cache once it has caught up with that version.
   */
  readonly resourceVersion?: string;
  readonly resourceVersionMatch?: "NotOlderThan" | "Exact";
  /** Aborts the list (the promise then rejects). */
  readonly signal?: AbortSignal;
}

export interface WatchOptions {
  /** Events after this version; from a list or the last event seen. */
  readonly resourceVersion: string;
  readonly fieldSelector?: string;
  readonly labelSelector?: string;
  /** Default application/json; e.g. PartialObjectMetadata for names and labels only. */
  readonly accept?: string;
  readonly allowWatchBookmarks?: boolean;
  /** The server ends the watch cleanly after this long. */
  readonly timeoutSeconds?: number;
  /** Ends the watch; the promise then resolves. */
  readonly signal: AbortSignal;
}

// A server that was asked to end a watch at timeoutSeconds and has not, has lost the connection silently
// (a half-open TCP connection gives no error): give up on it this much later.
const WATCH_GRACE_S = 30;

const TOKEN_REREAD_MS = 60_000; // as client-go: rotated service account tokens are picked up within a minute

/**
 * @example
 * const kube = new KubeClient(await loadKubeConfig(path));
 * const pod = await kube.getPod("default", "web-0"); // undefined if there is no such pod
 */
export class KubeClient {
  readonly server: string;
  readonly #config: KubeConfig;
  readonly #timeoutMs: number;
  readonly #pageSize: number;
  #token: string | undefined;
  #tokenReadAt = 0;

  constructor(config: KubeConfig, options: KubeClientOptions = {}) {
    this.server = config.server;
    this.#config = config;
    this.#timeoutMs = options.timeoutMs ?? 3000;
    this.#pageSize = options.pageSize ?? 500;
    this.#token = config.token;
    this.#tokenReadAt = Date.now();
  }

  /** The pod, or undefined when the API says it does not exist. */
  getPod(namespace: string, name: string): Promise<Pod | undefined> {
    return this.#get(`/api/v1/namespaces/${enc(namespace)}/pods/${enc(name)}`, "pods", name,
      `get pod "${namespace}/${name}"`);
  }

  /** Every pod in every namespace, all pages; throws rather than return part of the list. */
  listPods(): Promise<Pod[]> {
    return this.#list("/api/v1/pods", "list pods");
  }

  /** Pods of the selection, all pages, with the list's resourceVersion to watch from. */
  listPodsVersioned(options: ListOptions = {}): Promise<VersionedList<Pod>> {
    return this.listVersioned("/api/v1/pods", "list pods", options);
  }

  listStatefulSets(): Promise<StatefulSet[]> {
    return this.#list("/apis/apps/v1/statefulsets", "list StatefulSets");
  }

  /**
   * Streams pod events after `resourceVersion` to `onEvent`, in order, until the server ends the watch
   * (resolves) or `signal` aborts (resolves). Throws KubeUnavailableError when the watch cannot start, the
   * connection breaks, or the server sends an ERROR event (`status` is its code: 410 when the version is
   * too old and the caller must list again). An exception from `onEvent` ends the watch and is rethrown.
   */
  watchPods(options: WatchOptions, onEvent: (event: WatchEvent<Pod>) => void): Promise<void> {
    return this.watch("/api/v1/pods", "watch pods", options, onEvent);
  }

  /** As watchPods, for the collection at `path` (e.g. "/apis/kube-ipam.io/v1alpha1/ipallocations"). */
  async watch<T>(path: string, action: string, options: WatchOptions, onEvent: (event: WatchEvent<T>) => void): Promise<void> {
    const { signal, timeoutSeconds } = options;
    if (signal.aborted) return;
    let query = `?watch=true&resourceVersion=${enc(options.resourceVersion)}`;
    if (options.fieldSelector) query += `&fieldSelector=${enc(options.fieldSelector)}`;
    if (options.labelSelector) query += `&labelSelector=${enc(options.labelSelector)}`;
    if (options.allowWatchBookmarks) query += "&allowWatchBookmarks=true";
    if (timeoutSeconds) query += `&timeoutSeconds=${timeoutSeconds}`;
    // One controller for the caller's abort and both of our timeouts; which one fired decides the outcome.
    const ac = new AbortController();
    let timedOut: Error | undefined;
    const timeout = (error: Error) => () => {
      timedOut = error;
      ac.abort(error);
    };
    const onAbort = () => ac.abort(signal.reason);
    signal.addEventListener("abort", onAbort, { once: true });
    const connectTimer = setTimeout(timeout(new DOMException("timed out", "TimeoutError")), this.#timeoutMs);
    const deadline = timeoutSeconds ? timeoutSeconds + WATCH_GRACE_S : 0;
    const deadlineTimer = deadline
      ? setTimeout(timeout(new Error(`the watch did not end within ${deadline} s`)), deadline * 1000)
      : undefined;
    try {
      let res: Response;
      try {
        res = await this.#fetch(`${this.server}${path}${query}`, ac.signal, options.accept ? { method: "GET", accept: options.accept } : undefined);
      } catch (e) {
        if (signal.aborted) return;
        throw this.#unavailable(action, { error: timedOut ?? e, status: 0 });
      }
      clearTimeout(connectTimer);
      const { status, statusText } = res;
      if (status !== 200) {
        const text = await res.text().catch(() => "");
        throw this.#unavailable(action, { status, statusText, body: parseJSON(text) ?? text });
      }
      if (!res.body) return; // ended before it began: as an empty stream
      const reader = res.body.getReader();
      const decoder = new TextDecoder();
      let buffer = "";
      for (;;) {
        let chunk: Awaited<ReturnType<typeof reader.read>>;
        try {
          chunk = await reader.read();
        } catch (e) {
          if (signal.aborted) return;
          throw this.#unavailable(action, { error: timedOut ?? e, status, watching: true });
        }
        buffer += chunk.done ? decoder.decode() : decoder.decode(chunk.value, { stream: true });
        const lines = buffer.split("\n");
        buffer = chunk.done ? "" : lines.pop()!;
        for (const line of lines) {
          if (line.trim()) onEvent(this.#event<T>(line, action));
        }
        if (chunk.done) return;
      }
    } finally {
      clearTimeout(connectTimer);
      clearTimeout(deadlineTimer);
      signal.removeEventListener("abort", onAbort);
      ac.abort(); // closes the connection when we stop reading before the server ends the stream
    }
  }

  #event<T>(line: string, action: string): WatchEvent<T> {
    const event = parseJSON(line);
    if (isRecord(event) && isRecord(event.object)) {
      const { type, object } = event;
      if (type === "ERROR" && isStatus(object)) throw this.#unavailable(action, { event: object });
      if (isRecord(object.metadata) && (type === "ADDED" || type === "MODIFIED" || type === "DELETED" ||
        (type === "BOOKMARK" && typeof object.metadata.resourceVersion === "string"))) {
        return event as WatchEvent<T>;
      }
    }
    throw this.#unavailable(action, { status: 200, body: `watch event ${line}` });
  }

  async #get<T>(path: string, kind: string, name: string, action: string): Promise<T | undefined> {
    const { status, body } = await this.#request(path, action);
    if (status === 200 && isRecord(body) && isRecord(body.metadata)) return body as T;
    // Only the API's own NotFound for this very object: a 404 from a proxy or a wrong path is no answer.
    if (status === 404 && isStatus(body) && body.reason === "NotFound" && body.details?.kind === kind &&
      body.details.name === name) return undefined;
    throw this.#unavailable(action, { status, body });
  }

  async #list<T>(path: string, action: string): Promise<T[]> {
    return (await this.listVersioned<T>(path, action, {})).items;
  }

  /** Every item of the collection at `path` in the selection, all pages; throws rather than return part of it. */
  async listVersioned<T>(path: string, action: string, options: ListOptions = {}): Promise<VersionedList<T>> {
    const items: T[] = [];
    let selector = options.fieldSelector ? `&fieldSelector=${enc(options.fieldSelector)}` : "";
    if (options.labelSelector) selector += `&labelSelector=${enc(options.labelSelector)}`;
    // The version asked for goes with the first page only: the continue token carries it on.
    let version = "";
    if (options.resourceVersion !== undefined) version += `&resourceVersion=${enc(options.resourceVersion)}`;
    if (options.resourceVersionMatch) version += `&resourceVersionMatch=${options.resourceVersionMatch}`;
    let token = "";
    let resourceVersion: unknown;
    do {
      const query = `?limit=${this.#pageSize}${selector}${token ? `&continue=${enc(token)}` : version}`;
      const { status, body } = await this.#request(path + query, action, options.signal);
      const list = body as List<T>;
      // A custom resource's empty list may say "items": null.
      if (status !== 200 || !isRecord(body) || !(Array.isArray(list.items) || list.items === null) || !isRecord(body.metadata)) {
        throw this.#unavailable(action, { status, body });
      }
      items.push(...(list.items ?? []));
      resourceVersion = list.metadata.resourceVersion;
      const next: unknown = list.metadata.continue;
      token = typeof next === "string" ? next : "";
    } while (token);
    // Only lists that will be watched need it; the stand-in and every API server send it.
    return { items, resourceVersion: typeof resourceVersion === "string" ? resourceVersion : "" };
  }

  #fetch(url: string, signal: AbortSignal, write?: Write): Promise<Response> {
    const { ca, cert, key, insecureSkipTLSVerify } = this.#config;
    const headers: Record<string, string> = { Accept: write?.accept ?? "application/json", "User-Agent": "kube-ipam" };
    const token = this.#currentToken();
    if (token) headers.Authorization = `Bearer ${token}`;
    if (write?.body !== undefined) headers["Content-Type"] = write.contentType ?? "application/json";
    return fetch(url, {
      method: write?.method ?? "GET",
      body: write?.body === undefined ? undefined : JSON.stringify(write.body),
      headers,
      redirect: "manual",
      signal,
      tls: { ca, cert, key, rejectUnauthorized: !insecureSkipTLSVerify },
    });
  }

  /**
   * Any request, for the stores' objects: the answer when its status is one of `answers` (each a real answer
   * the caller handles: 201 Created, 404 NotFound, 409 AlreadyExists or Conflict), else KubeUnavailableError.
   */
  send(method: string, path: string, action: string, options: SendOptions = {}): Promise<{ status: number; body: unknown }> {
    return this.#request(path, action, undefined, { method, body: options.body, contentType: options.contentType, accept: options.accept },
      options.answers ?? [200, 201]);
  }

  async #request(path: string, action: string, abort?: AbortSignal, write?: Write,
    answers: readonly number[] = [200, 404]): Promise<{ status: number; body: unknown }> {
    let status = 0;
    let statusText = "";
    let text: string;
    // A request's own limit, within what is left of the CNI invocation's budget (lib/deadline.ts).
    const limit = budgetLeft(this.#timeoutMs);
    try {
      if (limit <= 0) throw new DOMException("no time left", "TimeoutError");
      const timeout = AbortSignal.timeout(limit);
      const res = await this.#fetch(this.server + path, abort ? AbortSignal.any([timeout, abort]) : timeout, write);
      ({ status, statusText } = res);
      text = await res.text();
    } catch (e) {
      throw this.#unavailable(action, { error: e, status, timeoutMs: limit });
    }
    const body = parseJSON(text);
    if (!answers.includes(status) || body === undefined) {
      throw this.#unavailable(action, { status, statusText, body: body ?? text });
    }
    return { status, body };
  }

  #currentToken(): string | undefined {
    const file = this.#config.tokenFile;
    if (file && Date.now() - this.#tokenReadAt > TOKEN_REREAD_MS) {
      try {
        this.#token = readFileSync(file, "utf8").trim();
      } catch {
        // keep the token we have: the file may be between rotations
      }
      this.#tokenReadAt = Date.now();
    }
    return this.#token;
  }

  /** The one place where failures become messages. */
  #unavailable(action: string, failure: Failure): KubeUnavailableError {
    const reason = "event" in failure
      ? eventReason(failure.event)
      : "error" in failure
      ? transportReason(failure.error, failure.timeoutMs ?? this.#timeoutMs, failure.watching)
      : httpReason(failure.status, failure.statusText, failure.body);
    const status = ("event" in failure ? failure.event.code : failure.status) || undefined;
    const cause = "error" in failure ? failure.error : undefined;
    return new KubeUnavailableError(this.server, `Cannot ${action} from Kubernetes API "${this.server}": ${reason}`,
      status, { cause });
  }
}

interface Write {
  readonly method: string;
  readonly body?: unknown;
  readonly contentType?: string;
  readonly accept?: string;
}

export interface SendOptions {
  /** Sent as JSON. */
  readonly body?: unknown;
  /** Default application/json; "application/merge-patch+json" for a merge patch. */
  readonly contentType?: string;
  /** Default application/json; e.g. a PartialObjectMetadataList for names and labels only. */
  readonly accept?: string;
  /** The statuses that are answers. Default 200 and 201. */
  readonly answers?: readonly number[];
}

type Failure =
  | { readonly error: unknown; readonly status: number; readonly watching?: boolean; readonly timeoutMs?: number }
  | { readonly status: number; readonly statusText?: string; readonly body: unknown }
  | { readonly event: Status };

const STATUS_TEXT: Readonly<Record<number, string>> = {
  200: "OK", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 410: "Gone",
  429: "Too Many Requests", 500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable",
  504: "Gateway Timeout",
};

function httpReason(status: number, statusText: string | undefined, body: unknown): string {
  const head = `HTTP ${status} ${statusText || STATUS_TEXT[status] || ""}`.trimEnd();
  if (isStatus(body)) {
    const msg = body.message ?? body.reason;
    return msg && msg !== statusText && msg !== STATUS_TEXT[status] ? `${head}: ${msg}` : head;
  }
  if (status === 200) return `${head}: unexpected response ${clip(typeof body === "string" ? body : JSON.stringify(body))}`;
  return head;
}

// Bun's fetch rejects with a TypeError carrying a Node-style `code`, or a DOMException "TimeoutError".
const CODES: Readonly<Record<string, string>> = {
  ECONNREFUSED: "connection refused",
  ENOTFOUND: "host not found",
  ETIMEDOUT: "connection timed out",
  EHOSTUNREACH: "host unreachable",
  ECONNRESET: "connection reset by the server (with client certificates: is this one signed by a CA the server trusts?)",
  EPROTO: "TLS handshake failed (does the server require a client certificate?)",
};

/** An ERROR event of a watch: the API answered 200, then this Status in the stream. */
function eventReason(s: Status): string {
  return `watch ERROR event ${s.code} ${s.reason ?? ""}${s.message ? `: ${s.message}` : ""}`.replace(/ +:/, ":");
}

function transportReason(error: unknown, timeoutMs: number, watching = false): string {
  const e = error as { name?: string; code?: string; message?: string };
  if (e?.name === "TimeoutError") {
    return timeoutMs > 0 ? `no response within ${timeoutMs} ms` : "no time left of the request's budget (ipam.timeoutSeconds)";
  }
  const code = typeof e?.code === "string" ? e.code : "";
  // A reset after the answer began is a dropped connection, not the TLS refusal it is when connecting.
  if (watching && code === "ECONNRESET") return "connection lost during the watch (ECONNRESET)";
  if (CODES[code]) return `${CODES[code]} (${code})`;
  const msg = String(e?.message ?? error).replace(/\. For more information, pass `verbose: true`.*$/, "");
  if (/CERT|SELF_SIGNED|VERIFY|ALTNAME/.test(code)) {
    return `server certificate not trusted: ${msg} (${code}): check certificate-authority and server`;
  }
  return code && !msg.includes(code) ? `${msg} (${code})` : msg;
}

function parseJSON(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

export function isStatus(v: unknown): v is Status {
  return isRecord(v) && v.kind === "Status";
}

function clip(s: string): string {
  return s.length > 80 ? `${s.slice(0, 80)}...` : s;
}

const enc = encodeURIComponent;
