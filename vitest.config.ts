import { cloudflareTest } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";
import { TEST_JWT_SECRET } from "./test/support/secret.ts";

export default defineConfig({
  test: {
    // CI also writes a JSON report, from which .ci/run prints its closing line.
    reporters: process.env.CI ? ["default", "json"] : ["default"],
    outputFile: { json: "test-results/vitest.json" },
    // The service's JSON log lines are printed for failing tests only.
    silent: "passed-only",
    projects: [
      {
        test: { name: "unit", include: ["test/unit/**/*.test.ts"], environment: "node" },
      },
      {
        plugins: [
          cloudflareTest({
            wrangler: { configPath: "./wrangler.toml" },
            miniflare: { bindings: { JWT_SECRET: TEST_JWT_SECRET } },
          }),
        ],
        // Queue deliveries and alarms take their time when every file runs at once.
        test: {
          name: "workers",
          include: ["test/workers/**/*.test.ts"],
          // A JWKS served locally: the identity provider of the token tests.
          globalSetup: ["test/workers/identity-provider.setup.ts"],
          testTimeout: 20_000,
        },
      },
      {
        test: {
          name: "e2e",
          include: ["test/e2e/**/*.test.ts"],
          environment: "node",
          globalSetup: ["test/e2e/global-setup.ts"],
          testTimeout: 30_000,
          hookTimeout: 120_000,
        },
      },
    ],
  },
});
