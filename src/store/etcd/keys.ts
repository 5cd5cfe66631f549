// The etcd key layout (docs/etcd.md). Addresses are fixed-width hex under a family segment, so keys
// sort in address order and "held addresses between A and B" is one range read.
import { type IP, ipFromHex, ipToHex } from "../../ip/address.ts";
import type { Owner } from "../store.ts";

export class NetworkKeys {
  readonly root: string;

  constructor(readonly prefix: string, readonly network: string) {
    this.root = `${prefix}/networks/${network}`;
  }

  /** `<root>/ips/4/0a000005`: the claim, holding the allocation record. */
  ip(ip: IP): string {
    return `${this.root}/ips/${ip.family}/${ipToHex(ip)}`;
  }

  ips(): string {
    return `${this.root}/ips/`;
  }

  /** The address a claim key names. */
  ipOf(key: string): IP | undefined {
    return ipFromHex(key.slice(key.lastIndexOf("/") + 1));
  }

  /** `<root>/owners/<containerID>/<ifName>/`: one entry per address the owner holds (the owner index). */
  ownerPrefix(owner: Owner): string {
    return `${this.root}/owners/${owner.containerID}/${owner.ifName}/`;
  }

  owner(owner: Owner, ip: IP): string {
    return `${this.ownerPrefix(owner)}${ip.family}-${ipToHex(ip)}`;
  }

  /** `<root>/sticky/<namespace>/<pod>/`: the sticky addresses kept for a pod name (value: the claim key). */
  stickyPrefix(podNamespace: string, podName: string): string {
    return `${this.root}/sticky/${podNamespace}/${podName}/`;
  }

  sticky(podNamespace: string, podName: string, ip: IP): string {
    return `${this.stickyPrefix(podNamespace, podName)}${ip.family}-${ipToHex(ip)}`;
  }

  /** `<root>/cursors/<node>/<rangeSetKey>`: the last address that node handed out in that range set. */
  cursor(node: string, rangeSetKey: string): string {
    return `${this.root}/cursors/${encodeURIComponent(node)}/${rangeSetKey}`;
  }
}

export function networksPrefix(prefix: string): string {
  return `${prefix}/networks/`;
}

/** `<prefix>/reserved/<name>`: reservations are cluster-wide, shared by every network. */
export function reservationKey(prefix: string, name: string): string {
  return `${prefix}/reserved/${name}`;
}
