/**
 * What the operator page (public/operator.html) reads from `/metrics`, from
 * the service's own Prometheus text: the page's parsing is plain JS, held
 * here against the renderer it reads.
 */
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { MetricsBuffer, renderPrometheus } from "../../src/metrics/registry";

interface OwedRow {
  object: string;
  work: string;
  retry_scheduled: number;
  done: number;
  abandoned: number;
}
const charts = (await import(join(import.meta.dirname, "../../public/js/charts.js"))) as {
  parseMetrics: (text: string) => unknown[];
  owedWork: (samples: unknown[]) => OwedRow[];
};

describe("the operator page's owed work", () => {
  it("is a row per object and work with each outcome's count, the given-up first", () => {
    const buffer = new MetricsBuffer();
    const owed = (object: string, work: string, outcome: string, n: number) =>
      buffer.count("crafting_owed_work_total", { object, work, outcome }, n);
    owed("session", "notify", "retry_scheduled", 5);
    owed("session", "notify", "done", 4);
    owed("workflow", "step_start", "retry_scheduled", 60);
    owed("workflow", "step_start", "abandoned", 1);
    const text = renderPrometheus(buffer.drain());
    expect(charts.owedWork(charts.parseMetrics(text))).toEqual([
      { object: "workflow", work: "step_start", retry_scheduled: 60, done: 0, abandoned: 1 },
      { object: "session", work: "notify", retry_scheduled: 5, done: 4, abandoned: 0 },
    ]);
  });

  it("is empty while nothing was owed, whatever else was counted", () => {
    const buffer = new MetricsBuffer();
    buffer.count("crafting_messages_in_total", {}, 3);
    expect(charts.owedWork(charts.parseMetrics(renderPrometheus(buffer.drain())))).toEqual([]);
  });
});
