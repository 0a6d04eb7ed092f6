// Provisions the tools the test suite uses, so `npm install && npm test`
// works on a fresh machine with nothing skipped: promtool (Debian's
// prometheus) checks /metrics and the alert rules, the lz4 CLI proves LZ4
// interop both ways, chromium runs the dashboard's browser tests (through
// playwright-core; never a browser download), prlimit (util-linux) runs a
// server with a low open-file limit. Missing ones are installed
// with apt-get (as root, or through sudo); a tool that cannot be installed
// fails the run here, with the command that would fix it.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";

const TOOLS = [
  { name: "promtool", package: "prometheus", present: () => onPath("promtool") },
  { name: "lz4", package: "lz4", present: () => onPath("lz4") },
  { name: "chromium", package: "chromium", present: () => existsSync("/usr/bin/chromium") },
  { name: "prlimit", package: "util-linux", present: () => onPath("prlimit") },
];

function onPath(command) {
  return spawnSync("sh", ["-c", `command -v ${command}`], { stdio: "ignore" }).status === 0;
}

function run(argv) {
  const root = typeof process.getuid === "function" && process.getuid() === 0;
  const [cmd, ...args] = root ? argv : ["sudo", "-n", ...argv];
  const result = spawnSync(cmd, args, {
    stdio: ["ignore", "ignore", "inherit"],
    env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" },
  });
  return result.status === 0;
}

const missing = TOOLS.filter((tool) => !tool.present());
if (missing.length > 0) {
  const packages = missing.map((tool) => tool.package);
  console.log(`test tools: installing ${packages.join(", ")} (Debian packages) …`);
  const installed =
    run(["apt-get", "update", "-qq"]) &&
    run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", ...packages]);
  const still = TOOLS.filter((tool) => !tool.present());
  if (!installed || still.length > 0) {
    console.error(
      `test tools missing: ${still.map((t) => t.name).join(", ")}. ` +
        `Install them with: sudo apt-get install -y ${still.map((t) => t.package).join(" ")}`,
    );
    process.exit(1);
  }
}
console.log(`test tools: ${TOOLS.map((tool) => tool.name).join(", ")} present`);
