/** Bundles sync-work.ts (it imports the service's own modules) and runs it in this process. */
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { build } from "esbuild";
import type { SyncWork } from "./sync-work.ts";

const OUT = join(import.meta.dirname, "../.build/sync-work.mjs");

/** The server's µs per sync packet, delta and full, over `rounds` encodes each. */
export async function syncCost(rounds: number): Promise<SyncWork> {
  await build({
    entryPoints: [join(import.meta.dirname, "sync-work.ts")],
    bundle: true,
    platform: "node",
    format: "esm",
    outfile: OUT,
    logLevel: "warning",
  });
  const { syncWork } = (await import(`${pathToFileURL(OUT).href}?${Date.now()}`)) as {
    syncWork: (rounds: number) => SyncWork;
  };
  return syncWork(rounds);
}
