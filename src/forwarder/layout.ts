// The plugin ships as two executables side by side (in /opt/cni/bin on a node, /usr/local/bin in the
// image): `kube-ipam`, a small native program (forwarder.c) that the runtime runs, and `kube-ipam-core`,
// the whole product compiled with Bun. The forwarder hands a CNI request to the node agent and prints its
// answer; when the agent cannot serve it, and for everything that is not a CNI request (the CLI, VERSION),
// it replaces itself with the core (execve: same process, same arguments, same environment). Bun's start
// alone costs twice host-local's whole ADD, so only a native forwarder lets the agent's warm path be fast.
// This file is the one place both sides take these names from: scripts/forwarder_header.ts writes them
// into the C header the forwarder is compiled with.

/** What the runtime runs: the network config's "type". */
export const FORWARDER_EXECUTABLE = "kube-ipam";
/** The Bun-compiled executable, found next to the forwarder (its real path, symbolic links resolved). */
export const CORE_EXECUTABLE = "kube-ipam-core";
/** Set by the forwarder when it hands a CNI request to the core: why the agent did not serve it. */
export const AGENT_FALLBACK_ENV = "KUBE_IPAM_AGENT_FALLBACK";
/** Set by the forwarder: when the invocation started (epoch ms); ipam.timeoutSeconds counts from then. */
export const STARTED_AT_ENV = "KUBE_IPAM_STARTED_AT";
