// The local signing secret for development tools (token, watch, demo):
// JWT_SECRET from the environment, else .dev.vars, else .dev.vars.example.
import { existsSync, readFileSync } from "node:fs";

export function readSecret() {
  if (process.env.JWT_SECRET) return process.env.JWT_SECRET;
  for (const file of [".dev.vars", ".dev.vars.example"]) {
    if (!existsSync(file)) continue;
    const match = /^JWT_SECRET\s*=\s*"?([^"\n]*)"?\s*$/m.exec(readFileSync(file, "utf8"));
    if (match) return match[1];
  }
  throw new Error("no JWT_SECRET: set it in the environment or in .dev.vars");
}
