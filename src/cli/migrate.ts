// `kube-ipam migrate --from v0.2 --conf FILE [--dry-run] [-o table|json]`: import kube-ipam v0.2's allocations
// of the network of FILE into this layout (ipam/migrate.ts). docs/operations.md has the upgrade procedure.
// `kube-ipam migrate --from etcd --to kubernetes --conf FILE [--dry-run] [--no-freeze]` (any two of etcd,
// kubernetes and file): move the network's allocations between stores (ipam/move.ts), both configured in
// FILE's ipam section whichever ipam.datastore names. docs/kubernetes-store.md has the procedure.
import { DATASTORES, type Datastore, parseStoreConfigOf } from "../config/store_config.ts";
import { migrateV02, type MigrationEntry } from "../ipam/migrate.ts";
import { freezeName, moveNetwork, type MoveReport } from "../ipam/move.ts";
import { openStore } from "../store/open.ts";
import { outputFormat, type ParsedFlags, RefusedError, UsageError } from "./flags.ts";
import { loadConfFile, loadConfWithIpam } from "./load_conf.ts";
import { renderTable } from "./table.ts";

export const MIGRATE_VALUED = ["from", "to", "conf", "o", "output"] as const;

const STORES = DATASTORES.map((d) => `"${d}"`).join(", ");

export async function migrateCommand(flags: ParsedFlags): Promise<string> {
  const from = flags.values.get("from");
  if (DATASTORES.includes(from as Datastore)) return moveCommand(flags, from as Datastore);
  if (from !== "v0.2") {
    throw new UsageError(`migrate needs --from v0.2 or --from ${STORES} with --to, got ${from === undefined ? "nothing" : `"${from}"`}`);
  }
  const format = outputFormat(flags);
  const dryRun = flags.switches.has("dry-run");
  const config = loadConfFile(flags.values.get("conf"));
  // Imports compare-and-create on this layout only: the v0.2 keys are what is being imported.
  const store = await openStore(config.store.kind === "etcd" ? { ...config.store, legacyV02: false } : config.store);
  try {
    if (!store.legacyV02Holders) throw new UsageError(`migrate --from v0.2 needs the etcd store: v0.2 kept its state in etcd, and ${store.location} is not etcd`);
    const holders = await store.legacyV02Holders(config.network);
    const entries = await migrateV02(store.network(config.network), config, holders, { dryRun, now: new Date() });
    const text = format === "json" ? `${JSON.stringify({ dryRun, network: config.network, entries }, null, 2)}\n` : render(entries, dryRun, config.network);
    const trouble = entries.filter((e) => e.outcome === "conflict" || e.outcome === "unplaced").length;
    if (trouble > 0) {
      throw new RefusedError(`${trouble} of ${entries.length} v0.2 allocations of network "${config.network}" could not be imported (see the list); the others were`, text);
    }
    return text;
  } finally {
    await store.close();
  }
}

function render(entries: readonly MigrationEntry[], dryRun: boolean, network: string): string {
  if (entries.length === 0) return `No kube-ipam v0.2 allocations in network "${network}"\n`;
  const verb = (e: MigrationEntry) => (e.outcome === "imported" && dryRun ? "would import" : e.outcome);
  const table = renderTable(["ADDRESS", "CONTAINER", "OUTCOME", "DETAIL"], entries.map((e) => [e.ip, e.containerID, verb(e), e.detail ?? ""]));
  const count = (o: MigrationEntry["outcome"]) => entries.filter((e) => e.outcome === o).length;
  return `${table}${dryRun ? "would import" : "imported"} ${count("imported")}, already present ${count("present")}, ` +
    `conflicts ${count("conflict")}, unplaced ${count("unplaced")}\n`;
}

async function moveCommand(flags: ParsedFlags, from: Datastore): Promise<string> {
  const to = flags.values.get("to");
  if (!DATASTORES.includes(to as Datastore) || to === from) {
    throw new UsageError(`migrate --from ${from} needs --to one of the other stores (${STORES}), got ${to === undefined ? "nothing" : `"${to}"`}`);
  }
  const format = outputFormat(flags);
  const dryRun = flags.switches.has("dry-run");
  const { config, ipam } = loadConfWithIpam(flags.values.get("conf"));
  const source = await openStore(parseStoreConfigOf(ipam, from));
  try {
    const target = await openStore(parseStoreConfigOf(ipam, to as Datastore));
    try {
      // An ADD that read the reservations just before the freeze ends within its budget.
      const settle = () => Bun.sleep(config.timeoutSeconds * 1000 + 1000);
      const freeze = !flags.switches.has("no-freeze");
      const report = await moveNetwork(source, target, config, { dryRun, freeze, settle, now: new Date() }).catch((e: unknown) => {
        // Failed after the freeze, the source hands out no address in the network until someone acts: say so.
        if (!freeze || dryRun) throw e;
        const name = freezeName(config.network);
        throw new Error(`${(e as Error).message}\nThe move did not finish; network "${config.network}" may be frozen in ${source.location} by ` +
          `reservation "${name}" (new pods there get "no free address"): run this migrate again, or lift the freeze with ` +
          `"kube-ipam unreserve ${name}" on a config of the source`, { cause: e });
      });
      const text = format === "json" ? `${JSON.stringify({ dryRun, from: source.location, to: target.location, ...report }, null, 2)}\n`
        : renderMove(report, dryRun, source.location, target.location);
      const trouble = report.entries.filter((e) => e.outcome === "conflict" || e.outcome === "unplaced").length;
      if (trouble > 0) {
        throw new RefusedError(`${trouble} of ${report.entries.length} allocations of network "${config.network}" could not be placed in ` +
          `${target.location} (see the list); the others were`, text);
      }
      return text;
    } finally {
      await target.close();
    }
  } finally {
    await source.close();
  }
}

function renderMove(report: MoveReport, dryRun: boolean, from: string, to: string): string {
  const verb = (o: string) => (o === "moved" && dryRun ? "would move" : o);
  const rows = report.entries.map((e) => [e.ip, e.pod ?? "", e.containerID.slice(0, 12), verb(e.outcome), e.detail ?? ""]);
  const count = (o: string) => report.entries.filter((e) => e.outcome === o).length;
  const head = `Network "${report.network}": ${from} -> ${to}` +
    (report.freeze ? `${dryRun ? "" : `, frozen in the source by reservation "${report.freeze}"`}` : ", source not frozen") + "\n";
  const reservations = report.reservations.length
    ? `reservations: ${report.reservations.map((r) => `${r.name} ${verb(r.outcome)}`).join(", ")}\n` : "";
  const stale = report.staleReleased ? `released ${report.staleReleased} stale records an earlier move had left in the target\n` : "";
  return head + stale + (rows.length ? renderTable(["ADDRESS", "POD", "CONTAINER", "OUTCOME", "DETAIL"], rows) : "No allocations in the source\n") +
    reservations + `${dryRun ? "would move" : "moved"} ${count("moved")}, already present ${count("present")}, ` +
    `conflicts ${count("conflict")}, unplaced ${count("unplaced")}\n`;
}
