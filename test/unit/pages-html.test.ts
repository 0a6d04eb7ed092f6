/**
 * The dashboard pages build markup only with `html` (public/js/html.js), which
 * escapes every value put into it: a step name is free text a producer chose,
 * so a value must never become markup.
 */
import { createHash } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

type Html = (strings: TemplateStringsArray, ...values: unknown[]) => { toString(): string };
const PAGES_JS = join(import.meta.dirname, "../../public/js");
const module = join(PAGES_JS, "html.js");
const { html } = (await import(module)) as { html: Html };

describe("html, the pages' one way to build markup", () => {
  it("escapes every character that could open or close markup or an attribute", () => {
    const name = `<img src=x onerror="steal()">&'`;
    expect(String(html`<li title="${name}">${name}</li>`)).toBe(
      '<li title="&lt;img src=x onerror=&quot;steal()&quot;&gt;&amp;&#39;">&lt;img src=x onerror=&quot;steal()&quot;&gt;&amp;&#39;</li>',
    );
  });

  it("keeps its own markup when nested, joins a list, and shows nothing for null", () => {
    const rows = ["a<b", "c"].map((id) => html`<td>${id}</td>`);
    expect(String(html`<tr>${rows}</tr>${null}${undefined}${0}`)).toBe(
      "<tr><td>a&lt;b</td><td>c</td></tr>0",
    );
  });

  it("is how every page script writes markup: no untagged template starts a tag", () => {
    const scripts = readdirSync(PAGES_JS).filter(
      (file) => file.endsWith(".js") && !file.startsWith("sdk"),
    );
    expect(scripts).toEqual(expect.arrayContaining(["operator.js", "player.js"]));
    for (const file of scripts) {
      const source = readFileSync(join(PAGES_JS, file), "utf8");
      const untagged = [...source.matchAll(/(?<!html)`\s*<[a-z]/g)].map((m) => m[0]);
      expect({ file, untagged }).toEqual({ file, untagged: [] });
    }
  });

  it("admits the example page's inline script by its hash, and no other script there", () => {
    const page = readFileSync(
      join(import.meta.dirname, "../../public/examples/progress.html"),
      "utf8",
    );
    const scripts = [...page.matchAll(/<script type="module">([\s\S]*?)<\/script>/g)];
    expect(scripts).toHaveLength(1);
    const hash = createHash("sha256")
      .update(scripts[0]?.[1] ?? "")
      .digest("base64");
    const headers = readFileSync(join(import.meta.dirname, "../../public/_headers"), "utf8");
    const policy = headers.match(/^\/examples\/\*\n\s+Content-Security-Policy: (.*)$/m)?.[1];
    expect(policy).toContain(`script-src 'self' 'sha256-${hash}';`);
    expect(policy).toContain("default-src 'none'");
    expect(policy).toContain("frame-ancestors 'none'");
  });
});
