// CHECK: the container still holds its addresses, and every address of prevResult that belongs to
// this network is one of them.
import { CniError, ErrorCode } from "../cni/errors.ts";
import { prevResultAddresses } from "../cni/result.ts";
import type { IpamConfig } from "../config/ipam_config.ts";
import { formatIP, tryParseIP } from "../ip/address.ts";
import { rangeWithSubnetOf } from "../ip/range_set.ts";
import type { NetworkStore, Owner } from "../store/store.ts";

export async function check(store: NetworkStore, config: IpamConfig, owner: Owner): Promise<void> {
  const held = await store.findByOwner(owner);
  if (held.length === 0) {
    throw new CniError(ErrorCode.UnknownContainer,
      `Container "${owner.containerID}" interface "${owner.ifName}" holds no address in network "${config.network}"`);
  }
  const mine = new Set(held.map((a) => a.ip));
  for (const text of prevResultAddresses(config.prevResult)) {
    const ip = tryParseIP(text);
    if (!ip || !config.rangeSets.some((s) => rangeWithSubnetOf(s, ip))) continue;
    if (!mine.has(formatIP(ip))) {
      throw new CniError(ErrorCode.UnknownContainer,
        `Address "${text}" of prevResult is not held by container "${owner.containerID}" interface "${owner.ifName}" in network "${config.network}"`);
    }
  }
}
