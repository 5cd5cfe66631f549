// Recent allocations and releases, from the store's change stream, kept in a ring and pushed to every open
// page as server-sent events. Each change has an id `<boot>-<seq>`: a page that reconnects sends the last
// one it saw (Last-Event-ID) and gets what it missed, or `reset` when this process cannot tell (another
// replica, a restart, or more missed than the ring holds), and then reads everything again.
import { type HeldJSON, heldJSON } from "../ipam/allocation_json.ts";
import type { StoreChange } from "../store/store.ts";

export interface ChangeEvent {
  readonly id: string;
  /** When this replica saw it (ISO 8601). */
  readonly at: string;
  readonly network: string;
  /** "parked": a sticky address kept for its pod name after its container went. */
  readonly kind: "allocated" | "released" | "parked";
  /** Null when the store did not say which (a release on a store that streams no records). */
  readonly ip: string | null;
  readonly holder: HeldJSON | null;
}

/**
 * live: the store's change stream is open; reconnecting: it broke and is being reopened (changes made
 * meanwhile arrive once it is back); unavailable: the store has no change stream (the embedded store):
 * pages poll.
 */
export type StreamState = "live" | "reconnecting" | "unavailable";

export interface StreamStatus {
  readonly state: StreamState;
  /** Since when (ISO 8601). */
  readonly since: string;
  readonly error: string | null;
}

type Send = (chunk: string) => void;

const KEEPALIVE_MS = 15_000;

export class LiveHub {
  readonly #boot = Date.now().toString(36);
  readonly #capacity: number;
  readonly #ring: ChangeEvent[] = [];
  readonly #clients = new Set<{ send: Send; close: () => void }>();
  #seq = 0;
  #status: StreamStatus;
  #keepalive: ReturnType<typeof setInterval> | undefined;

  constructor(streaming: boolean, capacity = 500) {
    this.#capacity = capacity;
    this.#status = { state: streaming ? "live" : "unavailable", since: new Date().toISOString(), error: null };
  }

  get status(): StreamStatus {
    return this.#status;
  }

  /** The ring, oldest first. */
  recent(): ChangeEvent[] {
    return [...this.#ring];
  }

  record(c: StoreChange): ChangeEvent {
    const kind = c.kind === "allocated" ? "allocated" : c.parked ? "parked" : "released";
    const event: ChangeEvent = {
      id: `${this.#boot}-${++this.#seq}`,
      at: new Date().toISOString(),
      network: c.network,
      kind,
      ip: c.record?.ip ?? null,
      holder: c.record ? heldJSON(c.record) : null,
    };
    this.#ring.push(event);
    if (this.#ring.length > this.#capacity) this.#ring.shift();
    if (this.#status.state === "reconnecting") this.setState("live");
    this.#broadcast(message("change", event, event.id));
    return event;
  }

  setState(state: StreamState, error?: unknown): void {
    if (this.#status.state === state && state !== "reconnecting") return;
    const since = this.#status.state === state ? this.#status.since : new Date().toISOString();
    this.#status = { state, since, error: error === undefined ? null : String(error instanceof Error ? error.message : error) };
    this.#broadcast(message("stream", this.#status));
  }

  reservationsChanged(): void {
    this.#broadcast(message("reservations", {}));
  }

  /** The events after `lastId` when the ring still has them all; undefined when it cannot tell. */
  #since(lastId: string): ChangeEvent[] | undefined {
    const [boot, seqText] = lastId.split("-");
    const seq = Number(seqText);
    if (boot !== this.#boot || !Number.isInteger(seq) || seq > this.#seq) return undefined;
    const oldest = this.#ring[0] ? Number(this.#ring[0].id.split("-")[1]) : this.#seq + 1;
    if (seq < oldest - 1) return undefined;
    return this.#ring.filter((e) => Number(e.id.split("-")[1]) > seq);
  }

  /** `GET /api/events`: the stream's state first, then what was missed, then every change as it comes. */
  events(req: Request): Response {
    const lastId = req.headers.get("last-event-id");
    let client: { send: Send; close: () => void } | undefined;
    const body = new ReadableStream<Uint8Array>({
      start: (controller) => {
        const encoder = new TextEncoder();
        client = {
          send: (chunk) => controller.enqueue(encoder.encode(chunk)),
          close: () => controller.close(),
        };
        client.send(`retry: 1000\n${message("stream", this.#status)}`);
        if (lastId) {
          const missed = this.#since(lastId);
          if (missed === undefined) client.send(message("reset", { reason: "the changes since the last one seen are not all known here" }));
          else for (const e of missed) client.send(message("change", e, e.id));
        }
        this.#clients.add(client);
        this.#keepalive ??= setInterval(() => this.#broadcast(": keepalive\n\n"), KEEPALIVE_MS);
      },
      cancel: () => {
        if (client) this.#clients.delete(client);
      },
    });
    return new Response(body, {
      headers: { "content-type": "text/event-stream; charset=utf-8", "cache-control": "no-store", "x-accel-buffering": "no" },
    });
  }

  #broadcast(chunk: string): void {
    for (const c of this.#clients) {
      try {
        c.send(chunk);
      } catch {
        this.#clients.delete(c); // the page went away
      }
    }
  }

  /** Ends every open stream (shutdown). */
  close(): void {
    clearInterval(this.#keepalive);
    for (const c of this.#clients) {
      try {
        c.close();
      } catch {
        // already closed
      }
    }
    this.#clients.clear();
  }
}

function message(event: string, data: unknown, id?: string): string {
  return `${id ? `id: ${id}\n` : ""}event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
}
