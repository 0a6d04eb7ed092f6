/** Every script's command line: a mistake is said in one line with the usage (exit 2), never a stack trace. */
import { spawnSync } from "node:child_process";
import { resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { freePort } from "../support/dev-server";

const root = resolve(import.meta.dirname, "../..");

/** `npm run -s <script> -- <args>`, as a user types it (soak is bundled first; bench:ab and soak raise their file limit). */
const npmRun = (script: string, args: string[]) =>
  spawnSync("npm", ["run", "-s", script, "--", ...args], { cwd: root, encoding: "utf8" });

/** Every script a user runs with `npm run`. */
const SCRIPTS = [
  "token",
  "demo",
  "watch",
  "bench",
  "bench:ab",
  "soak",
  "bench:profile-workerd",
] as const;

describe("the scripts' command lines", () => {
  it.each(
    SCRIPTS.flatMap((script) => [
      [script, "--help"],
      [script, "-h"],
    ]),
  )(
    "npm run %s %s says what it does, its usage and every option, and stops",
    (script, flag) => {
      const run = npmRun(script, [flag]);
      const [about, options] = run.stdout.trimEnd().split(`\nusage: npm run ${script}`);
      const rows = (options ?? "").split("\noptions:\n")[1]?.split("\n") ?? [];
      expect({ status: run.status, stderr: run.stderr }).toEqual({ status: 0, stderr: "" });
      expect(about).toMatch(/^[A-Z].{20,}/);
      expect(rows.at(-1)).toMatch(/^ {2}--help +this text$/);
      // Every option is said with what it does, not only its name.
      for (const row of rows) expect(row).toMatch(/^ {2}--[a-z-]+( <value>)? +\S/);
      expect(rows.length).toBeGreaterThan(1);
    },
    60_000,
  );

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

  it.each([
    ["demo", ["--players", "abc"], '--players must be a whole number of at least 1 (got "abc")'],
    ["demo", ["--speed", "0"], '--speed must be a number of at least 0.1 (got "0")'],
    [
      "demo",
      ["--url", "localhost:8787"],
      '--url must be an http(s) URL, such as http://127.0.0.1:8787 (got "localhost:8787")',
    ],
    [
      "watch",
      ["s-1", "--player", "p", "--url", "localhost"],
      '--url must be an http(s) URL, such as http://127.0.0.1:8787 (got "localhost")',
    ],
    ["soak", ["--minutes", "abc"], '--minutes must be a number of at least 0.05 (got "abc")'],
    ["soak", ["--sessions", "0"], '--sessions must be a whole number of at least 1 (got "0")'],
    // A player no id can name: no token is minted that the service would refuse.
    [
      "token",
      ["--player", "player one"],
      `--player must be 1-64 characters of letters, digits, '_', '-', '.' or ':' (got "player one")`,
    ],
    [
      "watch",
      ["s-1", "--player", "p/1"],
      `--player must be 1-64 characters of letters, digits, '_', '-', '.' or ':' (got "p/1")`,
    ],
  ])(
    "npm run %s %j: a value it cannot take, said with its usage",
    (script, args, problem) => {
      const run = npmRun(script, args);
      const [said, usage, ...rest] = run.stderr.trim().split("\n");
      expect({ status: run.status, said, rest }).toEqual({ status: 2, said: problem, rest: [] });
      expect(usage).toMatch(new RegExp(`^usage: npm run ${script} `));
    },
    60_000,
  );

  it.each([
    ["demo", ["--seconds", "1"]],
    ["watch", ["s-1", "--player", "p"]],
  ])("npm run %s with nothing listening at its URL says so, in one line", async (script, args) => {
    const url = `http://127.0.0.1:${await freePort()}`;
    expect(npmRun(script, [...args, "--url", url])).toMatchObject({
      status: 1,
      stderr: `nothing answers at ${url} (ECONNREFUSED): start the service with \`npm start\`, or give its --url\n`,
    });
  });

  it("says an option given without its value the same way", () => {
    expect(npmRun("token", ["--ttl"])).toMatchObject({
      status: 2,
      stderr:
        "Option '--ttl <value>' argument missing\nusage: npm run token -- --player <player_id> | --service | --operator [--name <who>] [--ttl <seconds>]\n",
    });
  });
});
