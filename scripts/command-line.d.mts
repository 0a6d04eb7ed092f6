import type { ParseArgsConfig, parseArgs } from "node:util";

/** `parseArgs(config)`, or the problem and `usage` on stderr and exit 2. */
export function commandLine<T extends ParseArgsConfig>(
  config: T,
  usage: string,
): ReturnType<typeof parseArgs<T>>;
