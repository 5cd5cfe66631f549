// The kube-ipam image, built for real from deploy/Dockerfile with podman, holding exactly the binary under
// test (BINARY). No registry is needed: the base is Debian bookworm made by mmdebstrap from Debian's
// packages and imported into podman; the tarball is cached so that only the first run pays for it.
//
//   const base = await ensureBaseImage();          // localhost/kube-ipam-base:test
//   const image = await buildImage(podman, "kube-ipam:test-123");
//   ... await image.remove();
import { createHash } from "node:crypto";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, renameSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { BINARY, CORE_BINARY } from "./plugin.ts";
import type { Podman } from "./podman.ts";

export const DOCKERFILE = resolve(import.meta.dir, "../../deploy/Dockerfile");
export const BASE_IMAGE = "localhost/kube-ipam-base:test";
/** What the base is made of: minbase has glibc, /bin/sh, cp, chmod, mv, mkdir, cat and sleep. */
const MMDEBSTRAP_ARGS = ["--variant=minbase", "--format=tar", "bookworm"] as const;
const CACHE_DIR = process.env.KUBE_IPAM_TEST_CACHE ?? "/var/cache/kube-ipam-test";
const KEY_LABEL = "io.kube-ipam.test.base-key";

function run(argv: readonly string[]): { exitCode: number; out: string } {
  const r = Bun.spawnSync([...argv], { stdout: "pipe", stderr: "pipe" });
  return { exitCode: r.exitCode, out: r.stdout.toString() + r.stderr.toString() };
}

/** The base tarball, made by mmdebstrap on the first call and kept under CACHE_DIR, keyed by its arguments. */
export async function baseTarball(): Promise<{ path: string; key: string }> {
  const key = createHash("sha256").update(JSON.stringify(MMDEBSTRAP_ARGS)).digest("hex").slice(0, 16);
  const path = join(CACHE_DIR, `base-${key}.tar`);
  if (existsSync(path) && statSync(path).isFile()) return { path, key };
  mkdirSync(CACHE_DIR, { recursive: true });
  const partial = `${path}.${process.pid}.partial`;
  const proc = Bun.spawn(["mmdebstrap", "--quiet", ...MMDEBSTRAP_ARGS, partial], { stdout: "pipe", stderr: "pipe" });
  const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  if (code !== 0) {
    rmSync(partial, { force: true });
    throw new Error(`mmdebstrap ${MMDEBSTRAP_ARGS.join(" ")} failed (exit ${code}):\n${out}${err}`);
  }
  renameSync(partial, path); // whole or not at all, whoever else builds it meanwhile
  return { path, key };
}

/** BASE_IMAGE imported from the cached tarball, unless podman holds it from the same tarball already. */
export async function ensureBaseImage(podman: Podman): Promise<string> {
  const { path, key } = await baseTarball();
  const have = await podman.run(["image", "inspect", "--format", `{{index .Labels "${KEY_LABEL}"}}`, BASE_IMAGE]);
  if (have.exitCode === 0 && have.stdout.trim() === key) return BASE_IMAGE;
  await podman.ok(["import", "--quiet", "--change", `LABEL=${KEY_LABEL}=${key}`, path, BASE_IMAGE]);
  return BASE_IMAGE;
}

export interface BuiltImage {
  readonly name: string;
  remove(): Promise<void>;
}

/**
 * `podman build -f deploy/Dockerfile --build-arg BASE=<base>` on a context holding BINARY and CORE_BINARY as
 * dist/kube-ipam and dist/kube-ipam-core (what the Dockerfile copies), tagged `name`.
 */
export async function buildImage(podman: Podman, name: string): Promise<BuiltImage> {
  const base = await ensureBaseImage(podman);
  const context = mkdtempSync(join(tmpdir(), "kube-ipam-image-"));
  try {
    mkdirSync(join(context, "dist"));
    copyFileSync(BINARY, join(context, "dist", "kube-ipam"));
    copyFileSync(CORE_BINARY, join(context, "dist", "kube-ipam-core"));
    await podman.ok(["build", "--quiet", "--pull=never", "-f", DOCKERFILE, "--build-arg", `BASE=${base}`, "-t", name, context]);
  } finally {
    rmSync(context, { recursive: true, force: true });
  }
  return {
    name,
    async remove() {
      await podman.run(["rmi", "--force", name]);
    },
  };
}

/** Whether the tools the image tests need are here (scripts/test.sh installs them as root). */
export function imageToolsMissing(): string[] {
  return ["podman", "mmdebstrap", "nsenter", "runc"].filter((t) => run(["sh", "-c", `command -v ${t}`]).exitCode !== 0);
}
