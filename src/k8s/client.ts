// Reads pods and StatefulSets from the Kubernetes API: plain HTTPS GETs with Bun's fetch.
// Every failure becomes a KubeUnavailableError in one place (`unavailable` below); the only answer that is
// not an error is a real NotFound for the object asked for.
import { readFileSync } from "node:fs";
import { KubeUnavailableError } from "./errors.ts";
import type { KubeConfig } from "./kubeconfig.ts";

export { KubeUnavailableError };
import type { List, Pod, StatefulSet, Status } from "./types.ts";
import { isRecord } from "../lib/is_record.ts";

export interface KubeClientOptions {
  /** Per request (each page of a list), in milliseconds. Default 3000. */
  readonly timeoutMs?: number;
  /** Items per page when listing. Default 500, as kubectl. */
  readonly pageSize?: number;
}


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

  getStatefulSet(namespace: string, name: string): Promise<StatefulSet | undefined> {
    return this.#get(`/apis/apps/v1/namespaces/${enc(namespace)}/statefulsets/${enc(name)}`, "statefulsets", name,
      `get StatefulSet "${namespace}/${name}"`);
  }

  /** Every pod in every namespace, all pages; throws rather than return part of the list. */
  listPods(): Promise<Pod[]> {
    return this.#list("/api/v1/pods", "list pods");
  }

  listStatefulSets(): Promise<StatefulSet[]> {
    return this.#list("/apis/apps/v1/statefulsets", "list StatefulSets");
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
    const items: T[] = [];
    let token = "";
    do {
      const query = `?limit=${this.#pageSize}${token ? `&continue=${enc(token)}` : ""}`;
      const { status, body } = await this.#request(path + query, action);
      const list = body as List<T>;
      if (status !== 200 || !isRecord(body) || !Array.isArray(list.items) || !isRecord(body.metadata)) {
        throw this.#unavailable(action, { status, body });
      }
      items.push(...list.items);
      const next: unknown = list.metadata.continue;
      token = typeof next === "string" ? next : "";
    } while (token);
    return items;
  }

  async #request(path: string, action: string): Promise<{ status: number; body: unknown }> {
    const { ca, cert, key, insecureSkipTLSVerify } = this.#config;
    const headers: Record<string, string> = { Accept: "application/json", "User-Agent": "kube-ipam" };
    const token = this.#currentToken();
    if (token) headers.Authorization = `Bearer ${token}`;
    let status = 0;
    let statusText = "";
    let text: string;
    try {
      const res = await fetch(this.server + path, {
        headers,
        redirect: "manual",
        signal: AbortSignal.timeout(this.#timeoutMs),
        tls: { ca, cert, key, rejectUnauthorized: !insecureSkipTLSVerify },
      });
      ({ status, statusText } = res);
      text = await res.text();
    } catch (e) {
      throw this.#unavailable(action, { error: e, status });
    }
    const body = parseJSON(text);
    if ((status !== 200 && status !== 404) || body === undefined) {
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
    const reason = "error" in failure
      ? transportReason(failure.error, this.#timeoutMs)
      : httpReason(failure.status, failure.statusText, failure.body);
    const status = failure.status || undefined;
    const cause = "error" in failure ? failure.error : undefined;
    return new KubeUnavailableError(this.server, `Cannot ${action} from Kubernetes API "${this.server}": ${reason}`,
      status, { cause });
  }
}

type Failure =
  | { readonly error: unknown; readonly status: number }
  | { readonly status: number; readonly statusText?: string; readonly body: unknown };

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

function transportReason(error: unknown, timeoutMs: number): string {
  const e = error as { name?: string; code?: string; message?: string };
  if (e?.name === "TimeoutError") return `no response within ${timeoutMs} ms`;
  const code = typeof e?.code === "string" ? e.code : "";
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

function isStatus(v: unknown): v is Status {
  return isRecord(v) && v.kind === "Status";
}

function clip(s: string): string {
  return s.length > 80 ? `${s.slice(0, 80)}...` : s;
}

const enc = encodeURIComponent;
