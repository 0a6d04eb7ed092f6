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

/** Says `problem` with `usage` on stderr and stops (exit 2). */
export function usageError(problem, usage) {
  console.error(`${problem}\nusage: ${usage}`);
  process.exit(2);
}

/**
 * The number given for `--<name>` (in `values`), at least `min` and a whole
 * number if `whole`; anything else is a usage error.
 */
export function numberOption(values, name, usage, { min = 0, whole = false } = {}) {
  const value = Number(values[name]);
  if (!Number.isFinite(value) || value < min || (whole && !Number.isInteger(value)))
    usageError(
      `--${name} must be ${whole ? "a whole number" : "a number"} of at least ${min} (got ${JSON.stringify(values[name])})`,
      usage,
    );
  return value;
}

/** The http(s) URL given for `--<name>`, without a trailing slash; anything else is a usage error. */
export function urlOption(values, name, usage) {
  const value = String(values[name]);
  if (!/^https?:\/\/[^/]/.test(value))
    usageError(
      `--${name} must be an http(s) URL, such as http://127.0.0.1:8787 (got ${JSON.stringify(value)})`,
      usage,
    );
  return value.replace(/\/$/, "");
}

/** Says that nothing answered at `url` (the service is not running there?) and stops (exit 1). */
export function unreachable(url, err) {
  console.error(
    `nothing answers at ${url} (${err?.cause?.code ?? err?.code ?? err?.message ?? err}): start the service with \`npm start\`, or give its --url`,
  );
  process.exit(1);
}
