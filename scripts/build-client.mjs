// Builds the client SDK for browsers into public/js/sdk.js (generated, not
// committed). wrangler runs it before `wrangler dev` and `wrangler deploy`
// ([build] in wrangler.toml); the dashboard imports it.
import { build } from "esbuild";

const result = await build({
  entryPoints: ["src/client/index.ts"],
  outfile: "public/js/sdk.js",
  bundle: true,
  format: "esm",
  platform: "browser",
  target: "es2022",
  minify: true,
  sourcemap: true,
  metafile: true,
  logLevel: "error",
});
const bytes = Object.values(result.metafile.outputs).find((o) => o.entryPoint)?.bytes ?? 0;
console.log(`built public/js/sdk.js (${Math.round(bytes / 1024)} KB)`);
