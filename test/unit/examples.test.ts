/** The SDK's two short clients: docs/sdk.md shows exactly the files the e2e test runs. */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

const root = join(import.meta.dirname, "../..");
const EXAMPLES = ["public/examples/progress.html", "docs/examples/node-client.mjs"];

describe("the game clients in docs/sdk.md", () => {
  const page = readFileSync(join(root, "docs/sdk.md"), "utf8");

  it.each(EXAMPLES)("shows %s to the byte, in at most twenty lines", (file) => {
    const source = readFileSync(join(root, file), "utf8").trimEnd();
    expect(page).toContain(source);
    expect(source.split("\n").filter((line) => line.trim() !== "").length).toBeLessThanOrEqual(20);
  });
});
