// `npm run chaos -- [--minutes N] [--seed S] [--workers W] [--keep]`: one run of the chaos bed (root only:
// it makes network namespaces), its summary, and every violation with the part of the history that shows it.
// `npm run chaos -- --check DIR/history.json` checks a kept run's history again, without a bed.
// Exit status 1 when the checker found a violation, 2 on a usage error.
import { readFileSync } from "node:fs";
import { check } from "./checker.ts";
import type { History } from "./history.ts";
import { formatSummary, formatViolation } from "./report.ts";
import { rerunCommand, runChaos } from "./run.ts";

function usage(message: string): never {
  console.error(`${message}\nusage: npm run chaos -- [--minutes N] [--seed S] [--workers W] [--keep]\n       npm run chaos -- --check DIR/history.json`);
  process.exit(2);
}

const args = process.argv.slice(2);
const values = new Map<string, string>();
const switches = new Set<string>();
for (let i = 0; i < args.length; i++) {
  const a = args[i]!;
  if (a === "--keep") switches.add("keep");
  else if (["--minutes", "--seed", "--workers", "--check"].includes(a)) {
    const v = args[++i];
    if (v === undefined) usage(`${a} needs a value`);
    values.set(a.slice(2), v);
  } else usage(`unknown argument "${a}"`);
}
const number = (name: string, fallback: number, ok: (n: number) => boolean) => {
  const v = values.get(name);
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!Number.isFinite(n) || !ok(n)) usage(`--${name}: expected ${name === "minutes" ? "a number of minutes above 0" : "a whole number"}, got "${v}"`);
  return n;
};
const saved = values.get("check");
if (saved !== undefined) {
  let h: History;
  try {
    h = JSON.parse(readFileSync(saved, "utf8")) as History;
  } catch (e) {
    usage(`--check: cannot read a history from "${saved}": ${(e as Error).message}`);
  }
  const r = check(h);
  console.log(formatSummary(h, r));
  for (const v of r.violations) console.log(`\n${formatViolation(h, v, rerunCommand(h.config.seed, h.config.durationMs))}`);
  process.exit(r.violations.length > 0 ? 1 : 0);
}
if (process.getuid?.() !== 0) usage("the chaos bed makes network namespaces: run it as root");
const minutes = number("minutes", 5, (n) => n > 0 && n <= 24 * 60);
const seed = number("seed", Math.floor(Math.random() * 2 ** 31), (n) => Number.isInteger(n) && n >= 0);
const workers = number("workers", 6, (n) => Number.isInteger(n) && n >= 1 && n <= 64);

const r = await runChaos({ seed, durationMs: Math.round(minutes * 60_000), workers, keep: switches.has("keep"), log: (l) => console.log(l) });
console.log(r.summary);
console.log(`  gc by an operator: ${r.gcRuns.ok} runs succeeded, ${r.gcRuns.failed} failed`);
for (const report of r.reports) console.log(`\n${report}`);
if (r.dir) console.log(`\nthe bed's logs and history.json: ${r.dir}`);
if (r.reports.length > 0) {
  console.log(`\nreplay: ${rerunCommand(seed, Math.round(minutes * 60_000))}`);
  process.exit(1);
}
