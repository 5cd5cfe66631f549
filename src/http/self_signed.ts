// A self-signed serving certificate made at start, for an endpoint given no --tls-cert-file: HTTPS keeps
// the bearer tokens that authenticate requests off the wire even where nobody issued a certificate, as the
// kubelet does for its own port. Clients that check the server (Prometheus with a CA file) are given real
// files instead; scrapers and probes of a self-signed endpoint skip verification, and the log names the
// certificate's SHA-256 fingerprint so that a person can compare it.
//
// The certificate is DER built by hand (a few ASN.1 types) because neither Bun nor node:crypto makes
// certificates, and the image carries no openssl.
import { createHash, generateKeyPairSync, randomBytes, sign } from "node:crypto";
import { tryParseIP } from "../ip/address.ts";

export interface ServingCertificate {
  /** PEM. */
  readonly cert: string;
  /** PEM (PKCS #8). */
  readonly key: string;
  /** SHA-256 of the DER certificate, as `openssl x509 -fingerprint -sha256` prints it. */
  readonly fingerprint: string;
}

// ---- DER ----

function tlv(tag: number, body: Uint8Array): Uint8Array {
  const n = body.length;
  const len = n < 0x80 ? [n] : n < 0x100 ? [0x81, n] : n < 0x10000 ? [0x82, n >> 8, n & 0xff] : [0x83, n >> 16, (n >> 8) & 0xff, n & 0xff];
  const out = new Uint8Array(1 + len.length + n);
  out[0] = tag;
  out.set(len, 1);
  out.set(body, 1 + len.length);
  return out;
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

const seq = (...parts: Uint8Array[]) => tlv(0x30, concat(parts));
const set = (...parts: Uint8Array[]) => tlv(0x31, concat(parts));
const explicit = (n: number, inner: Uint8Array) => tlv(0xa0 + n, inner);
const octets = (b: Uint8Array) => tlv(0x04, b);
const utf8 = (s: string) => tlv(0x0c, new TextEncoder().encode(s));
const TRUE = tlv(0x01, new Uint8Array([0xff]));

function oid(dotted: string): Uint8Array {
  const [a, b, ...rest] = dotted.split(".").map(Number) as [number, number, ...number[]];
  const bytes = [40 * a + b];
  for (const n of rest) {
    const base128 = [n & 0x7f];
    for (let v = n >>> 7; v > 0; v >>>= 7) base128.unshift((v & 0x7f) | 0x80);
    bytes.push(...base128);
  }
  return tlv(0x06, new Uint8Array(bytes));
}

function integer(bytes: Uint8Array): Uint8Array {
  // Positive: a leading 1 bit would make it negative.
  return tlv(0x02, bytes[0]! & 0x80 ? concat([new Uint8Array([0]), bytes]) : bytes);
}

/** UTCTime until 2049, GeneralizedTime after (RFC 5280 4.1.2.5). */
function time(d: Date): Uint8Array {
  const iso = d.toISOString().replace(/[-:T]/g, "").slice(0, 14); // YYYYMMDDHHMMSS
  return d.getUTCFullYear() < 2050 ? tlv(0x17, new TextEncoder().encode(`${iso.slice(2)}Z`)) : tlv(0x18, new TextEncoder().encode(`${iso}Z`));
}

function bitString(b: Uint8Array): Uint8Array {
  return tlv(0x03, concat([new Uint8Array([0]), b]));
}

function extension(id: string, critical: boolean, value: Uint8Array): Uint8Array {
  return critical ? seq(oid(id), TRUE, octets(value)) : seq(oid(id), octets(value));
}

/** dNSName [2] and iPAddress [7] of subjectAltName, both IMPLICIT. */
function altNames(names: readonly string[]): Uint8Array {
  return seq(...names.map((n) => {
    const ip = tryParseIP(n);
    return ip ? tlv(0x87, addressBytes(ip.value, ip.family === 4 ? 4 : 16)) : tlv(0x82, new TextEncoder().encode(n));
  }));
}

function addressBytes(value: bigint, size: number): Uint8Array {
  const out = new Uint8Array(size);
  for (let i = size - 1, v = value; i >= 0; i--, v >>= 8n) out[i] = Number(v & 0xffn);
  return out;
}

function pem(label: string, der: Uint8Array): string {
  const b64 = Buffer.from(der).toString("base64").replace(/.{64}/g, "$&\n").replace(/\n$/, "");
  return `-----BEGIN ${label}-----\n${b64}\n-----END ${label}-----\n`;
}

const ECDSA_SHA256 = "1.2.840.10045.4.3.2";

/**
 * An ECDSA P-256 certificate for `names` (host names and addresses, in subjectAltName), valid from an hour
 * ago (clocks differ) for a year: the process makes a new one at every start.
 */
export function selfSignedCertificate(names: readonly string[], now = new Date()): ServingCertificate {
  const { publicKey, privateKey } = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
  const subject = seq(set(seq(oid("2.5.4.3"), utf8("kube-ipam"))));
  const serial = randomBytes(16);
  // Positive and of minimal length (DER): Go's parser, Prometheus's, rejects a leading zero byte.
  serial[0] = (serial[0]! & 0x7f) | 0x40;
  const tbs = seq(
    explicit(0, integer(new Uint8Array([2]))), // v3
    integer(serial),
    seq(oid(ECDSA_SHA256)),
    subject,
    seq(time(new Date(now.getTime() - 3600_000)), time(new Date(now.getTime() + 365 * 86400_000))),
    subject,
    new Uint8Array(publicKey.export({ type: "spki", format: "der" })),
    explicit(3, seq(
      extension("2.5.29.19", true, seq()), // basicConstraints: not a CA
      extension("2.5.29.15", true, bitString(new Uint8Array([0x80]))), // keyUsage: digitalSignature
      extension("2.5.29.37", false, seq(oid("1.3.6.1.5.5.7.3.1"))), // extKeyUsage: serverAuth
      extension("2.5.29.17", false, altNames(names)),
    )),
  );
  const signature = sign("sha256", tbs, privateKey); // DER ECDSA-Sig-Value
  const der = seq(tbs, seq(oid(ECDSA_SHA256)), bitString(new Uint8Array(signature)));
  const fingerprint = createHash("sha256").update(der).digest("hex").toUpperCase().replace(/..(?!$)/g, "$&:");
  return {
    cert: pem("CERTIFICATE", der),
    key: privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
    fingerprint,
  };
}
