// The local signing key for development tools (token, watch, demo): each
// setting from the environment, else .dev.vars, else .dev.vars.example
// (JWT_KEY_ID, the key's kid, may also come from wrangler.toml's [vars]).
import { existsSync, readFileSync } from "node:fs";

function setting(name, files) {
  if (process.env[name] !== undefined) return process.env[name];
  for (const file of files) {
    if (!existsSync(file)) continue;
    const match = new RegExp(`^${name}\\s*=\\s*"?([^"\\n]*)"?\\s*$`, "m").exec(
      readFileSync(file, "utf8"),
    );
    if (match) return match[1];
  }
  return undefined;
}

export function readSecret() {
  const secret = setting("JWT_SECRET", [".dev.vars", ".dev.vars.example"]);
  if (secret === undefined)
    throw new Error("no JWT_SECRET: set it in the environment or in .dev.vars");
  return secret;
}

/** The kid tokens are signed with: JWT_KEY_ID ("" when none is configured). */
export function readKeyId() {
  return setting("JWT_KEY_ID", [".dev.vars", ".dev.vars.example", "wrangler.toml"]) ?? "";
}
