// Test PKI made with openssl: a CA, a server certificate for loopback, and client certificates.
// Real certificates, so TLS tests exercise the same verification a cluster does.
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface CertPair {
  readonly cert: string; // path to PEM certificate
  readonly key: string; // path to PEM private key
}

export interface TestPki {
  readonly dir: string;
  readonly ca: CertPair;
  readonly server: CertPair;
  readonly client: CertPair;
  /** A second, unrelated CA: certificates it signs must be refused. */
  readonly otherCa: CertPair;
  /** A client certificate signed by the other CA. */
  readonly strangerClient: CertPair;
}

function openssl(args: string[], cwd: string): void {
  const r = Bun.spawnSync(["openssl", ...args], { cwd, stderr: "pipe", stdout: "pipe" });
  if (r.exitCode !== 0) {
    throw new Error(`openssl ${args.join(" ")} failed: ${r.stderr.toString()}`);
  }
}

function makeCa(dir: string, name: string): CertPair {
  const key = join(dir, `${name}.key`);
  const cert = join(dir, `${name}.pem`);
  openssl(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
    "-keyout", key, "-out", cert, "-days", "2", "-subj", `/CN=${name}`], dir);
  return { cert, key };
}

function makeLeaf(dir: string, name: string, ca: CertPair, usage: "server" | "client", subject = `/CN=${name}`,
  serverAddresses: readonly string[] = []): CertPair {
  const key = join(dir, `${name}.key`);
  const csr = join(dir, `${name}.csr`);
  const cert = join(dir, `${name}.pem`);
  const ext = join(dir, `${name}.ext`);
  writeFileSync(ext, usage === "server"
    ? `subjectAltName=${["127.0.0.1", "::1", ...serverAddresses].map((a) => `IP:${a}`).join(",")},DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n`
    : "extendedKeyUsage=clientAuth\n");
  openssl(["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
    "-keyout", key, "-out", csr, "-subj", subject], dir);
  openssl(["x509", "-req", "-in", csr, "-CA", ca.cert, "-CAkey", ca.key, "-CAcreateserial",
    "-out", cert, "-days", "2", "-extfile", ext], dir);
  return { cert, key };
}

/** Creates a fresh PKI in a temporary directory; the server certificate names loopback and `serverAddresses`. */
export function makeTestPki(serverAddresses: readonly string[] = []): TestPki {
  const dir = mkdtempSync(join(tmpdir(), "kube-ipam-pki-"));
  const ca = makeCa(dir, "ca");
  const otherCa = makeCa(dir, "other-ca");
  return {
    dir,
    ca,
    server: makeLeaf(dir, "server", ca, "server", "/CN=server", serverAddresses),
    client: makeLeaf(dir, "client", ca, "client"),
    otherCa,
    strangerClient: makeLeaf(dir, "stranger", otherCa, "client"),
  };
}

/**
 * A client certificate signed by `pki.ca` for the identity `commonName` (a Kubernetes user name) in the
 * groups `organizations` (Kubernetes groups, e.g. "system:masters"), written into `pki.dir`.
 */
export function makeClientCert(pki: TestPki, commonName: string, organizations: readonly string[] = []): CertPair {
  const file = commonName.replace(/[^A-Za-z0-9.-]/g, "_");
  const subject = [...organizations.map((o) => `/O=${o}`), `/CN=${commonName}`].join("");
  return makeLeaf(pki.dir, `user-${file}`, pki.ca, "client", subject);
}
