// `kube-ipam ls --conf FILE [-o json]`: every address held in the network, with its holder.
import { compareIP, parseIP } from "../ip/address.ts";
import { allocationJSON } from "../ipam/allocation_json.ts";
import type { Allocation } from "../store/store.ts";
import { openStore } from "../store/open.ts";
import { outputFormat, type ParsedFlags } from "./flags.ts";
import { loadConfFile } from "./load_conf.ts";
import { formatAge, renderTable } from "./table.ts";

export { type AllocationJSON, allocationJSON } from "../ipam/allocation_json.ts";

export function sortByAddress(list: Allocation[]): Allocation[] {
  return list.sort((a, b) => compareIP(parseIP(a.ip), parseIP(b.ip)));
}

export function renderAllocations(list: readonly Allocation[], now = new Date()): string {
  return renderTable(
    ["ADDRESS", "NETWORK", "POD", "NAMESPACE", "NODE", "INTERFACE", "CONTAINER", "KIND", "AGE"],
    list.map((a) => [
      a.ip, a.network, a.podName ?? "-", a.podNamespace ?? "-", a.node, a.ifName, a.containerID.slice(0, 12), a.kind,
      formatAge(new Date(a.allocatedAt), now),
    ]),
  );
}

export async function lsCommand(flags: ParsedFlags): Promise<string> {
  const format = outputFormat(flags);
  const config = loadConfFile(flags.values.get("conf"));
  const store = await openStore(config.store);
  try {
    const list = sortByAddress(await store.network(config.network).list());
    if (format === "json") return `${JSON.stringify(list.map(allocationJSON), null, 2)}\n`;
    return list.length === 0 ? `No addresses held in network "${config.network}"\n` : renderAllocations(list);
  } finally {
    await store.close();
  }
}
