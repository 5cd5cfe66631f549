// The cluster's images, built here with podman (no registry is reachable) and imported into containerd's
// k8s.io namespace under the names the manifests and the kubelet ask for, so nothing is ever pulled:
//   - kube-ipam: deploy/Dockerfile on the Debian base, exactly as the image tests build it (test/support/image.ts)
//   - the pause image: Kubernetes' own pause.c from the release's module, compiled statically
//   - the workload that stands in for the seed's nginx: Debian's static busybox serving HTTP on port 80
//
//   bun scripts/cluster/images.ts CONTAINERD_SOCKET WORK_DIR PAUSE_C PAUSE_IMAGE WORKLOAD_IMAGE
import { chmodSync, copyFileSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { buildImage } from "../../test/support/image.ts";
import { Podman, writeContainersConf } from "../../test/support/podman.ts";

const [socket, work, pauseSource, pauseImage, workloadImage] = process.argv.slice(2);
if (!socket || !work || !pauseSource || !pauseImage || !workloadImage) {
  console.error("usage: images.ts CONTAINERD_SOCKET WORK_DIR PAUSE_C PAUSE_IMAGE WORKLOAD_IMAGE");
  process.exit(2);
}

/** The image the manifests name (both name the same one), as containerd spells it after normalizing. */
function manifestImage(): string {
  const manifest = readFileSync(resolve(import.meta.dir, "../../deploy/kube-ipam-daemonset.yaml"), "utf8");
  const name = manifest.match(/^\s+image:\s*(\S+)\s*$/m)?.[1];
  if (name === undefined) throw new Error("deploy/kube-ipam-daemonset.yaml names no image");
  return name.includes("/") ? name : `docker.io/library/${name}`;
}

function spawnOk(argv: string[], what: string): void {
  const r = Bun.spawnSync(argv, { stdout: "pipe", stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`${what} failed (exit ${r.exitCode}): ${r.stderr.toString()}${r.stdout.toString()}`);
}

rmSync(work, { recursive: true, force: true });
mkdirSync(work, { recursive: true });
const podman = new Podman({ conf: writeContainersConf(work, { networkConfigDir: join(work, "net.d"), cniPluginDirs: ["/usr/lib/cni"] }) });

/** A FROM-scratch image whose files are `rootfs`, built and tagged `name`. */
async function scratchImage(name: string, rootfs: string, config: string[]): Promise<void> {
  const context = join(rootfs, "..");
  writeFileSync(join(context, "Containerfile"), ["FROM scratch", "COPY rootfs/ /", ...config, ""].join("\n"));
  await podman.ok(["build", "--quiet", "--pull=never", "-t", name, context]);
}

// The pause image: the sandbox every pod's network namespace belongs to.
const pauseRoot = join(work, "pause", "rootfs");
mkdirSync(pauseRoot, { recursive: true });
const pauseTag = pauseImage.split(":").pop() ?? "HEAD";
spawnOk([process.env.CC ?? "cc", "-Os", "-Wall", "-static", `-DVERSION=v${pauseTag}`, "-o", join(pauseRoot, "pause"), pauseSource], "compiling pause.c");
await scratchImage(pauseImage, pauseRoot, ["USER 65535:65535", 'ENTRYPOINT ["/pause"]']);

// The workload: busybox httpd on port 80, with sh, ip and the rest of busybox for the tests' exec.
const workloadRoot = join(work, "workload", "rootfs");
mkdirSync(join(workloadRoot, "bin"), { recursive: true });
mkdirSync(join(workloadRoot, "www"), { recursive: true });
mkdirSync(join(workloadRoot, "tmp"), { recursive: true, mode: 0o1777 });
copyFileSync("/bin/busybox", join(workloadRoot, "bin", "busybox"));
chmodSync(join(workloadRoot, "bin", "busybox"), 0o755);
for (const applet of ["sh", "httpd", "ip", "cat", "ls", "sleep", "touch", "rm", "wget", "hostname"]) {
  symlinkSync("busybox", join(workloadRoot, "bin", applet));
}
writeFileSync(join(workloadRoot, "www", "index.html"), "kube-ipam test workload\n");
// As PID 1 it must handle SIGTERM itself, or every pod deletion waits out its grace period.
await scratchImage(workloadImage, workloadRoot, ["ENV PATH=/bin",
  `CMD ["sh", "-c", "trap 'exit 0' TERM; httpd -f -p 80 -h /www & wait"]`]);

const kubeIpam = manifestImage();
await buildImage(podman, kubeIpam);

for (const name of [pauseImage, workloadImage, kubeIpam]) {
  const archive = join(work, "image.tar");
  await podman.ok(["save", "--quiet", "--format", "docker-archive", "-o", archive, name]);
  spawnOk(["ctr", "--address", socket, "--namespace", "k8s.io", "images", "import", archive], `ctr images import ${name}`);
  rmSync(archive);
  await podman.run(["rmi", "--force", name]);
  console.error(`cluster: imported ${name}`);
}
rmSync(work, { recursive: true, force: true });
