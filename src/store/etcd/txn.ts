// Transactions that read like the invariant they keep:
//   client.txn().if(createRevision(key), "==", 0n).then(put(key, record)).else(get(key)).commit()
// All compares must hold for the `then` operations to run; otherwise the `else` operations run.
import {
  decodeRange, type DeleteOptions, encode, int64, type RangeOptions, rangeRequest, type RangeResult, type RawRange,
} from "./codec.ts";

/** What a compare looks at: a key's create or mod revision, its version (writes since creation), or its value. */
export interface CompareTarget<T extends bigint | string> {
  readonly target: "CREATE" | "MOD" | "VERSION" | "VALUE";
  readonly key: string;
  /** Only here to tie the compared value's type to the target. */
  readonly _value?: T;
}

/** Revision of the key's creation; 0n when the key does not exist. */
export function createRevision(key: string): CompareTarget<bigint> {
  return { target: "CREATE", key };
}

/** Revision of the key's last write; 0n when the key does not exist. */
export function modRevision(key: string): CompareTarget<bigint> {
  return { target: "MOD", key };
}

/** Number of writes since the key was created; 0n when it does not exist. */
export function version(key: string): CompareTarget<bigint> {
  return { target: "VERSION", key };
}

/** The key's value. */
export function value(key: string): CompareTarget<string> {
  return { target: "VALUE", key };
}

export type CompareOp = "==" | "!=" | ">" | "<";

const RESULT: Record<CompareOp, string> = { "==": "EQUAL", "!=": "NOT_EQUAL", ">": "GREATER", "<": "LESS" };
const FIELD = { CREATE: "create_revision", MOD: "mod_revision", VERSION: "version", VALUE: "value" } as const;

export interface PutOptions {
  /** Attach the key to this lease: it is deleted when the lease expires or is revoked. */
  readonly lease?: bigint;
}

export type TxnOp =
  | { readonly kind: "put"; readonly request: Record<string, unknown> }
  | { readonly kind: "range"; readonly request: Record<string, unknown> }
  | { readonly kind: "delete"; readonly request: Record<string, unknown> };

export function put(key: string, value: string, opts: PutOptions = {}): TxnOp {
  const request: Record<string, unknown> = { key: encode(key), value: encode(value) };
  if (opts.lease) request.lease = String(opts.lease);
  return { kind: "put", request };
}

/** Reads `key` (or a range of keys, see RangeOptions); its answer is a `range` response. */
export function get(key: string, opts?: RangeOptions): TxnOp {
  return { kind: "range", request: rangeRequest(key, opts) };
}

/** Deletes `key` (or a range); `delete` is a reserved word, hence the short name. */
export function del(key: string, opts?: DeleteOptions): TxnOp {
  return { kind: "delete", request: rangeRequest(key, opts) };
}

/** One answer per operation of the branch that ran, in order. */
export type TxnResponse =
  | ({ readonly kind: "range" } & RangeResult)
  | { readonly kind: "put"; readonly revision: bigint }
  | { readonly kind: "delete"; readonly deleted: number; readonly revision: bigint };

export interface TxnResult {
  /** Whether every compare held (and so the `then` operations ran). */
  readonly succeeded: boolean;
  readonly responses: TxnResponse[];
  readonly revision: bigint;
}

interface RawTxn {
  header?: { revision?: string };
  succeeded?: boolean;
  responses?: Array<{
    response_range?: RawRange;
    response_put?: { header?: { revision?: string } };
    response_delete_range?: { header?: { revision?: string }; deleted?: string };
  }>;
}

export class Txn {
  readonly #send: (body: unknown) => Promise<unknown>;
  readonly #compares: Array<Record<string, unknown>> = [];
  #then: TxnOp[] = [];
  #else: TxnOp[] = [];

  /** Made by `EtcdClient.txn()`. */
  constructor(send: (body: unknown) => Promise<unknown>) {
    this.#send = send;
  }

  /** Adds a compare; every compare must hold. */
  if<T extends bigint | string>(target: CompareTarget<T>, op: CompareOp, operand: T): this {
    this.#compares.push({
      target: target.target,
      key: encode(target.key),
      result: RESULT[op],
      [FIELD[target.target]]: typeof operand === "string" ? encode(operand) : String(operand),
    });
    return this;
  }

  then(...ops: TxnOp[]): this {
    // A method named `then` makes the builder look like a promise to `await`: fail loudly, do not hang.
    if (ops.some((op) => typeof op === "function")) {
      throw new TypeError("Cannot await a transaction builder: call commit()");
    }
    this.#then = ops;
    return this;
  }

  else(...ops: TxnOp[]): this {
    this.#else = ops;
    return this;
  }

  /**
   * Sends the transaction. Like every write, one that timed out or lost its connection may still have
   * been applied: make it idempotent (a compare that also accepts your own earlier write) or read back.
   */
  async commit(): Promise<TxnResult> {
    const body = { compare: this.#compares, success: this.#then.map(wire), failure: this.#else.map(wire) };
    const raw = (await this.#send(body)) as RawTxn;
    const succeeded = raw.succeeded === true; // a failed compare has no `succeeded` field at all
    const ops = succeeded ? this.#then : this.#else;
    const responses = ops.map((op, i) => decodeResponse(op, raw.responses?.[i] ?? {}));
    return { succeeded, responses, revision: int64(raw.header?.revision) };
  }
}

function wire(op: TxnOp): Record<string, unknown> {
  const field = { put: "request_put", range: "request_range", delete: "request_delete_range" }[op.kind];
  return { [field]: op.request };
}

// The answer's kind is the operation's: proto3 may leave out an answer's body when it is all defaults.
function decodeResponse(op: TxnOp, raw: NonNullable<RawTxn["responses"]>[number]): TxnResponse {
  switch (op.kind) {
    case "range":
      return { kind: "range", ...decodeRange(raw.response_range ?? {}) };
    case "put":
      return { kind: "put", revision: int64(raw.response_put?.header?.revision) };
    case "delete": {
      const r = raw.response_delete_range;
      return { kind: "delete", deleted: Number(int64(r?.deleted)), revision: int64(r?.header?.revision) };
    }
  }
}
