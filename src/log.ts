/**
 * Structured logs: one JSON object per line, readable with
 * `wrangler tail --format json | jq`. Callers pass ids and outcomes, never
 * tokens, secrets or request bodies.
 */

/** Log severity. */
export type LogLevel = "debug" | "info" | "warn" | "error";

/** Fields a log line may carry; values are plain data. */
export type LogFields = Record<string, string | number | boolean | null | undefined>;

/** Writes one structured log line for `event`. */
export function log(level: LogLevel, event: string, fields: LogFields = {}): void {
  const line = JSON.stringify({ level, event, ...fields, time: new Date().toISOString() });
  if (level === "error") console.error(line);
  else if (level === "warn") console.warn(line);
  else console.log(line);
}
