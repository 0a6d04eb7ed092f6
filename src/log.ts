/**
 * Structured logs: one JSON object per line, readable with
 * `wrangler tail --format json | jq`. Callers pass ids and outcomes, never
 * tokens, secrets or request bodies.
 */

/** Log severity. */
export type LogLevel = "debug" | "info" | "warn" | "error";

/** Fields a log line may carry; values are plain data. */
export type LogFields = Record<string, string | number | boolean | null | undefined>;

const SEVERITY: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };
let threshold = SEVERITY.info;

/** Sets the least severe level written (`LOG_LEVEL`); an unknown value leaves `info`. */
export function setLogLevel(level: string | undefined): void {
  threshold = SEVERITY[(level ?? "info") as LogLevel] ?? SEVERITY.info;
}

/** Whether a line at `level` would be written: lets a hot path skip building its fields. */
export function logs(level: LogLevel): boolean {
  return SEVERITY[level] >= threshold;
}

/** Writes one structured log line for `event`, if `level` is at or above the threshold. */
export function log(level: LogLevel, event: string, fields: LogFields = {}): void {
  if (!logs(level)) return;
  const line = JSON.stringify({ level, event, ...fields, time: new Date().toISOString() });
  if (level === "error") console.error(line);
  else if (level === "warn") console.warn(line);
  else console.log(line);
}
