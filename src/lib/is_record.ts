/** A JSON object (not null, not an array): what config, kubeconfig and API answers are checked with. */
export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
