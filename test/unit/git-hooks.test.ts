import { execFileSync, spawnSync } from "node:child_process";
import {
  copyFileSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";

// The pre-commit hook `npm install` installs (scripts/git-hooks.mjs): a
// commit whose staged files fail Biome is refused, as CI's lint step would.
const root = resolve(import.meta.dirname, "../..");
let repo: string;

function git(...args: string[]) {
  return spawnSync("git", ["-c", `core.hooksPath=${join(root, ".githooks")}`, ...args], {
    cwd: repo,
    encoding: "utf8",
  });
}

describe("the pre-commit hook", () => {
  beforeEach(() => {
    repo = mkdtempSync(join(tmpdir(), "hooks-"));
    execFileSync("git", ["init", "-q"], { cwd: repo });
    execFileSync("git", ["config", "user.email", "t@example.com"], { cwd: repo });
    execFileSync("git", ["config", "user.name", "t"], { cwd: repo });
    copyFileSync(join(root, "biome.json"), join(repo, "biome.json"));
    symlinkSync(join(root, "node_modules"), join(repo, "node_modules"));
    writeFileSync(join(repo, ".gitignore"), "node_modules\n");
  });
  afterEach(() => rmSync(repo, { recursive: true, force: true }));

  it("refuses a Markdown table Biome would align differently", () => {
    writeFileSync(join(repo, "notes.md"), "# Notes\n\n| a | bb |\n|---|---|\n| 1 | 2 |\n");
    git("add", ".");
    const commit = git("commit", "-q", "-m", "unaligned");
    expect(commit.status).not.toBe(0);
    expect(commit.stdout + commit.stderr).toContain("notes.md");
    expect(git("rev-parse", "--verify", "HEAD").status).not.toBe(0);
  });

  it("lets a formatted change through", () => {
    writeFileSync(
      join(repo, "notes.md"),
      "# Notes\n\n| a   | bb  |\n| --- | --- |\n| 1   | 2   |\n",
    );
    writeFileSync(join(repo, "ok.ts"), 'export const ok = "yes";\n');
    git("add", ".");
    const commit = git("commit", "-q", "-m", "formatted");
    expect(commit.status, commit.stdout + commit.stderr).toBe(0);
    expect(git("rev-parse", "--verify", "HEAD").status).toBe(0);
  });

  it("says to run npm install when Biome is missing", () => {
    rmSync(join(repo, "node_modules"));
    writeFileSync(join(repo, "ok.ts"), 'export const ok = "yes";\n');
    git("add", ".");
    const commit = git("commit", "-q", "-m", "no biome");
    expect(commit.status).not.toBe(0);
    expect(commit.stderr).toContain("run 'npm install'");
  });

  it("is what `npm install` points git at", () => {
    const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));
    // (and then builds the SDK's bundles, which plain Node imports: docs/sdk.md)
    expect(pkg.scripts.prepare).toBe("node scripts/git-hooks.mjs && node scripts/build-client.mjs");
    execFileSync("node", [join(root, "scripts/git-hooks.mjs")], { cwd: repo });
    expect(
      execFileSync("git", ["config", "core.hooksPath"], { cwd: repo, encoding: "utf8" }).trim(),
    ).toBe(".githooks");
  });
});
