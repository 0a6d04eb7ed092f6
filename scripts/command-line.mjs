// A script's command line, read with node:util's parseArgs: an option the
// script does not know, or one given without its value, is said in one
// line with the script's usage and exit code 2, never as a stack trace.
import { parseArgs } from "node:util";

/** `parseArgs(config)`, or the problem and `usage` on stderr and exit 2. */
export function commandLine(config, usage) {
  try {
    return parseArgs(config);
  } catch (err) {
    if (!String(err?.code).startsWith("ERR_PARSE_ARGS")) throw err;
    console.error(`${err.message}\nusage: ${usage}`);
    process.exit(2);
  }
}
