/**
 * wrangler.toml's environments (local, staging, production) as wrangler reads
 * them: each binds everything the code uses, on queues and rate-limit
 * counters of its own, and its dead-letter queue is recognised as one; and
 * the Worker's bundle is ASCII and needs no Node.js module.
 */
import { join, relative } from "node:path";
import { build } from "esbuild";
import { describe, expect, it } from "vitest";
import { unstable_getMiniflareWorkerOptions, unstable_readConfig } from "wrangler";
import { WORKER_BUNDLE } from "../../bench/lib/targets";
import { isDeadLetterQueue } from "../../src/events/consumer";

const CONFIG = join(import.meta.dirname, "../../wrangler.toml");
const ENVIRONMENTS = [undefined, "staging", "production"] as const;

interface Options {
  bindings?: Record<string, unknown>;
  durableObjects?: Record<string, unknown>;
  queueProducers?: Record<string, { queueName: string }>;
  queueConsumers?: Record<string, { deadLetterQueue?: string }>;
  ratelimits?: Record<string, { namespace_id: string }>;
  compatibilityFlags?: string[];
}

function optionsOf(env: (typeof ENVIRONMENTS)[number]): Options {
  return unstable_getMiniflareWorkerOptions(CONFIG, env).workerOptions as Options;
}

describe("the deployment environments", () => {
  const local = optionsOf(undefined);

  it.each(["staging", "production"] as const)(
    "%s binds everything local development binds",
    (env) => {
      const options = optionsOf(env);
      expect(Object.keys(options.durableObjects ?? {}).sort()).toEqual(
        Object.keys(local.durableObjects ?? {}).sort(),
      );
      expect(Object.keys(options.queueProducers ?? {}).sort()).toEqual(
        Object.keys(local.queueProducers ?? {}).sort(),
      );
      expect(Object.keys(options.ratelimits ?? {}).sort()).toEqual(
        Object.keys(local.ratelimits ?? {}).sort(),
      );
      expect(Object.keys(options.bindings ?? {}).sort()).toEqual(
        Object.keys(local.bindings ?? {}).sort(),
      );
    },
  );

  it("gives each environment queues and rate-limit counters of its own", () => {
    const queues = ENVIRONMENTS.map((env) =>
      Object.values(optionsOf(env).queueProducers ?? {}).map((q) => q.queueName),
    );
    const namespaces = ENVIRONMENTS.map((env) =>
      Object.values(optionsOf(env).ratelimits ?? {}).map((r) => r.namespace_id),
    );
    for (const list of [queues, namespaces])
      expect(new Set(list.flat()).size).toBe(list.flat().length);
  });

  it.each(ENVIRONMENTS)("dead-letters into a queue the consumer recognises (env %s)", (env) => {
    const consumers = optionsOf(env).queueConsumers ?? {};
    const dlqs = new Set(Object.values(consumers).flatMap((c) => c.deadLetterQueue ?? []));
    expect(dlqs.size).toBe(1);
    for (const [queue, consumer] of Object.entries(consumers)) {
      expect(isDeadLetterQueue(queue)).toBe(dlqs.has(queue));
      // Every queue but the dead-letter queue itself dead-letters into it.
      if (!dlqs.has(queue)) expect(consumer.deadLetterQueue).toBeDefined();
    }
  });
});

/** The Worker as wrangler bundles it (comments in class bodies survive). */
async function workerBundle(): Promise<string> {
  const result = await build({
    ...WORKER_BUNDLE,
    entryPoints: [join(import.meta.dirname, "../../src/index.ts")],
    write: false,
    logLevel: "silent",
  });
  return result.outputFiles?.[0]?.text ?? "";
}

describe("the Worker's bundle", () => {
  it("is ASCII, so V8 keeps its source at one byte per character", async () => {
    // A single character past Latin-1 makes V8 store the whole ~700 KB
    // source as two bytes per character: 0.7 MB more heap in every isolate.
    const text = await workerBundle();
    expect(text.length).toBeGreaterThan(100_000);
    const wide = text.split("\n").filter((line) => /[\u0100-\uffff]/.test(line));
    expect(wide.map((line) => line.trim())).toEqual([]);
  });

  it("runs with Node.js compatibility off in every environment, and imports no Node.js module", async () => {
    // On by default from 2026-08-04: the protobuf runtime's look at `process`
    // would load the runtime's Node.js modules into every isolate (0.64 MB of
    // heap). Off, a `node:` import would fail the deployed Worker at startup.
    for (const env of ENVIRONMENTS)
      expect(optionsOf(env).compatibilityFlags).toEqual(
        expect.arrayContaining(["no_nodejs_compat", "no_nodejs_compat_v2"]),
      );
    const text = await workerBundle();
    expect(text.match(/(?:from|import\(|require\()\s*["']node:[^"']+["']/g) ?? []).toEqual([]);
  });
});

describe("npm start", () => {
  it("reloads on a change to any file of the Worker's (wrangler dev watches only build.watch_dir)", async () => {
    // With a build command set, `wrangler dev` rebuilds and reloads only on a
    // change under `watch_dir`: a directory left out serves stale code.
    const root = join(import.meta.dirname, "../..");
    const watched = [unstable_readConfig({ config: CONFIG }).build.watch_dir ?? []].flat();
    const result = await build({
      ...WORKER_BUNDLE,
      entryPoints: [join(root, "src/index.ts")],
      write: false,
      metafile: true,
      logLevel: "silent",
    });
    const ours = Object.keys(result.metafile.inputs)
      .map((input) => relative(root, join(process.cwd(), input)))
      .filter((path) => !path.startsWith("node_modules/"));
    expect(ours.length).toBeGreaterThan(50);
    const unwatched = ours.filter(
      (path) => !watched.some((dir) => path.startsWith(`${dir.replace(/\/$/, "")}/`)),
    );
    expect(unwatched).toEqual([]);
  });
});
