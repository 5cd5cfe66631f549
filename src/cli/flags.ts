// Command-line flags: `--conf FILE`, `--conf=FILE`, `-o json`, booleans like `--yes`.

export class UsageError extends Error {
  override name = "UsageError";
}

/** What the command was asked to act on does not exist (exit status 1, a plain message). */
export class NotFoundError extends Error {
  override name = "NotFoundError";
}

/** The command ran and refused to act (exit status 1): `stdout` is its report, the message says why. */
export class RefusedError extends Error {
  override name = "RefusedError";
  constructor(message: string, readonly stdout: string) {
    super(message);
  }
}

export interface ParsedFlags {
  readonly positional: readonly string[];
  readonly values: ReadonlyMap<string, string>;
  readonly switches: ReadonlySet<string>;
}

/** Parses argv after the command. `valued` lists flags that take a value, `booleans` those that do not. */
export function parseFlags(argv: readonly string[], valued: readonly string[], booleans: readonly string[] = []): ParsedFlags {
  const positional: string[] = [];
  const values = new Map<string, string>();
  const switches = new Set<string>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--") {
      positional.push(...argv.slice(i + 1));
      break;
    }
    if (!a.startsWith("-") || a === "-") {
      positional.push(a);
      continue;
    }
    const eq = a.indexOf("=");
    const name = (eq >= 0 ? a.slice(0, eq) : a).replace(/^--?/, "");
    if (booleans.includes(name)) {
      switches.add(name);
    } else if (valued.includes(name)) {
      const v = eq >= 0 ? a.slice(eq + 1) : argv[++i];
      if (v === undefined || v === "") throw new UsageError(`Flag "${a}" needs a value`);
      values.set(name, v);
    } else {
      throw new UsageError(`Unknown flag "${a}"`);
    }
  }
  return { positional, values, switches };
}

export type OutputFormat = "table" | "json";

export function outputFormat(flags: ParsedFlags): OutputFormat {
  const o = flags.values.get("o") ?? flags.values.get("output") ?? "table";
  if (o !== "table" && o !== "json") throw new UsageError(`Output format "${o}" is not "table" or "json"`);
  return o;
}

/** A `--metrics-addr` value: HOST:PORT, [IPv6]:PORT, or :PORT for every address. */
export function parseAddr(text: string, flag = "--metrics-addr"): { hostname: string; port: number } {
  const m = /^(.*):(\d{1,5})$/.exec(text);
  const port = m ? Number(m[2]) : NaN;
  if (!m || port > 65535) throw new UsageError(`${flag} "${text}" is not HOST:PORT, e.g. 0.0.0.0:9153`);
  return { hostname: m[1]!.replace(/^\[(.*)\]$/, "$1") || "0.0.0.0", port };
}
