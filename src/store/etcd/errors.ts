// The etcd client's errors, and the one place that turns what fetch and etcd's JSON gateway report
// into them. Only this file knows Bun's error codes and gRPC status codes.

/** Options naming the TLS files, so that a TLS error can say which one to check. */
export interface TlsFiles {
  readonly certFile?: string;
  readonly keyFile?: string;
  readonly caFile?: string;
}

/** Bad client options: no endpoints, a malformed URL, a missing or unreadable file. */
export class EtcdConfigError extends Error {
  override readonly name = "EtcdConfigError";
  readonly retryable = false;
}

/** No endpoint answered before the deadline. Worth retrying later: etcd may be restarting or electing a leader. */
export class EtcdUnavailableError extends Error {
  override readonly name = "EtcdUnavailableError";
  readonly retryable = true;
  constructor(message: string, readonly endpoints: readonly string[], options?: ErrorOptions) {
    super(message, options);
  }
}

/** TLS could not be set up: the server certificate is not trusted, or the server refused ours. */
export class EtcdTlsError extends Error {
  override readonly name = "EtcdTlsError";
  readonly retryable = false;
  constructor(message: string, readonly endpoint: string, options?: ErrorOptions) {
    super(message, options);
  }
}

/** etcd answered and refused the request; `code` is the gRPC status code (5 = not found, 3 = invalid argument). */
export class EtcdRequestError extends Error {
  override readonly name = "EtcdRequestError";
  readonly retryable = false;
  constructor(message: string, readonly endpoint: string, readonly code: number, options?: ErrorOptions) {
    super(message, options);
  }
}

export type EtcdError = EtcdConfigError | EtcdUnavailableError | EtcdTlsError | EtcdRequestError;

/** How one attempt against one endpoint failed. `retryable` failures move on to the next endpoint. */
export type Failure =
  | { readonly retryable: true; readonly endpoint: string; readonly reason: string; readonly cause: unknown }
  | { readonly retryable: false; readonly error: EtcdTlsError | EtcdRequestError };

/** gRPC RESOURCE_EXHAUSTED, which etcd also answers when its NOSPACE alarm is raised. */
export const RESOURCE_EXHAUSTED = 8;
const NO_SPACE = /database space exceeded/;
// gRPC codes that mean "this member cannot serve now": DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, UNAVAILABLE.
const RETRYABLE_GRPC = new Set([4, 8, 14]);
const RETRYABLE_MESSAGE = /leader changed|no leader|timed out|too many requests|not capable|stopped|unhealthy/i;
// Certificate verification failures as Bun reports them (OpenSSL's names).
const SERVER_CERT_CODE = /CERT|SELF_SIGNED|UNABLE_TO_|ALTNAME|HOSTNAME/;

const NETWORK_REASONS: Record<string, string> = {
  ECONNREFUSED: "connection refused",
  ECONNRESET: "connection reset",
  ETIMEDOUT: "connection timed out",
  EHOSTUNREACH: "host unreachable",
  ENETUNREACH: "network unreachable",
  ENOTFOUND: "host name not found",
  EAI_AGAIN: "host name lookup failed",
};

/** Maps an exception thrown by fetch (or by reading its body) for one endpoint. */
export function fetchFailure(err: unknown, endpoint: string, timeoutMs: number, tls: TlsFiles): Failure {
  const e = err as { name?: string; code?: string; message?: string };
  if (e?.name === "TimeoutError" || e?.name === "AbortError") {
    return { retryable: true, endpoint, reason: `no answer within ${timeoutMs} ms`, cause: err };
  }
  const code = typeof e?.code === "string" ? e.code : "";
  const detail = `${e?.message ?? String(err)}${code && !e?.message?.includes(code) ? ` (${code})` : ""}`;
  if (endpoint.startsWith("https:") && code === "ERR_TLS_CERT_ALTNAME_INVALID") {
    return tlsFailure(`The certificate of etcd at "${endpoint}" does not name its host: ` +
      `use a host name or address listed in the server certificate`, endpoint, err);
  }
  if (endpoint.startsWith("https:") && SERVER_CERT_CODE.test(code)) {
    const against = tls.caFile ? `caFile "${tls.caFile}"` : "the system CAs (caFile is not set)";
    return tlsFailure(`Cannot verify the certificate of etcd at "${endpoint}" against ${against}: ${detail}: ` +
      `check that caFile holds the CA that signed the server certificate`, endpoint, err);
  }
  if (endpoint.startsWith("https:") && code === "EPROTO") {
    const check = tls.certFile
      ? `check that certFile "${tls.certFile}" is signed by a CA the server trusts`
      : "the server probably requires a client certificate: set certFile and keyFile";
    return tlsFailure(`etcd at "${endpoint}" refused the TLS handshake: ${check}`, endpoint, err);
  }
  if (endpoint.startsWith("https:") && code === "FailedToOpenSocket" && (tls.certFile || tls.caFile)) {
    // Bun reports PEM it cannot load, or a key that does not match its certificate, this way.
    const checks = [
      tls.certFile && `certFile "${tls.certFile}" and keyFile "${tls.keyFile}" belong together`,
      tls.caFile && `caFile "${tls.caFile}" holds valid certificates`,
    ].filter(Boolean);
    return tlsFailure(`Cannot set up TLS to etcd at "${endpoint}": check that ${checks.join(" and that ")}`,
      endpoint, err);
  }
  return { retryable: true, endpoint, reason: NETWORK_REASONS[code] ?? detail, cause: err };
}

/** Maps a non-2xx answer, or an error carried in a 2xx body (lease keepalive streams, lease grant). */
export function answerFailure(status: number, body: unknown, endpoint: string): Failure {
  // etcd 3.4: {"error": "...", "message": "...", "code": 14}; streams: {"error": {...}}; proxies: text.
  type ErrorBody = { error?: unknown; message?: unknown; code?: unknown };
  const b = (typeof body === "object" && body !== null ? body : {}) as ErrorBody;
  const inner = typeof b.error === "object" && b.error !== null ? (b.error as ErrorBody) : b;
  const message = typeof inner.message === "string" && inner.message ? inner.message
    : typeof inner.error === "string" && inner.error ? inner.error
    : typeof body === "string" && body.trim() ? `HTTP status ${status}: "${body.trim().slice(0, 200)}"`
    : `HTTP status ${status}`;
  const code = typeof inner.code === "number" ? inner.code : 2;
  if (NO_SPACE.test(message)) {
    // Every member shares the alarm: no other endpoint will take the write, and retrying only waits.
    return { retryable: false, error: new EtcdRequestError(`etcd at "${endpoint}" is out of space (alarm NOSPACE: ` +
      `${message}; its --quota-backend-bytes is reached): it refuses every write that adds data, deletes still work, ` +
      "until an operator compacts and defragments it and disarms the alarm (etcdctl alarm disarm)", endpoint, RESOURCE_EXHAUSTED, { cause: body }) };
  }
  if (status >= 500 || RETRYABLE_GRPC.has(code) || RETRYABLE_MESSAGE.test(message)) {
    return { retryable: true, endpoint, reason: message, cause: body };
  }
  const error = new EtcdRequestError(`etcd at "${endpoint}" refused the request: ${message}`, endpoint, code,
    { cause: body });
  return { retryable: false, error };
}

function tlsFailure(message: string, endpoint: string, cause: unknown): Failure {
  return { retryable: false, error: new EtcdTlsError(message, endpoint, { cause }) };
}

/**
 * The error for a call that ran out of time: TLS trouble on some endpoint wins (it will not heal by
 * waiting); otherwise every endpoint tried, with its last reason.
 */
export function exhausted(endpoints: readonly string[], last: ReadonlyMap<string, Failure>): EtcdError {
  const reasons = new Map<string, string>();
  let cause: unknown;
  for (const endpoint of endpoints) {
    const f = last.get(endpoint);
    if (f && !f.retryable) return f.error;
    reasons.set(endpoint, f ? f.reason : "not tried before the deadline");
    cause ??= f?.cause;
  }
  const distinct = new Set(reasons.values());
  const where = distinct.size === 1
    ? `${[...reasons.keys()].map((e) => `"${e}"`).join(", ")}: ${[...distinct][0]}`
    : [...reasons].map(([e, r]) => `"${e}": ${r}`).join("; ");
  return new EtcdUnavailableError(`Cannot reach etcd at ${where}`, endpoints, { cause });
}
