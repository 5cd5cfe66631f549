// The pods of one node in memory, kept current as client-go's reflector keeps an informer's: list the
// node's pods, then watch them from the list's resourceVersion, resume a broken watch from the last version
// seen, and list again only when the API has forgotten that version (410 Expired). The node agent answers
// an ADD's pod read from here; whatever the cache cannot answer for certain is a miss, and the caller GETs.
import { type KubeClient, KubeUnavailableError } from "./client.ts";
import type { Pod, WatchEvent } from "./types.ts";
import { outsideAnyDeadline } from "../lib/deadline.ts";

export interface PodCacheOptions {
  /** Every failure of the list or the watch; the cache retries by itself. */
  readonly onError?: (error: unknown) => void;
  /** Bounds of the jittered exponential backoff between failed attempts. Default 100 and 5000 ms. */
  readonly minBackoffMs?: number;
  readonly maxBackoffMs?: number;
  /**
   * Each watch asks the server to end it after between this and twice this many seconds (at random), and is
   * then resumed; the server sends a bookmark 2 s before. Default 300, as client-go's reflector.
   */
  readonly watchTimeoutSeconds?: number;
}

// client-go's reflector asks for 5 to 10 minutes, at random, so that the watches of many nodes, all
// started by one API server restart, do not all end and reconnect together again.
const WATCH_TIMEOUT_S = 300;
// A watch that ends this soon without one event is a server refusing watches: back off, as client-go does.
const SHORT_WATCH_MS = 1000;

export class PodCache {
  readonly nodeName: string;
  readonly #client: KubeClient;
  readonly #onError: ((error: unknown) => void) | undefined;
  readonly #minBackoffMs: number;
  readonly #maxBackoffMs: number;
  readonly #watchTimeoutS: number;
  #pods = new Map<string, Pod>();
  #synced = false;
  #version: string | undefined; // undefined: list before watching
  #hits = 0;
  #misses = 0;
  readonly #abort = new AbortController();
  #loop: Promise<void> | undefined;

  constructor(client: KubeClient, nodeName: string, options: PodCacheOptions = {}) {
    this.#client = client;
    this.nodeName = nodeName;
    this.#onError = options.onError;
    this.#minBackoffMs = options.minBackoffMs ?? 100;
    this.#maxBackoffMs = options.maxBackoffMs ?? 5000;
    this.#watchTimeoutS = options.watchTimeoutSeconds ?? WATCH_TIMEOUT_S;
  }

  /** True once the first list has arrived; stays true while later relists run (the old contents serve). */
  get synced(): boolean {
    return this.#synced;
  }

  /** The resourceVersion the contents are current at (events and bookmarks move it); undefined before a list. */
  get resourceVersion(): string | undefined {
    return this.#version;
  }

  get hits(): number {
    return this.#hits;
  }

  get misses(): number {
    return this.#misses;
  }

  /**
   * Starts listing and watching in the background; a second call does nothing. The loop outlives the
   * request that starts it, so it runs outside that request's budget (lib/deadline.ts).
   */
  start(): void {
    this.#loop ??= outsideAnyDeadline(() => this.#run(this.#abort.signal));
  }

  /**
   * The pod as last seen, or undefined (a miss) when the cache has not synced, does not hold it, or holds
   * another pod of that name (`uid` differs: deleted and created again, and the watch has not caught up).
   */
  lookup(namespace: string, name: string, uid?: string): Pod | undefined {
    const pod = this.#synced ? this.#pods.get(`${namespace}/${name}`) : undefined;
    if (pod && (uid === undefined || pod.metadata.uid === uid)) {
      this.#hits++;
      return pod;
    }
    this.#misses++;
    return undefined;
  }

  /** Ends the list or watch in flight and the loop; resolves once no request of the cache is left. */
  async stop(): Promise<void> {
    this.#abort.abort();
    await this.#loop;
  }

  async #run(signal: AbortSignal): Promise<void> {
    const fieldSelector = `spec.nodeName=${this.nodeName}`;
    let failures = 0;
    while (!signal.aborted) {
      try {
        if (this.#version === undefined) {
          const list = await this.#client.listPodsVersioned({ fieldSelector, signal });
          // Replaced whole: pods deleted while the watch was away are gone from the new list only.
          this.#pods = new Map(list.items.map((p) => [key(p), p]));
          this.#version = list.resourceVersion;
          this.#synced = true;
        }
        const started = Date.now();
        let events = 0;
        await this.#client.watchPods({
          resourceVersion: this.#version, fieldSelector, allowWatchBookmarks: true, signal,
          timeoutSeconds: Math.round(this.#watchTimeoutS * (1 + Math.random())),
        }, (event) => {
          this.#apply(event);
          this.#version = event.object.metadata.resourceVersion ?? this.#version;
          events++;
          failures = 0;
        });
        if (events === 0 && Date.now() - started < SHORT_WATCH_MS && !signal.aborted) {
          throw new Error(`pod watch of node "${this.nodeName}" on "${this.#client.server}" ended at once, ` +
            "without an event");
        }
        failures = 0;
        continue; // a watch that ended normally (timeoutSeconds) is resumed at once
      } catch (e) {
        if (signal.aborted) break;
        if (e instanceof KubeUnavailableError && e.status === 410) this.#version = undefined;
        failures++;
        this.#report(e);
      }
      await sleep(this.#backoff(failures), signal);
    }
  }

  #apply(event: WatchEvent<Pod>): void {
    if (event.type === "BOOKMARK") return; // only moves the version on
    if (event.type === "DELETED") this.#pods.delete(key(event.object));
    else this.#pods.set(key(event.object), event.object);
  }

  #report(error: unknown): void {
    try {
      this.#onError?.(error);
    } catch {
      // a failing reporter must not end the cache
    }
  }

  /** Exponential from min, capped at max, times 1..2 at random so that nodes do not retry in step. */
  #backoff(failures: number): number {
    const base = Math.min(this.#maxBackoffMs, this.#minBackoffMs * 2 ** Math.min(failures - 1, 20));
    return Math.min(this.#maxBackoffMs, base * (1 + Math.random()));
  }
}

function key(pod: Pod): string {
  return `${pod.metadata.namespace ?? "default"}/${pod.metadata.name}`;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
  });
}
