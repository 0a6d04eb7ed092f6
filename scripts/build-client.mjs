// Builds the client SDK for browsers into public/js/ (generated, not
// committed): sdk.js (the full SDK) and sdk-lite.js (JSON views, reconnect,
// resume, clock sync and prediction only). wrangler runs it before
// `wrangler dev` and `wrangler deploy` ([build] in wrangler.toml); the
// dashboard imports sdk.js. The same two, not minified, go to build/client/
// for plain Node (the package's `node` export condition), so a Node app's
// stack traces read as code; `npm install` (prepare) runs it too.
import { build } from "esbuild";

/** Builds one entry; resolves with its minified size in bytes. */
export async function buildClient(entry, outfile, { write = true, minify = true } = {}) {
  const result = await build({
    entryPoints: [entry],
    outfile,
    bundle: true,
    format: "esm",
    platform: "browser",
    target: "es2022",
    minify,
    sourcemap: write,
    metafile: true,
    write,
    logLevel: "error",
  });
  return Object.values(result.metafile.outputs).find((o) => o.entryPoint)?.bytes ?? 0;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  for (const [entry, outfile, minify] of [
    ["src/client/index.ts", "public/js/sdk.js", true],
    ["src/client/lite.ts", "public/js/sdk-lite.js", true],
    ["src/client/index.ts", "build/client/index.mjs", false],
    ["src/client/lite.ts", "build/client/lite.mjs", false],
    // crafting-service's ingest client: for a backend, so Node only.
    ["src/client/ingest.ts", "build/client/ingest.mjs", false],
  ]) {
    const bytes = await buildClient(entry, outfile, { minify });
    console.log(`built ${outfile} (${(bytes / 1024).toFixed(1)} KB)`);
  }
}
