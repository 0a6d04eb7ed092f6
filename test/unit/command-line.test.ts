/** Every script's command line: a mistake is said in one line with the usage (exit 2), never a stack trace. */
import { spawnSync } from "node:child_process";
import { resolve } from "node:path";
import { describe, expect, it } from "vitest";

const root = resolve(import.meta.dirname, "../..");

/** `npm run -s <script> -- <args>`, as a user types it (soak is bundled first; bench:ab and soak raise their file limit). */
const npmRun = (script: string, args: string[]) =>
  spawnSync("npm", ["run", "-s", script, "--", ...args], { cwd: root, encoding: "utf8" });

describe("the scripts' command lines", () => {
  it.each([
    ["token", ["--bogus"]],
    ["demo", ["--bogus"]],
    ["watch", ["s-1", "--bogus"]],
    ["bench", ["--bogus"]],
    ["bench:ab", ["--bogus"]],
    ["soak", ["--bogus"]],
    ["bench:profile-workerd", ["--tree", "1", "--bogus"]],
  ])(
    "npm run %s with an option it does not know",
    (script, args) => {
      const run = npmRun(script, args);
      const [problem, usage, ...rest] = run.stderr.trim().split("\n");
      expect({ status: run.status, problem, rest }).toEqual({
        status: 2,
        problem: expect.stringMatching(/^Unknown option '--bogus'/),
        rest: [],
      });
      expect(usage).toMatch(new RegExp(`^usage: npm run ${script}( |$)`));
    },
    60_000,
  );

  it("says a value bench:profile-workerd cannot take, with its usage", () => {
    for (const args of [["--fanout", "many"], ["--tree", "0"], ["1"], ["--tree", "1", "2"]])
      expect(npmRun("bench:profile-workerd", args)).toMatchObject({
        status: 2,
        stderr: expect.stringMatching(
          /^--fanout takes a whole number, and --tree a percentage above 0 \(got .*\)\nusage: npm run bench:profile-workerd /,
        ),
      });
  }, 60_000);

  it("says an option given without its value the same way", () => {
    expect(npmRun("token", ["--ttl"])).toMatchObject({
      status: 2,
      stderr:
        "Option '--ttl <value>' argument missing\nusage: npm run token -- --player <player_id> | --service | --operator [--name <who>] [--ttl <seconds>]\n",
    });
  });
});
