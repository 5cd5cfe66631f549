// Ages as kubectl prints them.

/** "3d4h", "5m12s": the age column kubectl users read. */
export function formatAge(since: Date, now: Date): string {
  let s = Math.max(0, Math.floor((now.getTime() - since.getTime()) / 1000));
  if (Number.isNaN(s)) return "?";
  const d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60);
  s %= 60;
  if (d > 0) return `${d}d${h}h`;
  if (h > 0) return `${h}h${m}m`;
  if (m > 0) return `${m}m${s}s`;
  return `${s}s`;
}
