// `npm install` runs this (the `prepare` script): points git at .githooks,
// whose pre-commit runs Biome on the staged files. Does nothing outside a
// git checkout (an installed tarball) or when git is missing.
import { execFileSync } from "node:child_process";

try {
  const top = execFileSync("git", ["rev-parse", "--show-toplevel"], { encoding: "utf8" }).trim();
  if (top === process.cwd()) execFileSync("git", ["config", "core.hooksPath", ".githooks"]);
} catch {
  // Not a git checkout: no hooks to install.
}
