// The build this binary is, set by scripts/build.sh (`--define KUBE_IPAM_BUILD=...`): the package
// version and a hash of the sources. The agent serves only plugins of its own build, so that during a
// rolling upgrade an old agent never runs a new plugin's requests with old code, or the reverse.
declare const KUBE_IPAM_BUILD: string | undefined;

export const BUILD: string = typeof KUBE_IPAM_BUILD === "string" ? KUBE_IPAM_BUILD : "dev";
