// A small etcd v3 client over etcd's JSON gateway (`/v3/kv/*`, `/v3/lease/*`), with fetch and no
// dependency: the plugin starts once per pod, and this costs a few milliseconds where a gRPC client costs
// a hundred (see DESIGN.md, "Why these dependencies"). Works with etcd 3.4 and later.
import {
  decodeRange, type DeleteOptions, type KeyValue, int64, type RangeOptions, rangeRequest, type RangeResult,
} from "./codec.ts";
import { EtcdConfigError, EtcdRequestError } from "./errors.ts";
import { parseEndpoints, Transport } from "./transport.ts";
import { type PutOptions, put, Txn } from "./txn.ts";
import { type WatchEvent, type WatchOptions, watchRange } from "./watch.ts";

export type { WatchEvent, WatchOptions } from "./watch.ts";
export { type DeleteOptions, type KeyValue, prefixEnd, type RangeOptions, type RangeResult } from "./codec.ts";
export {
  type EtcdError, EtcdConfigError, EtcdRequestError, EtcdTlsError, EtcdUnavailableError,
} from "./errors.ts";
export {
  type CompareOp, type CompareTarget, createRevision, del, get, modRevision, put, type PutOptions, Txn, type TxnOp,
  type TxnResponse, type TxnResult, value, version,
} from "./txn.ts";

export interface EtcdClientOptions {
  /** e.g. `["https://10.0.0.1:2379", "https://10.0.0.2:2379"]`; tried in turn when one fails. */
  readonly endpoints: readonly string[];
  /** Client certificate and key (PEM files) for mutual TLS; both or neither. */
  readonly certFile?: string;
  readonly keyFile?: string;
  /** CA bundle (PEM) that signed the server certificates; the system CAs when not set. */
  readonly caFile?: string;
  /** Limit for one attempt against one endpoint; default 2000. */
  readonly requestTimeoutMs?: number;
  /** Limit for a whole call, across endpoints and retries; default 8000. */
  readonly deadlineMs?: number;
}

export interface Lease {
  readonly id: bigint;
  /** Seconds, as granted. */
  readonly ttl: number;
}

/**
 * An etcd v3 client. Every call fails over between endpoints until its deadline and throws an `EtcdError`:
 * `EtcdUnavailableError` (retryable) when no endpoint answered, `EtcdTlsError`, `EtcdRequestError`.
 *
 * Writes are not safe to repeat blindly: a put or txn that timed out, or whose connection broke, may have
 * been applied, and the retry on the next endpoint then sees its effect. Callers make writes idempotent
 * (a claim that finds the key already held by itself is a success) or read back to verify.
 *
 * @example
 * const etcd = await EtcdClient.create({ endpoints: ["http://127.0.0.1:2379"] });
 * const { succeeded } = await etcd.txn().if(createRevision("/ipam/10.0.0.5"), "==", 0n)
 *   .then(put("/ipam/10.0.0.5", record)).commit();
 */
export class EtcdClient {
  readonly #transport: Transport;

  private constructor(transport: Transport) {
    this.#transport = transport;
  }

  /** Checks the options and reads the TLS files; throws `EtcdConfigError`. */
  static async create(opts: EtcdClientOptions): Promise<EtcdClient> {
    const endpoints = parseEndpoints(opts.endpoints);
    if (Boolean(opts.certFile) !== Boolean(opts.keyFile)) {
      throw new EtcdConfigError(`Cannot use ${opts.certFile ? `certFile "${opts.certFile}" without keyFile`
        : `keyFile "${opts.keyFile}" without certFile`}: set both for mutual TLS`);
    }
    // One after the other, so that the error names the first bad option, always the same one.
    const cert = await readPem("certFile", opts.certFile, "CERTIFICATE");
    const key = await readPem("keyFile", opts.keyFile, "PRIVATE KEY");
    const ca = await readPem("caFile", opts.caFile, "CERTIFICATE");
    const tls = cert || ca ? { ...(cert && { cert }), ...(key && { key }), ...(ca && { ca }) } : undefined;
    return new EtcdClient(new Transport({
      endpoints,
      files: { certFile: opts.certFile, keyFile: opts.keyFile, caFile: opts.caFile },
      tls,
      requestTimeoutMs: milliseconds("requestTimeoutMs", opts.requestTimeoutMs, 2000),
      deadlineMs: milliseconds("deadlineMs", opts.deadlineMs, 8000),
    }));
  }

  get endpoints(): readonly string[] {
    return this.#transport.endpoints;
  }

  /** Requests that failed and were retried on another endpoint or later, since this client was made. */
  get retries(): number {
    return this.#transport.failedAttempts;
  }

  /** Watches [key, end) until `opts.signal` aborts; see watch.ts. */
  watch(key: string, opts: WatchOptions, onEvents: (events: WatchEvent[]) => void): Promise<void> {
    return watchRange(this.#transport, key, opts, onEvents);
  }

  /** Reads one key, a range (`end`), or every key under a prefix (`prefix: true`), in key order. */
  async range(key: string, opts?: RangeOptions): Promise<RangeResult> {
    return decodeRange((await this.#transport.post("/v3/kv/range", rangeRequest(key, opts))) as object);
  }

  /** Reads one key; undefined when it does not exist. */
  async get(key: string): Promise<KeyValue | undefined> {
    return (await this.range(key)).kvs[0];
  }

  /** Writes one key. See the class comment on writes that time out. */
  async put(key: string, value: string, opts?: PutOptions): Promise<{ revision: bigint }> {
    const raw = (await this.#transport.post("/v3/kv/put", put(key, value, opts).request)) as Header;
    return { revision: int64(raw.header?.revision) };
  }

  /** Deletes one key, a range or a prefix; deleting nothing is not an error. */
  async delete(key: string, opts?: DeleteOptions): Promise<{ deleted: number; revision: bigint }> {
    const raw = (await this.#transport.post("/v3/kv/deleterange", rangeRequest(key, opts))) as Header & {
      deleted?: string;
    };
    return { deleted: Number(int64(raw.deleted)), revision: int64(raw.header?.revision) };
  }

  /** Starts a transaction: `.if(...)` compares, `.then(...)`/`.else(...)` operations, `.commit()`. */
  txn(): Txn {
    return new Txn((body) => this.#transport.post("/v3/kv/txn", body));
  }

  /** The alarms raised in the cluster (NOSPACE: out of space; CORRUPT), one per member and kind. */
  async alarms(): Promise<{ memberID: string; alarm: string }[]> {
    const raw = (await this.#transport.post("/v3/maintenance/alarm", { action: "GET" })) as {
      alarms?: { memberID?: string; alarm?: string }[];
    };
    return (raw.alarms ?? []).filter((a) => a.alarm && a.alarm !== "NONE").map((a) => ({ memberID: String(a.memberID ?? ""), alarm: a.alarm! }));
  }

  /** Grants a lease of `ttlSeconds`; keys put with it vanish when it expires or is revoked. */
  async leaseGrant(ttlSeconds: number): Promise<Lease> {
    const raw = (await this.#transport.post("/v3/lease/grant", { TTL: String(ttlSeconds) })) as LeaseAnswer;
    return { id: int64(raw.ID), ttl: Number(int64(raw.TTL)) };
  }

  /** Renews a lease once; returns the seconds it now has left, 0 when it no longer exists. */
  async leaseKeepAliveOnce(id: bigint): Promise<number> {
    // A stream in gRPC; the gateway answers one `{"result": ...}` per request line and ends with the body.
    const raw = (await this.#transport.post("/v3/lease/keepalive", { ID: String(id) })) as { result?: LeaseAnswer };
    return Math.max(0, Number(int64(raw.result?.TTL)));
  }

  /** Revokes a lease and deletes its keys; a lease that is already gone is not an error. */
  async leaseRevoke(id: bigint): Promise<void> {
    try {
      await this.#transport.post("/v3/lease/revoke", { ID: String(id) });
    } catch (err) {
      if (!(err instanceof EtcdRequestError && err.code === 5)) throw err; // 5: NOT_FOUND
    }
  }
}

interface Header {
  header?: { revision?: string };
}

interface LeaseAnswer {
  ID?: string;
  TTL?: string;
}

async function readPem(option: string, path: string | undefined, label: string): Promise<string | undefined> {
  if (!path) return undefined;
  let text: string;
  try {
    text = await Bun.file(path).text();
  } catch (cause) {
    const code = (cause as { code?: string }).code;
    const why = code === "ENOENT" ? "no such file" : code === "EACCES" ? "permission denied"
      : code === "EISDIR" ? "it is a directory" : String((cause as Error).message ?? cause);
    throw new EtcdConfigError(`Cannot read ${option} "${path}": ${why}`, { cause });
  }
  if (!new RegExp(`-----BEGIN [A-Z ]*${label}-----`).test(text)) {
    throw new EtcdConfigError(`Cannot use ${option} "${path}": it holds no PEM ${label.toLowerCase()}`);
  }
  return text;
}

function milliseconds(option: string, v: number | undefined, fallback: number): number {
  if (v === undefined) return fallback;
  if (!Number.isFinite(v) || v <= 0) throw new EtcdConfigError(`Cannot use ${option} "${v}": not a positive number`);
  return v;
}
