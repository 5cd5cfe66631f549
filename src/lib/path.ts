// Path joining for the plugin's own paths (validated names under a configured directory). node:path
// costs every plugin start about 0.1 ms to load, and these paths need no normalisation beyond slashes.

/** `dir` and `names` joined with single slashes. */
export function joinPath(dir: string, ...names: string[]): string {
  let out = dir;
  for (const name of names) out = out.endsWith("/") ? `${out}${name}` : `${out}/${name}`;
  return out;
}

/** The directory part of `path` ("." for a bare name, "/" for a file at the root). */
export function parentDir(path: string): string {
  const cut = path.replace(/\/+$/, "").lastIndexOf("/");
  return cut < 0 ? "." : cut === 0 ? "/" : path.slice(0, cut);
}
