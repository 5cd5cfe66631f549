// Who may read the controller's and the agent's endpoints, decided by the Kubernetes API as the kubelet
// and kube-rbac-proxy decide it: the bearer token is checked with a TokenReview, and its user is
// authorized with a SubjectAccessReview for `get` on a non-resource URL. Answers are cached as the
// kubelet caches them (authenticated 2 min, authorized 5 min, refused 30 s), so a scrape every 15 s costs
// the API two reviews every few minutes. A token that cannot be checked (the API is down) is refused with
// 503: nothing is shown on a guess.
import { createHash } from "node:crypto";
import type { KubeClient } from "../k8s/client.ts";
import { isRecord } from "../lib/is_record.ts";

export interface UserInfo {
  readonly username: string;
  readonly uid?: string;
  readonly groups?: readonly string[];
  readonly extra?: Readonly<Record<string, readonly string[]>>;
}

export type Verdict =
  | { readonly allowed: true; readonly user: string }
  | {
    readonly allowed: false; readonly status: 401 | 403 | 429 | 503; readonly reason: string; readonly user?: string;
    /** For the log only: what the API said (its address, its identity), not for a client that has no token. */
    readonly detail?: string;
  };

/** Decides requests: `check(token, url)` where url is the non-resource URL the request stands for. */
export interface RequestAuthorizer {
  check(token: string | undefined, url: string): Promise<Verdict>;
}

const AUTHENTICATED_TTL_MS = 120_000;
export const AUTHORIZED_TTL_MS = 300_000;
const REFUSED_TTL_MS = 30_000;
/** Entries per cache: a flood of made-up tokens evicts old entries rather than growing memory. */
const CACHE_ENTRIES = 4096;
/** Reviews sent at once; more waiting requests get 429 rather than queueing without bound on the API. */
const MAX_REVIEWS_IN_FLIGHT = 16;
/** A service account token is about 1 KiB; anything this long is no token. */
export const MAX_TOKEN_BYTES = 16 * 1024;

class TtlCache<V> {
  readonly #entries = new Map<string, { value: V; until: number }>();

  get(key: string, now: number): V | undefined {
    const e = this.#entries.get(key);
    if (!e) return undefined;
    if (e.until > now) return e.value;
    this.#entries.delete(key);
    return undefined;
  }

  set(key: string, value: V, until: number): void {
    this.#entries.delete(key);
    if (this.#entries.size >= CACHE_ENTRIES) this.#entries.delete(this.#entries.keys().next().value!);
    this.#entries.set(key, { value, until });
  }
}

type Identity = { readonly user: UserInfo } | { readonly refused: string };

export class KubeAuthorizer implements RequestAuthorizer {
  readonly #client: KubeClient;
  readonly #now: () => number;
  readonly #identities = new TtlCache<Identity>();
  readonly #decisions = new TtlCache<string | true>();
  /** Reviews in flight by key, so that concurrent requests with one token send one review. */
  readonly #pending = new Map<string, Promise<unknown>>();

  constructor(client: KubeClient, options: { now?: () => number } = {}) {
    this.#client = client;
    this.#now = options.now ?? Date.now;
  }

  get server(): string {
    return this.#client.server;
  }

  async check(token: string | undefined, url: string): Promise<Verdict> {
    if (!token) return { allowed: false, status: 401, reason: "no bearer token" };
    if (token.length > MAX_TOKEN_BYTES) return { allowed: false, status: 401, reason: "the bearer token is too long" };
    const tokenKey = createHash("sha256").update(token).digest("base64");
    let identity: Identity;
    try {
      identity = await this.#cached(this.#identities, `t:${tokenKey}`, () => this.#tokenReview(token),
        (i) => ("user" in i ? AUTHENTICATED_TTL_MS : REFUSED_TTL_MS));
    } catch (e) {
      return unavailable(e);
    }
    if ("refused" in identity) return { allowed: false, status: 401, reason: identity.refused };
    const user = identity.user;
    let decision: string | true;
    try {
      decision = await this.#cached(this.#decisions, `d:${tokenKey}\u0000${url}`, () => this.#accessReview(user, url),
        (d) => (d === true ? AUTHORIZED_TTL_MS : REFUSED_TTL_MS));
    } catch (e) {
      return unavailable(e, user.username);
    }
    if (decision !== true) return { allowed: false, status: 403, reason: decision, user: user.username };
    return { allowed: true, user: user.username };
  }

  async #cached<V>(cache: TtlCache<V>, key: string, review: () => Promise<V>, ttl: (v: V) => number): Promise<V> {
    const have = cache.get(key, this.#now());
    if (have !== undefined) return have;
    const pending = this.#pending.get(key) as Promise<V> | undefined;
    if (pending) return pending;
    if (this.#pending.size >= MAX_REVIEWS_IN_FLIGHT) throw new Busy();
    const p = review().then((v) => {
      cache.set(key, v, this.#now() + ttl(v));
      return v;
    });
    this.#pending.set(key, p);
    try {
      return await p;
    } finally {
      this.#pending.delete(key);
    }
  }

  async #tokenReview(token: string): Promise<Identity> {
    const { body } = await this.#client.send("POST", "/apis/authentication.k8s.io/v1/tokenreviews", "create a TokenReview", {
      body: { apiVersion: "authentication.k8s.io/v1", kind: "TokenReview", spec: { token } },
    });
    const status = isRecord(body) && isRecord(body.status) ? body.status : {};
    const user = isRecord(status.user) ? status.user : {};
    if (status.authenticated !== true || typeof user.username !== "string") {
      return { refused: `the token is not valid${typeof status.error === "string" && status.error ? `: ${status.error}` : ""}` };
    }
    return {
      user: {
        username: user.username,
        ...(typeof user.uid === "string" ? { uid: user.uid } : {}),
        ...(Array.isArray(user.groups) ? { groups: user.groups.filter((g): g is string => typeof g === "string") } : {}),
        ...(isRecord(user.extra) ? { extra: user.extra as Record<string, string[]> } : {}),
      },
    };
  }

  async #accessReview(user: UserInfo, url: string): Promise<string | true> {
    const { body } = await this.#client.send("POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews", "create a SubjectAccessReview", {
      body: {
        apiVersion: "authorization.k8s.io/v1",
        kind: "SubjectAccessReview",
        spec: { user: user.username, uid: user.uid, groups: user.groups, extra: user.extra, nonResourceAttributes: { path: url, verb: "get" } },
      },
    });
    const status = isRecord(body) && isRecord(body.status) ? body.status : {};
    if (status.allowed === true && status.denied !== true) return true;
    return `user "${user.username}" may not get ${url}` + (typeof status.reason === "string" && status.reason ? ` (${status.reason})` : "");
  }
}

class Busy extends Error {}

function unavailable(e: unknown, user?: string): Verdict {
  if (e instanceof Busy) return { allowed: false, status: 429, reason: "too many token checks at once", ...(user ? { user } : {}) };
  return {
    allowed: false, status: 503, reason: "cannot check the token with the Kubernetes API now", detail: (e as Error).message,
    ...(user ? { user } : {}),
  };
}
