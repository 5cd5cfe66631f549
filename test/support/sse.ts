// A dashboard's /api/events (server-sent events) read as a script reads it, for the UI tests of every store.
import { expect } from "bun:test";
import { eventually } from "./eventually.ts";

export interface Sse {
  readonly event: string;
  readonly id: string | undefined;
  readonly data: any;
}

/** Opens `${url}/api/events`; `next` waits (10 s at most) for the next event of a kind that matches. */
export async function openEvents(url: string, headers: Record<string, string> = {}) {
  const abort = new AbortController();
  const res = await fetch(`${url}/api/events`, { headers, signal: abort.signal });
  expect(res.headers.get("content-type")).toContain("text/event-stream");
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let buffered = "";
  const seen: Sse[] = [];
  void (async () => {
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        buffered += decoder.decode(value, { stream: true });
        let cut: number;
        while ((cut = buffered.indexOf("\n\n")) >= 0) {
          const block = buffered.slice(0, cut);
          buffered = buffered.slice(cut + 2);
          const field = (name: string) => block.split("\n").find((l) => l.startsWith(`${name}: `))?.slice(name.length + 2);
          const event = field("event");
          if (event) seen.push({ event, id: field("id"), data: JSON.parse(field("data") ?? "null") });
        }
      }
    } catch {
      // closed
    }
  })();
  let taken = 0;
  return {
    next(event: string, match: (data: any) => boolean = () => true): Promise<Sse> {
      return eventually(`event "${event}"`, () => {
        while (taken < seen.length) {
          const e = seen[taken++]!;
          if (e.event === event && match(e.data)) return e;
        }
        return undefined;
      }, (e) => e !== undefined, { everyMs: 20 }) as Promise<Sse>;
    },
    close: () => abort.abort(),
  };
}
