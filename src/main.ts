// One executable, two roles: a CNI plugin when the runtime sets CNI_COMMAND, a CLI otherwise.
// Each role's modules load only when that role runs: the plugin starts once per pod.

async function main(): Promise<number> {
  if (process.env.CNI_COMMAND !== undefined) {
    const { runCni } = await import("./plugin/run.ts");
    const out = await runCni(process.env, () => Bun.stdin.text());
    if (out.stdout) process.stdout.write(`${out.stdout}\n`);
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
