// `kube-ipam release ADDR --conf FILE --yes`: takes one address from its holder, whatever its kind
// (a parked sticky address loses its pod name too). The release is a compare-and-delete on the record
// just read, so an address that changed hands meanwhile is left alone.
import { formatIP } from "../ip/address.ts";
import { openStore } from "../store/open.ts";
import { NotFoundError, type ParsedFlags, UsageError } from "./flags.ts";
import { loadConfFile } from "./load_conf.ts";
import { addressArgument, holderName, holderSummary } from "./show.ts";

export const RELEASE_USAGE = "kube-ipam release ADDR --conf FILE --yes";

/** The record changed between the read and the release; nothing was released (exit 1). */
export class ReleaseRaceError extends NotFoundError {
  override name = "ReleaseRaceError";
}

export async function releaseCommand(flags: ParsedFlags): Promise<string> {
  const ip = addressArgument(flags, RELEASE_USAGE);
  const config = loadConfFile(flags.values.get("conf"));
  const addr = formatIP(ip);
  const store = await openStore(config.store);
  try {
    const net = store.network(config.network);
    const held = await net.get(ip);
    if (!held) throw new NotFoundError(`${addr} is not held in network "${config.network}": nothing to release`);
    if (!flags.switches.has("yes")) {
      throw new UsageError(
        `${addr} is held by ${holderSummary(held)}. Releasing it takes it from its holder while the pod may still ` +
          `use it: add --yes to release it`,
      );
    }
    if (!(await net.releaseIfUnchanged(held))) {
      const now = await net.get(ip);
      throw new ReleaseRaceError(
        now ? `${addr} changed hands while being released, nothing released: it is held by ${holderSummary(now)} now; run the command again to release it`
          : `${addr} was released by someone else meanwhile: nothing to release`,
      );
    }
    const sticky = held.kind === "sticky" ? `; the address is no longer kept for ${holderName(held)}` : "";
    return `Released ${addr} in network "${config.network}" from ${holderSummary(held)}${sticky}\n`;
  } finally {
    await store.close();
  }
}
