/**
 * wrangler.toml's environments (local, staging, production) as wrangler reads
 * them: each binds everything the code uses, on queues and rate-limit
 * counters of its own, and its dead-letter queue is recognised as one; and
 * the Worker's bundle is ASCII.
 */
import { join } from "node:path";
import { build } from "esbuild";
import { describe, expect, it } from "vitest";
import { unstable_getMiniflareWorkerOptions } from "wrangler";
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

describe("the Worker's bundle", () => {
  it("is ASCII, so V8 keeps its source at one byte per character", async () => {
    // As wrangler bundles it (comments in class bodies survive). A single
    // character past Latin-1 makes V8 store the whole ~700 KB source as two
    // bytes per character: 0.7 MB more heap in every isolate.
    const result = await build({
      ...WORKER_BUNDLE,
      entryPoints: [join(import.meta.dirname, "../../src/index.ts")],
      write: false,
      logLevel: "silent",
    });
    const text = result.outputFiles?.[0]?.text ?? "";
    expect(text.length).toBeGreaterThan(100_000);
    const wide = text.split("\n").filter((line) => /[\u0100-\uffff]/.test(line));
    expect(wide.map((line) => line.trim())).toEqual([]);
  });
});
