// One executable, three roles: a CNI plugin when the runtime sets CNI_COMMAND, a CLI otherwise, and,
// as `kube-ipam agent`, the node agent that plugins hand their requests to. It ships as kube-ipam-core,
// behind the native forwarder (src/forwarder/) that the runtime runs: the forwarder hands what it can to
// the agent and replaces itself with this executable for the rest, saying why in the environment.
// The plugin (plugin/run.ts) and the CLI are each loaded only when they run (the build splits each into its
// own chunk). The plugin writes with Bun.write: the first touch of process.stdout or process.stderr builds
// Node stream objects, which cost about 3 ms; it reads stdin synchronously (plugin/stdin.ts).

import { AGENT_FALLBACK_ENV, STARTED_AT_ENV } from "./forwarder/layout.ts";
import { readStdin } from "./plugin/stdin.ts";

async function plugin(): Promise<number> {
  const env = process.env;
  // ipam.timeoutSeconds counts from the invocation's start, the forwarder's when it ran first.
  const startedAt = Number(env[STARTED_AT_ENV]) || Date.now();
  const { runCni } = await import("./plugin/run.ts");
  const out = await runCni(env, readStdin, {
    servedBy: "plugin",
    agentFallback: env[AGENT_FALLBACK_ENV] || undefined,
    startedAt,
  });
  if (out.stdout) await Bun.write(Bun.stdout, `${out.stdout}\n`);
  return out.exitCode;
}

async function main(): Promise<number> {
  if (process.env.CNI_COMMAND !== undefined) return plugin();
  const { runCli } = await import("./cli/main.ts");
  const out = await runCli(process.argv.slice(2));
  if (out.stdout) process.stdout.write(out.stdout);
  if (out.stderr) process.stderr.write(out.stderr);
  return out.exitCode;
}

// No top-level await: it would rule out `bun build --bytecode`, which saves a parse of the whole
// bundle at every start.
// The plugin exits as soon as it has answered: a call abandoned at the deadline must not hold it.
main().then((code) => {
  if (process.env.CNI_COMMAND !== undefined) process.exit(code);
  process.exitCode = code;
});
