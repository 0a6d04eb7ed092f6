// Prints the descriptor budget for `npm start` (docs/reliability.md, the
// descriptor budget): 80 % of the open-file limit this shell passes on, the
// rest left to the runtime's own files and connections being accepted;
// halved, because under `wrangler dev` a stream holds 4 descriptors in the
// runtime (its proxy's connection as well as its own; measured: 200 streams,
// ~800), where the estimate counts the 2 it holds on a plain workerd.
// Prints 0 (no budget) when there is no limit.
import { execSync } from "node:child_process";

const SHARE = 0.8;
const WRANGLER_DEV_SOCKET_FACTOR = 2;
const limit = execSync("ulimit -n", { shell: "/bin/sh", encoding: "utf8" }).trim();
console.log(
  limit === "unlimited" ? 0 : Math.floor((Number(limit) * SHARE) / WRANGLER_DEV_SOCKET_FACTOR),
);
