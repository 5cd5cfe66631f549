// Failpoints, as etcd's gofail: named points where a test build of the binary can be made to crash
// (SIGKILL itself, as a node losing power or the OOM killer would) to prove that whatever a crash at that
// instant leaves behind is resolved by a retry, a DEL or gc. Only a build with FAILPOINTS=1
// (scripts/build.sh) has them; the release build defines KUBE_IPAM_FAILPOINTS false, so `failpoint` is an
// empty function there and the environment variable below is never read (a test checks the release
// binary ignores it and does not even contain its name).
//
//   KUBE_IPAM_FAILPOINTS=claim.committed,release.committed   (comma-separated names of points to crash at)
//   KUBE_IPAM_FAILPOINTS=add.prepared=sleep:500                (or to stall at, in milliseconds: a slow request)
declare const KUBE_IPAM_FAILPOINTS: boolean | undefined;

/** The points, each where it is placed and what a crash there leaves behind. */
export type FailpointName =
  | "claim.committed" // allocator: the store holds the claim, the plugin has not answered
  | "file.claim.unlinked" // file store: the owner entry is written, the address not yet linked to it
  | "takeover.replaced" // a fixed address taken over from a gone pod, not yet answered
  | "sticky.reclaimed" // a sticky address reclaimed for the pod's new container, not yet answered
  | "release.committed" // DEL: released in the store, not yet answered
  | "gc.released" // gc: one leak released or parked, the rest of the run not done
  | "agent.accepted" // agent: said "accepted", before running the request
  | "plugin.forwarded" // plugin: sent the request to the agent, before its answer
  | "add.prepared"; // ADD: the owner's claims read, nothing claimed yet

export const failpoint: (name: FailpointName) => void =
  typeof KUBE_IPAM_FAILPOINTS === "boolean" && KUBE_IPAM_FAILPOINTS
    ? (name) => {
      for (const spec of (process.env.KUBE_IPAM_FAILPOINTS ?? "").split(",")) {
        if (spec === name) process.kill(process.pid, "SIGKILL");
        const stall = spec.startsWith(`${name}=sleep:`) ? Number(spec.slice(name.length + 7)) : NaN;
        if (stall > 0) Bun.sleepSync(stall);
      }
    }
    : () => {};
