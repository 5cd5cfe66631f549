// Watching a key range through the gateway's /v3/watch: a long POST whose body is a stream of JSON
// objects, one per line. Reconnects from the last revision seen, so no event is counted twice or lost
// while the history is still there (a compacted revision restarts from now).
import { decode, int64 } from "./codec.ts";
import type { Transport } from "./transport.ts";

export interface WatchEvent {
  readonly type: "PUT" | "DELETE";
  readonly key: string;
  readonly value: string;
  /** The value before this event (prev_kv), when there was one. */
  readonly prevValue?: string;
  readonly modRevision: bigint;
}

interface RawKv {
  key?: string;
  value?: string;
  mod_revision?: string;
}

interface RawWatchLine {
  result?: {
    header?: { revision?: string };
    events?: { type?: string; kv?: RawKv; prev_kv?: RawKv }[];
    compact_revision?: string;
    canceled?: boolean;
  };
  error?: unknown;
}

export interface WatchOptions {
  readonly end: string;
  readonly startRevision?: bigint;
  readonly signal: AbortSignal;
  /** Called after a broken stream, before the reconnection (for logs and metrics). */
  readonly onReconnect?: (error: unknown) => void;
}

async function* lines(body: ReadableStream<Uint8Array>): AsyncGenerator<string> {
  const decoder = new TextDecoder();
  let buffered = "";
  for await (const chunk of body) {
    buffered += decoder.decode(chunk, { stream: true });
    let nl: number;
    while ((nl = buffered.indexOf("\n")) >= 0) {
      const line = buffered.slice(0, nl).trim();
      buffered = buffered.slice(nl + 1);
      if (line) yield line;
    }
  }
  if (buffered.trim()) yield buffered.trim();
}

/** Calls `onEvents` for every batch of changes to [key, end) until the signal aborts. */
export async function watchRange(transport: Transport, key: string, opts: WatchOptions, onEvents: (events: WatchEvent[]) => void): Promise<void> {
  let next = opts.startRevision;
  while (!opts.signal.aborted) {
    try {
      const request = {
        create_request: {
          key: Buffer.from(key).toString("base64"),
          range_end: Buffer.from(opts.end).toString("base64"),
          prev_kv: true,
          ...(next !== undefined ? { start_revision: String(next) } : {}),
        },
      };
      const { response } = await transport.openStream("/v3/watch", request, opts.signal);
      for await (const line of lines(response.body!)) {
        const msg = JSON.parse(line) as RawWatchLine;
        if (msg.error) throw new Error(`etcd watch failed: ${JSON.stringify(msg.error)}`);
        const r = msg.result;
        if (!r) continue;
        if (r.compact_revision) next = undefined; // history gone: go on from now
        const events = (r.events ?? []).map((e) => ({
          type: e.type === "DELETE" ? "DELETE" as const : "PUT" as const,
          key: decode(e.kv?.key),
          value: decode(e.kv?.value),
          prevValue: e.prev_kv ? decode(e.prev_kv.value) : undefined,
          modRevision: int64(e.kv?.mod_revision),
        }));
        if (events.length > 0) {
          next = events[events.length - 1]!.modRevision + 1n;
          onEvents(events);
        }
      }
      throw new Error("etcd closed the watch stream");
    } catch (e) {
      if (opts.signal.aborted) return;
      opts.onReconnect?.(e);
      await Bun.sleep(500);
    }
  }
}
