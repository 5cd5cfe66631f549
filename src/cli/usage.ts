// `kube-ipam usage --conf FILE [-o json]`: per range, how many addresses can be handed out, how many are
// held, reserved and free, with a bar that reads at a glance in a terminal.
import { poolUsage, type RangeUsage, rangeUsageJSON } from "../ipam/usage.ts";
import { reservedAddresses } from "../ipam/reservations.ts";
import { openStore } from "../store/open.ts";
import { type ParsedFlags, outputFormat, UsageError } from "./flags.ts";
import { loadConfFile } from "./load_conf.ts";
import { renderTable } from "./table.ts";

const BAR_WIDTH = 10;

/** `part` of `whole` in bar cells, rounded. */
function cells(part: bigint, whole: bigint): number {
  return Number((part * BigInt(2 * BAR_WIDTH) + whole) / (2n * whole));
}

function clamp(n: number, min: number, max: number): number {
  return Math.min(max, Math.max(min, n));
}

/** Held share in whole percent; "<1%" and ">99%" instead of a misleading 0% or 100%. */
function percent(part: bigint, whole: bigint): string {
  if (whole === 0n) return "-";
  if (part === 0n) return "0%";
  if (part >= whole) return "100%";
  const p = Number((part * 200n + whole) / (2n * whole));
  if (p < 1) return "<1%";
  if (p > 99) return ">99%";
  return `${p}%`;
}

/** `[###rr.....] 30%`: `#` held, `r` reserved, `.` free; the percentage is the held share of the size. */
export function usageBar(u: Pick<RangeUsage, "size" | "used" | "reserved">): string {
  if (u.size === 0n) return `[${" ".repeat(BAR_WIDTH)}] -`;
  // Rounded, but a non-zero part always shows and a range with anything free never looks full.
  const maxTaken = u.used + u.reserved < u.size ? BAR_WIDTH - 1 : BAR_WIDTH;
  const minReserved = u.reserved > 0n ? 1 : 0;
  const used = clamp(cells(u.used, u.size), u.used > 0n ? 1 : 0, maxTaken - minReserved);
  const taken = clamp(cells(u.used + u.reserved, u.size), used + minReserved, maxTaken);
  return `[${"#".repeat(used)}${"r".repeat(taken - used)}${".".repeat(BAR_WIDTH - taken)}] ${percent(u.used, u.size)}`;
}

const NUMERIC = ["SIZE", "USED", "RESERVED", "FREE"] as const;

export function renderUsage(list: readonly RangeUsage[]): string {
  const counts = list.map((u) => [u.size, u.used, u.reserved, u.free].map(String));
  // Numbers right-aligned, as df prints them.
  const widths = NUMERIC.map((h, i) => Math.max(h.length, ...counts.map((c) => c[i]!.length)));
  const table = renderTable(
    ["NETWORK", "SET", "SUBNET", "RANGE", ...NUMERIC.map((h, i) => h.padStart(widths[i]!)), "USAGE"],
    list.map((u, k) => [
      u.network, String(u.rangeSet), u.subnet, u.range, ...counts[k]!.map((c, i) => c.padStart(widths[i]!)), usageBar(u),
    ]),
  );
  return `${table}USAGE: # held, r reserved, . free; the percentage is held / size\n`;
}

export async function usageCommand(flags: ParsedFlags): Promise<string> {
  if (flags.positional.length > 0) throw new UsageError("Usage: kube-ipam usage --conf FILE [-o table|json]");
  const format = outputFormat(flags);
  const config = loadConfFile(flags.values.get("conf"));
  const store = await openStore(config.store);
  try {
    const [allocations, reservations] = await Promise.all([store.network(config.network).list(), store.reservations()]);
    const usage = poolUsage(config, allocations, reservedAddresses(reservations));
    if (format === "json") return `${JSON.stringify(usage.map(rangeUsageJSON), null, 2)}\n`;
    return renderUsage(usage);
  } finally {
    await store.close();
  }
}
