// Reserved addresses (Spiderpool's ReservedIP): named, cluster-wide lists that are never handed out.
//   kube-ipam reserve NAME ADDR|A-B|CIDR... --conf FILE
//   kube-ipam unreserve NAME --conf FILE
//   kube-ipam reserved --conf FILE [-o json]
import { formatInterval, type Interval, IntervalSet, tryParseInterval } from "../ip/interval_set.ts";
import { parseIP } from "../ip/address.ts";
import { quote } from "../lib/quote.ts";
import type { Reservation, Store } from "../store/store.ts";
import { openStore } from "../store/open.ts";
import { NotFoundError, type ParsedFlags, outputFormat, UsageError } from "./flags.ts";
import { loadConfFile } from "./load_conf.ts";
import { holderName } from "./show.ts";
import { renderTable } from "./table.ts";

// At most 250 bytes: the embedded store keeps a reservation as "_reserved/<name>.json", and a file name
// holds 255 (NAME_MAX).
const NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,249}$/;

async function withStore<T>(flags: ParsedFlags, fn: (store: Store) => Promise<T>): Promise<T> {
  const config = loadConfFile(flags.values.get("conf"));
  const store = await openStore(config.store);
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

/** Addresses of any network in the store that fall in `set`, with their holders. */
async function heldWithin(store: Store, set: IntervalSet): Promise<string[]> {
  const lines: string[] = [];
  for (const network of await store.networks()) {
    for (const a of await store.network(network).list()) {
      if (!set.has(parseIP(a.ip))) continue;
      lines.push(`  ${a.ip} (network ${network}) is held by ${holderName(a)}: it stays with its holder and is not handed out again once released`);
    }
  }
  return lines;
}

export interface ReserveArgs {
  readonly name: string;
  readonly entries: readonly string[];
  readonly intervals: readonly Interval[];
}

/** `NAME ADDR|A-B|CIDR...`, checked before the store is opened; throws UsageError. */
export function parseReserveArgs(positional: readonly string[]): ReserveArgs {
  const [name, ...entries] = positional;
  if (!name || entries.length === 0) throw new UsageError("Usage: kube-ipam reserve NAME ADDR|A-B|CIDR... --conf FILE");
  if (!NAME.test(name)) {
    throw new UsageError(`Reservation name ${quote(name)} may hold only letters, digits, "_", "." and "-", ` +
      "starting with a letter or digit, at most 250");
  }
  const intervals = entries.map((e) => {
    const i = tryParseInterval(e);
    if (!i) throw new UsageError(`${quote(e)} is not an address, an "A-B" range of one family, or a CIDR`);
    return i;
  });
  return { name, entries, intervals };
}

export async function reserveCommand(flags: ParsedFlags): Promise<string> {
  const { name, entries, intervals } = parseReserveArgs(flags.positional);
  return withStore(flags, async (store) => {
    const replaced = (await store.reservations()).some((r) => r.name === name);
    const normalised = intervals.map(formatIntervalOrCidr(entries));
    await store.putReservation({ name, entries: normalised, createdAt: new Date().toISOString() });
    const held = await heldWithin(store, new IntervalSet(intervals));
    return [
      `Reservation "${name}" ${replaced ? "replaced" : "created"}: ${normalised.join(", ")}`,
      ...(held.length ? ["In use now:", ...held] : []),
    ].join("\n") + "\n";
  });
}

/** Keeps CIDRs as written (a /64 reads better than its first-last form), other entries canonical. */
function formatIntervalOrCidr(entries: readonly string[]) {
  return (i: Interval, k: number): string => (entries[k]!.includes("/") ? entries[k]!.trim() : formatInterval(i));
}

export async function unreserveCommand(flags: ParsedFlags): Promise<string> {
  const [name] = flags.positional;
  if (!name || flags.positional.length !== 1) throw new UsageError("Usage: kube-ipam unreserve NAME --conf FILE");
  return withStore(flags, async (store) => {
    if (!(await store.deleteReservation(name))) {
      throw new NotFoundError(`No reservation "${name}": "kube-ipam reserved --conf FILE" lists them`);
    }
    return `Reservation "${name}" removed: its free addresses can be handed out again\n`;
  });
}

export function reservationsTable(list: readonly Reservation[]): string {
  return renderTable(["NAME", "ENTRIES", "CREATED"], list.map((r) => [r.name, r.entries.join(","), r.createdAt]));
}

export async function reservedCommand(flags: ParsedFlags): Promise<string> {
  const format = outputFormat(flags);
  return withStore(flags, async (store) => {
    const list = await store.reservations();
    if (format === "json") return `${JSON.stringify(list, null, 2)}\n`;
    return list.length === 0 ? "No reservations\n" : reservationsTable(list);
  });
}
