// One executable, two roles: a CNI plugin when the runtime sets CNI_COMMAND, a CLI otherwise.
import { runCli } from "./cli/main.ts";
import { runCni } from "./plugin/run.ts";

async function main(): Promise<number> {
  if (process.env.CNI_COMMAND !== undefined) {
    const out = await runCni(process.env, () => Bun.stdin.text());
    if (out.stdout) process.stdout.write(`${out.stdout}\n`);
    return out.exitCode;
  }
  const out = await runCli(process.argv.slice(2));
  if (out.stdout) process.stdout.write(out.stdout);
  if (out.stderr) process.stderr.write(out.stderr);
  return out.exitCode;
}

process.exitCode = await main();
