// ADD: one address per range set for (container, interface). A repeated ADD returns what the
// owner already holds and completes what an interrupted one left half done; a failed ADD releases
// what it claimed.
import type { Dns, IPConfig, IpamResult } from "../cni/result.ts";
import type { IpamConfig } from "../config/ipam_config.ts";
import { formatIP, type IP, tryParseIP } from "../ip/address.ts";
import type { Range } from "../ip/range.ts";
import { rangeWithSubnetOf } from "../ip/range_set.ts";
import type { Allocation, AllocationKind, NetworkStore, Owner } from "../store/store.ts";
import { sameOwner } from "../store/store.ts";
import { allocateDynamic, type Pool } from "./allocator.ts";
import { AddressInUseError, AddressUnavailableError } from "./errors.ts";
import { assignRequested } from "./requested.ts";

export interface PodRef {
  readonly namespace?: string;
  readonly name?: string;
  readonly uid?: string;
}

export interface AddRequest {
  readonly config: IpamConfig;
  readonly owner: Owner;
  readonly pod: PodRef;
  readonly dns: Dns;
  readonly now: Date;
}

export function poolsOf(config: IpamConfig): Pool[] {
  return config.rangeSets.map((set, index) => ({ network: config.network, set, index, skip: config.exclude }));
}

function toIPConfig(ip: IP, range: Range): IPConfig {
  return { ip, prefixLength: range.subnet.length, gateway: range.gateway };
}

/** The allocation the owner already holds in `pool`, with its range, if any. */
function heldIn(pool: Pool, held: readonly Allocation[]): { allocation: Allocation; ip: IP; range: Range } | undefined {
  for (const allocation of held) {
    const ip = tryParseIP(allocation.ip);
    const range = ip && rangeWithSubnetOf(pool.set, ip);
    if (ip && range) return { allocation, ip, range };
  }
  return undefined;
}

async function claimRequested(store: NetworkStore, ip: IP, record: Omit<Allocation, "ip">): Promise<Allocation> {
  const allocation: Allocation = { ...record, ip: formatIP(ip) };
  const outcome = await store.claim(ip, allocation);
  if (outcome.claimed) return allocation;
  if (outcome.holder && sameOwner(outcome.holder, record)) return outcome.holder;
  throw new AddressInUseError(allocation.ip, record.network, outcome.holder);
}

export async function add(store: NetworkStore, req: AddRequest): Promise<IpamResult> {
  const { config, owner } = req;
  const pools = poolsOf(config);
  const requested = assignRequested(config.network, config.rangeSets, config.requestedIPs, config.exclude);
  const held = await store.findByOwner(owner);
  const claimedNow: Allocation[] = [];
  const ips: IPConfig[] = [];
  try {
    for (const pool of pools) {
      const existing = heldIn(pool, held);
      if (existing) {
        ips.push(toIPConfig(existing.ip, existing.range));
        continue;
      }
      const want = requested.get(pool.index);
      const kind: AllocationKind = want ? "requested" : "dynamic";
      const record = {
        network: config.network,
        containerID: owner.containerID,
        ifName: owner.ifName,
        podNamespace: req.pod.namespace,
        podName: req.pod.name,
        podUID: req.pod.uid,
        node: config.nodeName,
        kind,
        rangeSet: pool.index,
        allocatedAt: req.now.toISOString(),
      };
      if (want) {
        const allocation = await claimRequested(store, want, record);
        claimedNow.push(allocation);
        ips.push(toIPConfig(want, rangeWithSubnetOf(pool.set, want)!));
      } else {
        const { allocation, range } = await allocateDynamic(store, pool, record);
        claimedNow.push(allocation);
        ips.push(toIPConfig(tryParseIP(allocation.ip)!, range));
      }
    }
    const stray = held.filter((a) => !pools.some((p) => heldIn(p, [a])));
    if (stray.length > 0) {
      throw new AddressUnavailableError(stray[0]!.ip, config.network,
        `container "${owner.containerID}" holds it but it is in no range set of the current config: run DEL first`);
    }
  } catch (e) {
    await Promise.allSettled(claimedNow.map((a) => store.releaseIfUnchanged(a)));
    throw e;
  }
  return { ips, routes: config.routes, dns: req.dns };
}
