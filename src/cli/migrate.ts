// `kube-ipam migrate --from v0.2 --conf FILE [--dry-run] [-o table|json]`: import kube-ipam v0.2's allocations
// of the network of FILE into this layout (ipam/migrate.ts). docs/operations.md has the upgrade procedure.
import { migrateV02, type MigrationEntry } from "../ipam/migrate.ts";
import { openStore } from "../store/open.ts";
import { outputFormat, type ParsedFlags, RefusedError, UsageError } from "./flags.ts";
import { loadConfFile } from "./load_conf.ts";
import { renderTable } from "./table.ts";

export const MIGRATE_VALUED = ["from", "conf", "o", "output"] as const;

export async function migrateCommand(flags: ParsedFlags): Promise<string> {
  const from = flags.values.get("from");
  if (from !== "v0.2") throw new UsageError(`migrate needs --from v0.2 (the only layout it knows), got ${from === undefined ? "nothing" : `"${from}"`}`);
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
