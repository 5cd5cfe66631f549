// One JSON POST to etcd's gateway, with failover: a connection-level failure, a timeout or a "no leader"
// answer moves on to the next endpoint, round after round with a short backoff, until the call's deadline.
import {
  answerFailure, EtcdConfigError, EtcdRequestError, exhausted, type Failure, fetchFailure, type TlsFiles,
} from "./errors.ts";
import { budgetLeft } from "../../lib/deadline.ts";
import { type EndpointProblem, parseEndpoint } from "../../lib/endpoint.ts";

export interface TransportOptions {
  readonly endpoints: readonly string[];
  readonly files: TlsFiles;
  readonly tls: { readonly cert?: string; readonly key?: string; readonly ca?: string } | undefined;
  readonly requestTimeoutMs: number;
  readonly deadlineMs: number;
}

type Attempt = { readonly ok: true; readonly body: unknown } | { readonly ok: false; readonly failure: Failure };

// For each endpoint list, the endpoint that answered last, shared by the clients of the process: the next
// call starts there instead of waiting again for a dead first endpoint.
const lastAnswered = new Map<string, string>();

export class Transport {
  readonly #opts: TransportOptions;
  readonly #key: string;

  constructor(opts: TransportOptions) {
    this.#opts = opts;
    this.#key = opts.endpoints.join(",");
  }

  #failedAttempts = 0;

  get endpoints(): readonly string[] {
    return this.#opts.endpoints;
  }

  /** Attempts that failed and moved on to another endpoint or round (the retries metric). */
  get failedAttempts(): number {
    return this.#failedAttempts;
  }

  /**
   * Opens a streaming POST (watch) on the first endpoint that answers, starting with the one that
   * answered last; the caller reads the body until it ends or `signal` aborts it.
   */
  async openStream(path: string, body: unknown, signal: AbortSignal): Promise<{ endpoint: string; response: Response }> {
    const last = new Map<string, Failure>();
    for (const endpoint of this.#order()) {
      try {
        const response = await fetch(endpoint + path, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify(body),
          signal,
          tls: this.#opts.tls,
        });
        if (response.ok && response.body) {
          lastAnswered.set(this.#key, endpoint);
          return { endpoint, response };
        }
        last.set(endpoint, answerFailure(response.status, await response.text(), endpoint));
      } catch (err) {
        if (signal.aborted) throw err;
        last.set(endpoint, fetchFailure(err, endpoint, this.#opts.requestTimeoutMs, this.#opts.files));
      }
      this.#failedAttempts++;
    }
    throw exhausted(this.#opts.endpoints, last);
  }

  /** POSTs `body` as JSON to `path` and returns the parsed answer; throws an `EtcdError`. */
  async post(path: string, body: unknown): Promise<unknown> {
    const { endpoints, requestTimeoutMs, deadlineMs } = this.#opts;
    const payload = JSON.stringify(body);
    const deadline = Date.now() + budgetLeft(deadlineMs); // the call's own limit, within the invocation's
    const last = new Map<string, Failure>();
    const healable = (e: string) => last.get(e)?.retryable !== false; // TLS trouble does not heal by retrying
    for (let round = 0; ; round++) {
      for (const endpoint of this.#order()) {
        if (!healable(endpoint)) continue;
        const left = deadline - Date.now();
        if (left <= 0) break;
        const attempt = await this.#attempt(endpoint, path, payload, Math.min(requestTimeoutMs, left));
        if (attempt.ok) {
          lastAnswered.set(this.#key, endpoint);
          return attempt.body;
        }
        const f = attempt.failure;
        if (!f.retryable && f.error instanceof EtcdRequestError) throw f.error; // etcd answered: no failover
        last.set(endpoint, f);
        this.#failedAttempts++;
      }
      const left = deadline - Date.now();
      if (left <= 0 || !endpoints.some(healable)) throw exhausted(endpoints, last);
      await Bun.sleep(Math.min(left, backoffMs(round)));
    }
  }

  /** The endpoints, starting with the one that answered last. */
  #order(): readonly string[] {
    const { endpoints } = this.#opts;
    const last = lastAnswered.get(this.#key);
    const i = last === undefined ? -1 : endpoints.indexOf(last);
    return i <= 0 ? endpoints : [...endpoints.slice(i), ...endpoints.slice(0, i)];
  }

  async #attempt(endpoint: string, path: string, payload: string, timeoutMs: number): Promise<Attempt> {
    let status: number;
    let text: string;
    try {
      const res = await fetch(endpoint + path, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: payload,
        signal: AbortSignal.timeout(timeoutMs),
        tls: this.#opts.tls,
      });
      status = res.status;
      text = await res.text();
    } catch (err) {
      return { ok: false, failure: fetchFailure(err, endpoint, timeoutMs, this.#opts.files) };
    }
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      return { ok: false, failure: answerFailure(status, text, endpoint) };
    }
    // Streams (lease keepalive) and lease grants report errors inside a 200 answer.
    const error = (body as { error?: unknown } | null)?.error;
    if (status < 200 || status > 299 || (error !== undefined && error !== "")) {
      return { ok: false, failure: answerFailure(status, body, endpoint) };
    }
    return { ok: true, body };
  }
}

function backoffMs(round: number): number {
  const base = Math.min(500, 25 * 2 ** round);
  return base / 2 + Math.random() * (base / 2); // jitter, so that nodes do not retry in step
}

const PROBLEM: Record<EndpointProblem, string> = {
  "not a URL": `not a URL such as "https://127.0.0.1:2379"`,
  "not http or https": "the scheme must be http or https",
  "more than scheme, host, port and path": "only scheme, host, port and path are allowed",
};

/** Checks and normalises endpoint URLs (lib/endpoint.ts). */
export function parseEndpoints(raw: readonly string[]): string[] {
  if (!Array.isArray(raw) || raw.length === 0) {
    throw new EtcdConfigError("Cannot create etcd client: no endpoints given");
  }
  return raw.map((s) => {
    const parsed = parseEndpoint(String(s));
    if ("problem" in parsed) throw new EtcdConfigError(`Cannot use etcd endpoint "${s}": ${PROBLEM[parsed.problem]}`);
    return parsed.endpoint;
  });
}
