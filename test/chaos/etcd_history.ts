// etcd's whole history, every revision from the first, read through a watch from revision 1 on the whole
// keyspace (nothing is compacted during a run). Each event carries its revision; a delete carries the value
// it deleted (prev_kv), so the checker knows whose claim ended.
import { decode, encode } from "../../src/store/etcd/codec.ts";
import type { EtcdEvent } from "./history.ts";

interface RawKv {
  key?: string;
  value?: string;
  create_revision?: string;
  mod_revision?: string;
}

async function currentRevision(endpoint: string): Promise<number> {
  const res = await fetch(`${endpoint}/v3/kv/range`, {
    method: "POST",
    body: JSON.stringify({ key: encode("\0"), range_end: encode("\0"), count_only: true }),
    signal: AbortSignal.timeout(10_000),
  });
  const body = (await res.json()) as { header?: { revision?: string } };
  return Number(body.header?.revision ?? 0);
}

/** Reads every event up to the current revision; fails after `timeoutMs` (a long run's history takes longer). */
export async function readEtcdHistory(endpoint: string, timeoutMs = 60_000): Promise<EtcdEvent[]> {
  const until = await currentRevision(endpoint);
  const events: EtcdEvent[] = [];
  if (until <= 1) return events;
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), timeoutMs);
  try {
    const res = await fetch(`${endpoint}/v3/watch`, {
      method: "POST",
      body: JSON.stringify({ create_request: { key: encode("\0"), range_end: encode("\0"), start_revision: "1", prev_kv: true } }),
      signal: abort.signal,
    });
    if (!res.ok || !res.body) throw new Error(`etcd at ${endpoint} refused the history watch: HTTP ${res.status}`);
    const decoder = new TextDecoder();
    let buffered = "";
    let last = 0;
    for await (const chunk of res.body) {
      buffered += decoder.decode(chunk, { stream: true });
      let nl: number;
      while ((nl = buffered.indexOf("\n")) >= 0) {
        const line = buffered.slice(0, nl).trim();
        buffered = buffered.slice(nl + 1);
        if (!line) continue;
        const msg = JSON.parse(line) as { result?: { events?: { type?: string; kv?: RawKv; prev_kv?: RawKv }[]; compact_revision?: string }; error?: unknown };
        if (msg.error) throw new Error(`etcd's history watch failed: ${JSON.stringify(msg.error)}`);
        if (msg.result?.compact_revision && msg.result.compact_revision !== "0") {
          throw new Error(`etcd's history was compacted up to revision ${msg.result.compact_revision}: the run cannot be checked`);
        }
        for (const e of msg.result?.events ?? []) {
          const kv = e.kv ?? {};
          const type = e.type === "DELETE" ? "DELETE" : "PUT";
          const revision = Number(kv.mod_revision ?? 0);
          events.push({
            revision,
            type,
            key: decode(kv.key),
            value: type === "PUT" ? decode(kv.value) : e.prev_kv ? decode(e.prev_kv.value) : undefined,
            ...(type === "PUT" ? { createRevision: Number(kv.create_revision ?? 0) } : {}),
          });
          last = Math.max(last, revision);
        }
        if (last >= until) return events;
      }
    }
    throw new Error(`etcd's history watch ended at revision ${last}, before revision ${until}`);
  } finally {
    clearTimeout(timer);
    abort.abort();
  }
}
