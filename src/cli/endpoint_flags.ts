// `--auth kubernetes|none`, `--tls-cert-file FILE`, `--tls-private-key-file FILE` of the controller and the
// agent: who may read their HTTP endpoint and over what. With a Kubernetes API the default is `kubernetes`
// (TokenReview + SubjectAccessReview) over HTTPS; `none` is never a fallback, only asked for by name.
import { readFileSync } from "node:fs";
import type { KubeClient } from "../k8s/client.ts";
import { hostname } from "../lib/hostname.ts";
import type { Logger } from "../log/logger.ts";
import type { EndpointSecurity } from "../http/endpoint.ts";
import { KubeAuthorizer } from "../http/kube_auth.ts";
import { selfSignedCertificate } from "../http/self_signed.ts";
import { type ParsedFlags, UsageError } from "./flags.ts";

export const ENDPOINT_VALUED = ["auth", "tls-cert-file", "tls-private-key-file"] as const;

export type AuthMode = "kubernetes" | "none";

export function parseAuthMode(value: string | undefined): AuthMode | undefined {
  if (value === undefined || value === "kubernetes" || value === "none") return value;
  throw new UsageError(`--auth "${value}" is not "kubernetes" or "none"`);
}

function readPem(path: string, flag: string, label: RegExp): string {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    throw new UsageError(`${flag} "${path}" cannot be read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  if (!label.test(text)) throw new UsageError(`${flag} "${path}" is not PEM (${label.source.replace(/\\/g, "")})`);
  return text;
}

/**
 * The endpoint's security from the flags. `api` is the Kubernetes API that checks tokens (undefined: none is
 * configured, and then `--auth none` must be given). `bind` is the listening host, named in a
 * self-signed certificate beside the host name and loopback.
 */
export function endpointSecurity(flags: ParsedFlags, opts: { api: KubeClient | undefined; bind: string; log: Logger; what: string; noApiHint: string }): EndpointSecurity {
  const mode = parseAuthMode(flags.values.get("auth")) ?? (opts.api ? "kubernetes" : undefined);
  if (mode !== "none" && !opts.api) {
    throw new UsageError(`--auth kubernetes (the default) needs a Kubernetes API to check tokens with: ${opts.noApiHint}, ` +
      `or pass --auth none to serve ${opts.what} to anyone who can connect`);
  }
  const certFile = flags.values.get("tls-cert-file");
  const keyFile = flags.values.get("tls-private-key-file");
  if ((certFile === undefined) !== (keyFile === undefined)) {
    throw new UsageError("--tls-cert-file and --tls-private-key-file go together: give both or neither");
  }
  let tls: EndpointSecurity["tls"];
  if (certFile && keyFile) {
    tls = { cert: readPem(certFile, "--tls-cert-file", /-----BEGIN CERTIFICATE-----/), key: readPem(keyFile, "--tls-private-key-file", /-----BEGIN [A-Z ]*PRIVATE KEY-----/) };
  } else if (mode === "kubernetes") {
    // Bearer tokens never cross the network in the clear.
    const names = [...new Set([hostname(), "localhost", "127.0.0.1", "::1", ...(/^(0\.0\.0\.0|::)?$/.test(opts.bind) ? [] : [opts.bind])])];
    const made = selfSignedCertificate(names);
    opts.log.info("serving HTTPS with a self-signed certificate made at start", { names, sha256: made.fingerprint });
    tls = made;
  }
  if (mode === "none") {
    opts.log.warn(`--auth none: ${opts.what} served to anyone who can connect, without authentication`);
    return tls ? { tls } : {};
  }
  return { authorizer: new KubeAuthorizer(opts.api!), ...(tls ? { tls } : {}) };
}
