// The few Kubernetes API shapes kube-ipam reads, as the API serves them in JSON.
// Only the fields we use are declared; everything is optional that the API may leave out.

export interface OwnerReference {
  readonly apiVersion: string;
  readonly kind: string;
  readonly name: string;
  readonly uid: string;
  readonly controller?: boolean;
  readonly blockOwnerDeletion?: boolean;
}

export interface ObjectMeta {
  readonly name: string;
  readonly namespace?: string;
  readonly uid: string;
  readonly resourceVersion?: string;
  readonly creationTimestamp?: string;
  /** Set once deletion has started: the object is terminating. */
  readonly deletionTimestamp?: string;
  readonly deletionGracePeriodSeconds?: number;
  readonly labels?: Readonly<Record<string, string>>;
  readonly annotations?: Readonly<Record<string, string>>;
  readonly ownerReferences?: readonly OwnerReference[];
}

export type PodPhase = "Pending" | "Running" | "Succeeded" | "Failed" | "Unknown";

export interface PodIP {
  readonly ip: string;
}

export interface Pod {
  readonly apiVersion?: string;
  readonly kind?: string;
  readonly metadata: ObjectMeta;
  readonly spec?: {
    readonly nodeName?: string;
    readonly hostNetwork?: boolean;
  };
  readonly status?: {
    readonly phase?: PodPhase;
    readonly podIP?: string;
    readonly podIPs?: readonly PodIP[];
  };
}

export interface StatefulSet {
  readonly apiVersion?: string;
  readonly kind?: string;
  readonly metadata: ObjectMeta;
  readonly spec?: {
    readonly replicas?: number;
    readonly serviceName?: string;
  };
  readonly status?: {
    readonly replicas?: number;
  };
}

export interface ListMeta {
  readonly resourceVersion?: string;
  /** Token for the next page; absent or empty on the last one. */
  readonly continue?: string;
  readonly remainingItemCount?: number;
}

/** A PodList, StatefulSetList, ...: items carry no kind or apiVersion of their own. */
export interface List<T> {
  readonly apiVersion?: string;
  readonly kind?: string;
  readonly metadata: ListMeta;
  readonly items: readonly T[];
}

/** What the API answers instead of an object when a request fails. */
export interface Status {
  readonly kind: "Status";
  readonly apiVersion: "v1";
  readonly metadata: Record<string, never>;
  readonly status: "Success" | "Failure";
  readonly message?: string;
  /** Machine-readable: NotFound, Unauthorized, Forbidden, Expired, InternalError, ... */
  readonly reason?: string;
  readonly details?: {
    readonly name?: string;
    readonly group?: string;
    readonly kind?: string;
    readonly uid?: string;
  };
  readonly code: number;
}

/**
 * One line of a watch stream (`?watch=true`). ERROR events (a Status, e.g. 410 Expired) end the watch and
 * reach callers as errors, so they are not part of this type. A BOOKMARK carries only a resourceVersion.
 */
export type WatchEvent<T> =
  | { readonly type: "ADDED" | "MODIFIED" | "DELETED"; readonly object: T }
  | { readonly type: "BOOKMARK"; readonly object: { readonly metadata: { readonly resourceVersion: string } } };
