// The JSON gateway's encoding: keys and values are base64 of UTF-8 bytes, 64-bit integers are decimal
// strings, and proto3 leaves out every field that holds its default (0, false, empty).

/** One key as etcd stores it; revisions and the lease ID are 64-bit, so bigint. */
export interface KeyValue {
  readonly key: string;
  readonly value: string;
  readonly createRevision: bigint;
  readonly modRevision: bigint;
  readonly version: bigint;
  /** 0n when the key has no lease. */
  readonly lease: bigint;
}

/** A range answer: `count` is the number of keys in the range, even when `limit` returned fewer. */
export interface RangeResult {
  readonly kvs: KeyValue[];
  readonly more: boolean;
  readonly count: number;
  readonly revision: bigint;
}

export function encode(s: string): string {
  return Buffer.from(s, "utf8").toString("base64");
}

export function decode(b64: unknown): string {
  return typeof b64 === "string" ? Buffer.from(b64, "base64").toString("utf8") : "";
}

export function int64(v: unknown): bigint {
  return typeof v === "string" || typeof v === "number" ? BigInt(v) : 0n;
}

interface RawKeyValue {
  key?: string;
  value?: string;
  create_revision?: string;
  mod_revision?: string;
  version?: string;
  lease?: string;
}

export interface RawRange {
  header?: { revision?: string };
  kvs?: RawKeyValue[];
  more?: boolean;
  count?: string;
}

export function decodeRange(raw: RawRange): RangeResult {
  const kvs = (raw.kvs ?? []).map((kv) => ({
    key: decode(kv.key),
    value: decode(kv.value),
    createRevision: int64(kv.create_revision),
    modRevision: int64(kv.mod_revision),
    version: int64(kv.version),
    lease: int64(kv.lease),
  }));
  return { kvs, more: raw.more === true, count: Number(int64(raw.count)), revision: int64(raw.header?.revision) };
}

export interface RangeOptions {
  /** Exclusive end of the range; "\0" means every key from `key` on. */
  readonly end?: string;
  /** Every key starting with `key`. */
  readonly prefix?: boolean;
  /** At most this many keys, in key order. */
  readonly limit?: number;
  readonly keysOnly?: boolean;
  readonly countOnly?: boolean;
}

export interface DeleteOptions {
  readonly end?: string;
  readonly prefix?: boolean;
}

/** The `RangeRequest`/`DeleteRangeRequest` key fields, shared by plain calls and transactions. */
export function rangeRequest(key: string, opts: RangeOptions = {}): Record<string, unknown> {
  if (opts.prefix && opts.end !== undefined) {
    throw new TypeError(`Cannot range over "${key}" with both prefix and end`);
  }
  const end = opts.prefix ? prefixEnd(key) : opts.end;
  const req: Record<string, unknown> = { key: encode(key) };
  if (end !== undefined) req.range_end = encode(end);
  if (opts.limit !== undefined) req.limit = String(opts.limit);
  if (opts.keysOnly) req.keys_only = true;
  if (opts.countOnly) req.count_only = true;
  return req;
}

/**
 * The range end that covers every key starting with `prefix`: its last character plus one, e.g.
 * `prefixEnd("/ipam/")` is `"/ipam0"`. UTF-8 keeps code point order, so this matches etcd's byte order.
 * An empty prefix (or one of only U+10FFFF) gives "\0", etcd's "to the end of the keyspace".
 */
export function prefixEnd(prefix: string): string {
  const chars = [...prefix];
  while (chars.length > 0) {
    const last = chars.pop()!.codePointAt(0)!;
    if (last < 0x10ffff) {
      const next = last + 1 === 0xd800 ? 0xe000 : last + 1; // skip the surrogate block
      return chars.join("") + String.fromCodePoint(next);
    }
  }
  return "\0";
}
