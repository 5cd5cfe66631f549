// One executable, three roles: a CNI plugin when the runtime sets CNI_COMMAND, a CLI otherwise, and,
// as `kube-ipam agent`, the node agent that plugins hand their requests to.
// The plugin's common case is forwarding to the agent, so that path loads almost nothing: the
// forwarder (agent/forward.ts) is all this chunk holds. The plugin itself (plugin/run.ts) is loaded
// only when it has to run the request, and the CLI only when it runs (the build splits each into its own
// chunk). The plugin writes with Bun.write: the first touch of process.stdout or process.stderr builds
// Node stream objects, which cost about 3 ms; it reads stdin synchronously (plugin/stdin.ts).

import { agentTargetFor, forward, type Forwarded } from "./agent/forward.ts";
import { BUILD } from "./build_info.ts";
import { readStdin } from "./plugin/stdin.ts";

async function plugin(): Promise<number> {
  const startedAt = Date.now(); // ipam.timeoutSeconds counts from here, whoever runs the request
  const env = process.env;
  let stdin = "";
  let stdinError: unknown;
  try {
    stdin = await readStdin();
  } catch (e) {
    stdinError = e; // the plugin reports it as a CNI error
  }
  const target = stdinError === undefined ? agentTargetFor(env.CNI_COMMAND, stdin) : undefined;
  const forwarded: Forwarded = target ? await forward(target, BUILD, startedAt, env, stdin) : { served: false };
  let out: { stdout: string; exitCode: number };
  if (forwarded.served) {
    out = forwarded;
  } else {
    const { runCni } = await import("./plugin/run.ts");
    out = await runCni(env, () => (stdinError === undefined ? Promise.resolve(stdin) : Promise.reject(stdinError)), {
      servedBy: "plugin",
      agentFallback: forwarded.reason,
      startedAt,
    });
  }
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
