/**
 * Every link between the README and docs/ leads somewhere: to a file of the
 * repository, and to a heading of it when it names one (GitHub's anchors:
 * the heading lowercased, punctuation dropped, spaces as hyphens); and
 * every file of the repository they name in code (`src/…`) exists.
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join, normalize } from "node:path";
import { describe, expect, it } from "vitest";

const root = join(import.meta.dirname, "../..");
const pages = [
  "README.md",
  ...readdirSync(join(root, "docs"))
    .filter((f) => f.endsWith(".md"))
    .map((f) => `docs/${f}`),
];

/** A heading's anchor, as GitHub writes it. */
function anchorOf(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\- _]/gu, "")
    .replace(/ /g, "-");
}

function anchorsOf(page: string): Set<string> {
  const text = readFileSync(join(root, page), "utf8").replace(/```[\s\S]*?```/g, "");
  return new Set([...text.matchAll(/^#{1,6} (.+)$/gm)].map((m) => anchorOf(m[1] ?? "")));
}

describe("the documentation's links", () => {
  it("names anchors as GitHub does", () => {
    expect(anchorOf("Placement: sessions near their players")).toBe(
      "placement-sessions-near-their-players",
    );
    expect(anchorOf("The `ingest` stream (goal 4)")).toBe("the-ingest-stream-goal-4");
  });

  it("leads to a file that exists, and to a heading it has", () => {
    const broken: string[] = [];
    for (const page of pages) {
      const text = readFileSync(join(root, page), "utf8").replace(/```[\s\S]*?```/g, "");
      for (const [, link = ""] of text.matchAll(/\]\(([^)\s]+)\)/g)) {
        if (/^[a-z]+:/.test(link)) continue;
        const [path = "", anchor] = link.split("#");
        const target = path ? normalize(join(dirname(page), path)) : page;
        if (!existsSync(join(root, target))) broken.push(`${page}: ${link} (no such file)`);
        else if (anchor && target.endsWith(".md") && !anchorsOf(target).has(anchor))
          broken.push(`${page}: ${link} (no such heading in ${target})`);
      }
    }
    expect(broken).toEqual([]);
  });

  it("names only files that exist when it names one in code", () => {
    const gone: string[] = [];
    for (const page of pages) {
      const text = readFileSync(join(root, page), "utf8");
      const named = text.matchAll(
        /`((?:src|durable-objects|test|bench|scripts|public|proto|deploy|docs)\/[^`\s*{}…]+?)[.,;:)]?(?:[:#][^`]*)?`/g,
      );
      // bench/.build holds the scratch harnesses the benchmark notes describe (never committed).
      for (const [, path = ""] of named)
        if (!path.startsWith("bench/.build/") && !existsSync(join(root, path)))
          gone.push(`${page}: ${path}`);
    }
    expect(gone).toEqual([]);
  });
});
