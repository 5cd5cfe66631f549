// The allocation record as stored: one JSON object per address, the same in every store.
import { type Allocation, type AllocationKind, type Reservation, StoreError } from "./store.ts";
import { tryParseInterval } from "../ip/interval_set.ts";

const KINDS: readonly AllocationKind[] = ["dynamic", "requested", "fixed", "sticky", "migrated"];

const FIELDS: readonly (keyof Allocation)[] = ["ip", "network", "containerID", "ifName", "podNamespace", "podName",
  "podUID", "statefulSet", "statefulSetUID", "node", "kind", "rangeSet", "allocatedAt", "parkedAt", "conflicts"];

/** Canonical JSON: fixed field order, absent fields left out, so equal records encode equally. */
export function encodeRecord(a: Allocation): string {
  const out: Record<string, unknown> = {};
  for (const k of FIELDS) if (a[k] !== undefined) out[k] = a[k];
  return JSON.stringify(out);
}

/** Parses a stored record; undefined for anything torn or foreign (never trusted blindly). */
export function decodeRecord(text: string): Allocation | undefined {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof v !== "object" || v === null) return undefined;
  const r = v as Record<string, unknown>;
  const strings = ["ip", "network", "containerID", "ifName", "node", "allocatedAt"];
  if (!strings.every((k) => typeof r[k] === "string")) return undefined;
  if (!KINDS.includes(r.kind as AllocationKind) || typeof r.rangeSet !== "number") return undefined;
  return r as unknown as Allocation;
}

/**
 * Parses a stored reservation. A damaged one is an error naming where it is stored: skipping it would
 * hand out addresses an operator reserved.
 */
export function decodeReservation(text: string, where: string): Reservation {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    v = undefined;
  }
  const r = v as Partial<Reservation> | undefined;
  const ok = r && typeof r.name === "string" && Array.isArray(r.entries) &&
    r.entries.every((e) => typeof e === "string" && tryParseInterval(e) !== undefined);
  if (!ok) {
    throw new StoreError(`Cannot read the reservation in ${where}: it is damaged; recreate it with "kube-ipam reserve" or remove it`, false);
  }
  return r as Reservation;
}

/** Exactly the same record, parked state included: the compare of every compare-and-swap. */
export function identical(a: Allocation, b: Allocation): boolean {
  return encodeRecord(a) === encodeRecord(b);
}
