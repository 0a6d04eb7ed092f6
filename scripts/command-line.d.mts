import type { ParseArgsConfig, parseArgs } from "node:util";

/**
 * `parseArgs(config)`, or the problem and `usage` on stderr and exit 2;
 * `--help` (`-h`) prints `about`, the usage and each option (with its
 * `about`) on stdout, and exits 0.
 */
export function commandLine<T extends ParseArgsConfig>(
  config: T,
  usage: string,
  about?: string,
): ReturnType<typeof parseArgs<T>>;

/** What `--help` prints. */
export function helpText(
  options: Record<string, { type: string; default?: unknown; about?: string }>,
  usage: string,
  about?: string,
): string;

/** Says `problem` with `usage` on stderr and stops (exit 2). */
export function usageError(problem: string, usage: string): never;

/** The id given for `--<name>`, if any, as the service takes ids; anything else is a usage error. */
export function idOption(
  values: Record<string, unknown>,
  name: string,
  usage: string,
): string | undefined;

/** The number given for `--<name>`, at least `min` and whole if `whole`; anything else is a usage error. */
export function numberOption(
  values: Record<string, unknown>,
  name: string,
  usage: string,
  options?: { min?: number; whole?: boolean },
): number;

/** The http(s) URL given for `--<name>`, without a trailing slash; anything else is a usage error. */
export function urlOption(values: Record<string, unknown>, name: string, usage: string): string;

/** Says that nothing answered at `url` and stops (exit 1). */
export function unreachable(url: string, err: unknown): never;
