// One executable, two roles: a CNI plugin when the runtime sets CNI_COMMAND, a CLI otherwise.
// Measured choices for the plugin's start-up (it runs once per pod): the plugin path is imported
// statically (its bytecode is ready; a dynamic import cost about 1 ms more), the CLI only when it
// runs (the build splits it into its own chunk, about 1 ms less to load for every plugin start), and
// the plugin writes with Bun.write: the first touch of process.stdout or process.stderr
// builds Node stream objects, which cost about 3 ms; and it reads stdin synchronously (stdin.ts).

import { runCni } from "./plugin/run.ts";
import { readStdin } from "./plugin/stdin.ts";

async function main(): Promise<number> {
  if (process.env.CNI_COMMAND !== undefined) {
    const out = await runCni(process.env, readStdin);
    if (out.stdout) await Bun.write(Bun.stdout, `${out.stdout}\n`);
    return out.exitCode;
  }
  const { runCli } = await import("./cli/main.ts");
  const out = await runCli(process.argv.slice(2));
  if (out.stdout) process.stdout.write(out.stdout);
  if (out.stderr) process.stderr.write(out.stderr);
  return out.exitCode;
}

// No top-level await: it would rule out `bun build --bytecode`, which saves a parse of the whole
// bundle at every start.
main().then((code) => {
  process.exitCode = code;
});
