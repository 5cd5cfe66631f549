// The allocation record as stored: one JSON object per address, the same in every store.
import type { Allocation, AllocationKind } from "./store.ts";

const KINDS: readonly AllocationKind[] = ["dynamic", "requested", "fixed", "sticky"];

export function encodeRecord(a: Allocation): string {
  return JSON.stringify(a);
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

/** The same claim: same address, owner and time (a re-claim by the same owner is a new claim). */
export function sameRecord(a: Allocation, b: Allocation): boolean {
  return a.ip === b.ip && a.containerID === b.containerID && a.ifName === b.ifName && a.allocatedAt === b.allocatedAt;
}
