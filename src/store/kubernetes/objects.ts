// The Kubernetes store's objects (deploy/kubernetes-datastore.yaml) and how records become objects and back.
// An IPAllocation's spec is the allocation record itself, field for field, as every store keeps it.
import type { IP } from "../../ip/address.ts";
import { isRecord } from "../../lib/is_record.ts";
import { decodeRecord, encodeRecord } from "../record.ts";
import type { Allocation, Reservation } from "../store.ts";
import { ANNOTATION_NETWORK, API_VERSION, allocationName, blockOf, containerHash, cursorName, LABEL_BLOCK, LABEL_CONTAINER,
  LABEL_NETWORK, LABEL_NODE, LABEL_OWNER, LABEL_STICKY, dnsLabel, labelValue, ownerHash, reservationName, stickyHash } from "./names.ts";

export const ALLOCATIONS = `/apis/${API_VERSION}/ipallocations`;
export const RESERVATIONS = `/apis/${API_VERSION}/ipreservations`;
export const CURSORS = `/apis/${API_VERSION}/ipcursors`;

export interface Meta {
  readonly name: string;
  readonly uid: string;
  readonly resourceVersion: string;
  readonly labels?: Readonly<Record<string, string>>;
  readonly annotations?: Readonly<Record<string, string>>;
}

export interface KubeObject {
  readonly metadata: Meta;
  readonly spec?: unknown;
}

export function isKubeObject(v: unknown): v is KubeObject {
  return isRecord(v) && isRecord(v.metadata) && typeof v.metadata.name === "string" && typeof v.metadata.uid === "string" &&
    typeof v.metadata.resourceVersion === "string";
}

/** The labels that index an allocation: network, block, and the owner, sticky and node indexes it is in. */
export function allocationLabels(record: Allocation, ip: IP): Record<string, string> {
  const labels: Record<string, string> = {
    [LABEL_NETWORK]: dnsLabel(record.network),
    [LABEL_BLOCK]: blockOf(ip.family, ip.value),
  };
  if (!record.parkedAt) {
    labels[LABEL_OWNER] = ownerHash(record);
    labels[LABEL_CONTAINER] = containerHash(record.containerID);
  }
  if (record.kind === "sticky" && record.podNamespace && record.podName) {
    labels[LABEL_STICKY] = stickyHash(record.podNamespace, record.podName);
  }
  if (record.node) labels[LABEL_NODE] = labelValue(record.node);
  return labels;
}

/** The IPAllocation that makes `record` the holder of `ip`; with `resourceVersion`, a replacement of that version. */
export function allocationObject(record: Allocation, ip: IP, resourceVersion?: string) {
  return {
    apiVersion: API_VERSION,
    kind: "IPAllocation",
    metadata: {
      name: allocationName(record.network, ip),
      labels: allocationLabels(record, ip),
      annotations: { [ANNOTATION_NETWORK]: record.network },
      ...(resourceVersion && { resourceVersion }),
    },
    spec: JSON.parse(encodeRecord(record)) as unknown,
  };
}

/** The record an IPAllocation holds; undefined for anything damaged or foreign. */
export function recordOf(object: KubeObject): Allocation | undefined {
  return isRecord(object.spec) ? decodeRecord(JSON.stringify(object.spec)) : undefined;
}

export function reservationObject(r: Reservation, resourceVersion?: string) {
  return {
    apiVersion: API_VERSION,
    kind: "IPReservation",
    metadata: { name: reservationName(r.name), ...(resourceVersion && { resourceVersion }) },
    spec: { name: r.name, entries: r.entries, createdAt: r.createdAt },
  };
}

export function cursorObject(network: string, node: string, cursors: Record<string, string>) {
  return {
    apiVersion: API_VERSION,
    kind: "IPCursor",
    metadata: { name: cursorName(network, node), labels: { [LABEL_NETWORK]: dnsLabel(network) } },
    spec: { network, node, cursors },
  };
}
