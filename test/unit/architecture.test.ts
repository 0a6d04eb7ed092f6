/**
 * The dependency rules of the tree, checked on the code itself: the domain
 * core depends on nothing but itself, the generated types and the error
 * codes; the client SDK's browser bundle holds no server code.
 */
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { build } from "esbuild";
import { describe, expect, it } from "vitest";

const root = resolve(import.meta.dirname, "../..");

function filesUnder(dir: string): string[] {
  return readdirSync(join(root, dir), { withFileTypes: true, recursive: true })
    .filter((entry) => entry.isFile() && entry.name.endsWith(".ts"))
    .map((entry) => relative(root, join(entry.parentPath, entry.name)));
}

/** Every module a file imports: relative paths resolved from the root, packages as named. */
function importsOf(file: string): string[] {
  const text = readFileSync(join(root, file), "utf8");
  const statements = /^\s*(?:import|export)\b[^;]*?\bfrom\s+"([^"]+)"/gm;
  return [...text.matchAll(statements)].map(([, spec]) =>
    spec?.startsWith(".") ? relative(root, resolve(dirname(join(root, file)), spec)) : `${spec}`,
  );
}

describe("the domain core", () => {
  it("imports only itself, the generated types and the error codes", () => {
    const outside = filesUnder("src/domain").flatMap((file) =>
      importsOf(file)
        .filter(
          (target) =>
            !target.startsWith("src/domain/") &&
            !target.startsWith("src/gen/") &&
            target !== "src/errors" &&
            target !== "@bufbuild/protobuf",
        )
        .map((target) => `${file} -> ${target}`),
    );
    expect(outside).toEqual([]);
  });

  it("is the bottom of the tree: no route, protocol, SDK or consumer module imports a Durable Object", () => {
    const offenders = [
      ...filesUnder("src/domain"),
      ...filesUnder("src/protocol"),
      ...filesUnder("src/client"),
      ...filesUnder("src/routes"),
      ...filesUnder("src/rpc"),
      ...filesUnder("src/events"),
    ].flatMap((file) =>
      importsOf(file)
        .filter((target) => target.startsWith("durable-objects/"))
        .map((target) => `${file} -> ${target}`),
    );
    expect(offenders).toEqual([]);
  });
});

describe("the client SDK", () => {
  it("bundles for browsers without any server code", async () => {
    const result = await build({
      entryPoints: [join(root, "src/client/index.ts")],
      bundle: true,
      write: false,
      format: "esm",
      platform: "browser",
      minify: true,
      metafile: true,
      logLevel: "silent",
    });
    const ours = Object.keys(result.metafile.inputs).filter((f) => !f.includes("node_modules"));
    const allowed = [
      /^src\/client\//,
      /^src\/domain\//,
      /^src\/gen\//,
      /^src\/errors\.ts$/,
      /^src\/protocol\/sync\/(sync-receiver|sync-state|packet|lz4|xxh32|crc32)\.ts$/,
      /^src\/protocol\/(session-merge|session-wire|workflow-wire)\.ts$/,
    ];
    expect(ours.filter((f) => !allowed.some((rule) => rule.test(f)))).toEqual([]);
    // It does use the client end of the sync channel, and never the server's.
    expect(ours).toContain("src/protocol/sync/sync-receiver.ts");
    expect(ours.some((f) => f.startsWith("durable-objects/"))).toBe(false);
  });

  it("has a light entry under 30 KB minified: JSON views only, no protobuf runtime, no LZ4", async () => {
    // As scripts/build-client.mjs builds public/js/sdk-lite.js.
    const result = await build({
      entryPoints: [join(root, "src/client/lite.ts")],
      bundle: true,
      write: false,
      format: "esm",
      platform: "browser",
      target: "es2022",
      minify: true,
      metafile: true,
      logLevel: "silent",
    });
    const [output] = Object.values(result.metafile.outputs);
    expect(output?.bytes).toBeLessThanOrEqual(30 * 1024);
    const inputs = Object.keys(result.metafile.inputs);
    expect(inputs.filter((f) => /node_modules|src\/gen\/|lz4|protocol\//.test(f))).toEqual([]);
  });

  it("has an ingest client for crafting-service with no server code and no protobuf runtime", async () => {
    const result = await build({
      entryPoints: [join(root, "src/client/ingest.ts")],
      bundle: true,
      write: false,
      format: "esm",
      platform: "neutral",
      metafile: true,
      logLevel: "silent",
    });
    expect(Object.keys(result.metafile.inputs).sort()).toEqual([
      "src/client/backoff.ts",
      "src/client/base-url.ts",
      "src/client/connection.ts",
      "src/client/ingest-backlog.ts",
      "src/client/ingest-window.ts",
      "src/client/ingest.ts",
      "src/client/token.ts",
      "src/errors.ts",
    ]);
  });

  it("is as large as docs/sdk.md says, to the KB", async () => {
    // The browser bundles as scripts/build-client.mjs builds them (not written).
    const { buildClient } = await import("../../scripts/build-client.mjs");
    const table = readFileSync(join(root, "docs/sdk.md"), "utf8");
    for (const [entry, bundle] of [
      ["src/client/index.ts", "public/js/sdk.js"],
      ["src/client/lite.ts", "public/js/sdk-lite.js"],
    ]) {
      const bytes: number = await buildClient(join(root, entry), join(root, bundle), {
        write: false,
      });
      const row = table.split("\n").find((line) => line.includes(`| \`${bundle}\``));
      const said = row?.split("|")[3]?.match(/([\d.]+) KB/)?.[1];
      expect({ bundle, kb: Number(said) }).toEqual({ bundle, kb: Math.round(bytes / 1024) });
    }
  });
});
