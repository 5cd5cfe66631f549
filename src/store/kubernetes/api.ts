// The five object operations the Kubernetes store is made of, each answer the API can give read once:
// what is an outcome (created, exists, conflict, gone) and what is a failure (KubeUnavailableError, code 11).
// Compare-and-swap is the API's own: an update or delete names the resourceVersion (and UID) it read, and
// the server refuses it with 409 Conflict when the object changed since.
import { isStatus, type KubeClient } from "../../k8s/client.ts";
import { KubeUnavailableError } from "../../k8s/errors.ts";
import { isRecord } from "../../lib/is_record.ts";
import { StoreError } from "../store.ts";
import { isKubeObject, type KubeObject } from "./objects.ts";

const METADATA_LIST = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1";
/** Names and labels only, for a watch's events. */
export const METADATA = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1";

export type Written = { readonly object: KubeObject } | { readonly conflict: true } | { readonly gone: true };

export interface Precondition {
  readonly uid: string;
  readonly resourceVersion: string;
}

/**
 * How current a list must be. "current": a consistent read; the API server serves it from its watch cache
 * when its etcd can confirm the cache is current (etcd 3.4.31, 3.5.13 and later), else reads every object of
 * the kind from etcd. "cached": whatever the cache holds (it may lag by milliseconds): for what a claim
 * corrects anyway. A version: at least that new (the cache waits until it has seen that write).
 */
export type Freshness = "cached" | "current" | { readonly notOlderThan: string };

export class ObjectApi {
  constructor(readonly kube: KubeClient, readonly collection: string, readonly kind: string) {}

  get server(): string {
    return this.kube.server;
  }

  /** The object, or undefined when the API says there is no such object. */
  async get(name: string): Promise<KubeObject | undefined> {
    const action = `get ${this.kind} "${name}"`;
    const { status, body } = await this.kube.send("GET", `${this.collection}/${encodeURIComponent(name)}`, action, { answers: [200, 404] });
    if (status === 404) return this.#notFound(body, name, action);
    return this.#object(body, action);
  }

  /** Creates the object; `exists` when an object of that name is there already (409 AlreadyExists). */
  async create(object: { metadata: { name: string } }): Promise<{ object: KubeObject } | { exists: true }> {
    const action = `create ${this.kind} "${object.metadata.name}"`;
    const { status, body } = await this.kube.send("POST", this.collection, action, { body: object, answers: [201, 404, 409] });
    if (status === 404) this.#notFound(body, "", action);
    if (status === 409) {
      if (isStatus(body) && body.reason === "AlreadyExists") return { exists: true };
      throw new KubeUnavailableError(this.server, `Cannot ${action} on Kubernetes API "${this.server}": HTTP 409 ${isStatus(body) ? body.message : ""}`, 409);
    }
    return { object: this.#object(body, action) };
  }

  /** Replaces the object of the resourceVersion in `object.metadata`: `conflict` when it changed, `gone` when deleted. */
  async update(object: { metadata: { name: string; resourceVersion?: string } }): Promise<Written> {
    const name = object.metadata.name;
    const action = `update ${this.kind} "${name}"`;
    const { status, body } = await this.kube.send("PUT", `${this.collection}/${encodeURIComponent(name)}`, action,
      { body: object, answers: [200, 404, 409] });
    if (status === 404) return this.#notFound(body, name, action) ?? { gone: true };
    if (status === 409) return { conflict: true };
    return { object: this.#object(body, action) };
  }

  /** A JSON merge patch, unconditional: `gone` when there is no such object. */
  async merge(name: string, patch: unknown): Promise<Written> {
    const action = `patch ${this.kind} "${name}"`;
    const { status, body } = await this.kube.send("PATCH", `${this.collection}/${encodeURIComponent(name)}`, action,
      { body: patch, contentType: "application/merge-patch+json", answers: [200, 404] });
    if (status === 404) return this.#notFound(body, name, action) ?? { gone: true };
    return { object: this.#object(body, action) };
  }

  /** Deletes the object if it is still the one `precondition` names (else `conflict`); `gone` when there is none. */
  async delete(name: string, precondition?: Precondition): Promise<"deleted" | "conflict" | "gone"> {
    const action = `delete ${this.kind} "${name}"`;
    const body = { apiVersion: "v1", kind: "DeleteOptions", ...(precondition && { preconditions: precondition }) };
    const res = await this.kube.send("DELETE", `${this.collection}/${encodeURIComponent(name)}`, action, { body, answers: [200, 202, 404, 409] });
    if (res.status === 404) return this.#notFound(res.body, name, action) ?? "gone";
    return res.status === 409 ? "conflict" : "deleted";
  }

  /** Every object of the selection, all pages, and the resourceVersion to watch from; `freshness` default "current". */
  list(labelSelector?: string, freshness?: Freshness): Promise<{ items: KubeObject[]; resourceVersion: string }> {
    return this.kube.listVersioned<KubeObject>(this.collection, `list ${this.kind} objects`,
      { ...(labelSelector && { labelSelector }), ...this.#version(freshness) });
  }

  #version(freshness: Freshness | undefined): { resourceVersion?: string; resourceVersionMatch?: "NotOlderThan" } {
    if (freshness === undefined || freshness === "current") return {};
    if (freshness === "cached") return { resourceVersion: "0" };
    return { resourceVersion: freshness.notOlderThan, resourceVersionMatch: "NotOlderThan" };
  }

  /** Names and labels only of the selection (one request, no spec): for what is held where. */
  async listMetadata(labelSelector: string, freshness?: Freshness): Promise<KubeObject[]> {
    return (await this.listMetadataVersioned(labelSelector, freshness)).items;
  }

  /** As listMetadata, with the list's resourceVersion to watch from. */
  async listMetadataVersioned(labelSelector: string, freshness?: Freshness): Promise<{ items: KubeObject[]; resourceVersion: string }> {
    const action = `list ${this.kind} objects`;
    const v = this.#version(freshness);
    const query = `?labelSelector=${encodeURIComponent(labelSelector)}` +
      (v.resourceVersion ? `&resourceVersion=${v.resourceVersion}` : "") + (v.resourceVersionMatch ? `&resourceVersionMatch=${v.resourceVersionMatch}` : "");
    const { status, body } = await this.kube.send("GET", this.collection + query, action, { accept: METADATA_LIST, answers: [200, 404] });
    if (status === 404) this.#notFound(body, "", action);
    // An empty PartialObjectMetadataList has "items": null.
    if (!isRecord(body) || !(Array.isArray(body.items) || body.items === null)) {
      throw new KubeUnavailableError(this.server, `Cannot ${action} on Kubernetes API "${this.server}": unexpected answer`, status);
    }
    const version = isRecord(body.metadata) && typeof body.metadata.resourceVersion === "string" ? body.metadata.resourceVersion : "";
    return { items: ((body.items ?? []) as unknown[]).filter(isKubeObject), resourceVersion: version };
  }

  #object(body: unknown, action: string): KubeObject {
    if (isKubeObject(body)) return body;
    throw new KubeUnavailableError(this.server, `Cannot ${action} on Kubernetes API "${this.server}": unexpected answer`, 200);
  }

  /**
   * A 404 about the object asked for is an answer (undefined). One about the collection is an API without
   * kube-ipam's resources: an error that says which manifest installs them.
   */
  #notFound(body: unknown, name: string, action: string): undefined {
    if (name && isStatus(body) && body.reason === "NotFound" && body.details?.name === name) return undefined;
    throw new StoreError(`Cannot ${action} on Kubernetes API "${this.server}": the API has no ${this.collection} ` +
      "(apply deploy/kubernetes-datastore.yaml: it defines kube-ipam's custom resources)", true);
  }
}
