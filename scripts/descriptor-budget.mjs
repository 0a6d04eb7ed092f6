// Prints the descriptor budget for a local workerd (`npm start`): 80 % of
// the open-file limit this shell passes on, leaving the rest to the
// runtime's own files, connections being accepted and the metrics objects
// (docs/reliability.md, the descriptor budget). 0 when there is no limit.
import { execSync } from "node:child_process";

const SHARE = 0.8;
const limit = execSync("ulimit -n", { shell: "/bin/sh", encoding: "utf8" }).trim();
console.log(limit === "unlimited" ? 0 : Math.floor(Number(limit) * SHARE));
