// Object names and label values of the Kubernetes store (docs/kubernetes-store.md). Names must be DNS
// subdomains and label values at most 63 characters, while network, node and reservation names may hold
// capitals, "_" and more: a name that already fits is used as it is, so that `kubectl get ipa` reads
// naturally; any other gets a readable, shortened form with a hash of the original, so two names never
// share a form (a collision of the hash makes an address look held, never hands it out twice).
import { formatIP, type IP, ipFromHex, ipToHex, tryParseIP } from "../../ip/address.ts";
import type { Owner } from "../store.ts";

export const GROUP = "kube-ipam.io";
export const VERSION = "v1alpha1";
export const API_VERSION = `${GROUP}/${VERSION}`;

export const LABEL_NETWORK = `${GROUP}/network`;
/** The block of BLOCK_SIZE addresses an address is in: what heldBetween selects on. */
export const LABEL_BLOCK = `${GROUP}/block`;
/** Hash of containerID and interface: the owner index (findByOwner). Parked addresses have none. */
export const LABEL_OWNER = `${GROUP}/owner`;
/** Hash of the container ID alone: DEL also releases what kube-ipam v0.2 recorded without an interface. */
export const LABEL_CONTAINER = `${GROUP}/container`;
/** Hash of "namespace/name" of a sticky address's pod (findSticky). */
export const LABEL_STICKY = `${GROUP}/sticky`;
/** The node, when its name fits a label (kubectl get ipa -l kube-ipam.io/node=...). */
export const LABEL_NODE = `${GROUP}/node`;
/** The network's name exactly as configured (labels may hold only a shortened form). */
export const ANNOTATION_NETWORK = `${GROUP}/network`;

/** Addresses per block label; the allocator's scan window is as large. */
export const BLOCK_BITS = 6n;
export const BLOCK_SIZE = 1n << BLOCK_BITS;

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const LABEL_VALUE = /^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;

/** FNV-1a, 64 bits, as 16 hex digits: stable across processes and versions. */
export function hash64(text: string): string {
  let h = 0xcbf29ce484222325n;
  for (const byte of new TextEncoder().encode(text)) h = ((h ^ BigInt(byte)) * 0x100000001b3n) & 0xffffffffffffffffn;
  return h.toString(16).padStart(16, "0");
}

/** `name` as one DNS label: itself when it is one, else lowercased, "_" and "." as "-", cut, and a hash appended. */
export function dnsLabel(name: string): string {
  if (DNS_LABEL.test(name)) return name;
  const readable = name.toLowerCase().replace(/[^a-z0-9-]/g, "-").replace(/^-+/, "").slice(0, 46).replace(/-+$/, "");
  return `${readable ? `${readable}-` : ""}${hash64(name)}`;
}

/** `value` as a label value: itself when it is one, else its hash. */
export function labelValue(value: string): string {
  return LABEL_VALUE.test(value) ? value : `h-${hash64(value)}`;
}

/** IPv4 as "10-188-0-216", IPv6 as 32 hex digits (RFC 5952's "::" has no form a name may hold). */
function addressPart(ip: IP): string {
  return ip.family === 4 ? formatIP(ip).replaceAll(".", "-") : ipToHex(ip);
}

/** The IPAllocation of `ip` in `network`: "<network>.<address>", e.g. "macvlan-conf.10-188-0-216". */
export function allocationName(network: string, ip: IP): string {
  return `${dnsLabel(network)}.${addressPart(ip)}`;
}

/** The address an IPAllocation's name holds. */
export function ipOfName(name: string): IP | undefined {
  const part = name.slice(name.indexOf(".") + 1);
  if (/^\d{1,3}(-\d{1,3}){3}$/.test(part)) return tryParseIP(part.replaceAll("-", "."));
  return part.length === 32 ? ipFromHex(part) : undefined;
}

/** The block label value of an address: family and the address's block number in hex. */
export function blockOf(family: 4 | 6, value: bigint): string {
  return `${family}-${(value >> BLOCK_BITS).toString(16)}`;
}

export function ownerHash(owner: Owner): string {
  return hash64(`${owner.containerID}/${owner.ifName}`);
}

export function containerHash(containerID: string): string {
  return hash64(containerID);
}

export function stickyHash(podNamespace: string, podName: string): string {
  return hash64(`${podNamespace}/${podName}`);
}

/** The IPCursor of `node` in `network`. */
export function cursorName(network: string, node: string): string {
  return `${dnsLabel(network)}.${dnsLabel(node)}`;
}

/** The IPReservation named `name` (kube-ipam reserve NAME). */
export function reservationName(name: string): string {
  return dnsLabel(name);
}
