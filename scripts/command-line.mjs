// A script's command line, read with node:util's parseArgs: an option the
// script does not know, or one given without its value, is said in one
// line with the script's usage and exit code 2, never as a stack trace.
import { parseArgs } from "node:util";
import { ID_PATTERN, ID_RULE } from "../src/domain/ids.ts";

/**
 * `parseArgs(config)`, or the problem and `usage` on stderr and exit 2.
 * Every script also takes `--help` (`-h`): what it does (`about`), its usage
 * and each option with its default, on stdout, and exit 0.
 */
export function commandLine(config, usage, about) {
  const options = { ...config.options, help: { type: "boolean", short: "h" } };
  let parsed;
  try {
    parsed = parseArgs({ ...config, options });
  } catch (err) {
    if (!String(err?.code).startsWith("ERR_PARSE_ARGS")) throw err;
    console.error(`${err.message}\nusage: ${usage}`);
    process.exit(2);
  }
  if (parsed.values.help) {
    console.log(helpText(config.options ?? {}, usage, about));
    process.exit(0);
  }
  delete parsed.values.help;
  return parsed;
}

/**
 * What `--help` prints: `about`, the usage, then each option with what it
 * does (its `about`, a key parseArgs passes over) and its default.
 */
export function helpText(options, usage, about) {
  const rows = Object.entries(options).map(([name, option]) => {
    const given = option.type === "string" && option.default !== undefined;
    return [
      `--${name}${option.type === "string" ? " <value>" : ""}`,
      [option.about, given && `[default ${option.default}]`].filter(Boolean).join(" "),
    ];
  });
  const width = Math.max("--help".length, ...rows.map(([flag]) => flag.length));
  const lines = rows.map(([flag, note]) => `  ${flag.padEnd(width)}  ${note}`.trimEnd());
  const help = [
    `usage: ${usage}`,
    "",
    "options:",
    ...lines,
    `  ${"--help".padEnd(width)}  this text`,
  ];
  return (about ? [about, "", ...help] : help).join("\n");
}

/** Says `problem` with `usage` on stderr and stops (exit 2). */
export function usageError(problem, usage) {
  console.error(`${problem}\nusage: ${usage}`);
  process.exit(2);
}

/**
 * The id given for `--<name>` (in `values`), if any: one the service would
 * take as an id (src/domain/ids.ts); anything else is a usage error, said
 * before a token is minted for a player who cannot exist.
 */
export function idOption(values, name, usage) {
  const value = values[name];
  if (value !== undefined && !ID_PATTERN.test(value))
    usageError(`--${name} ${ID_RULE} (got ${JSON.stringify(value)})`, usage);
  return value;
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
