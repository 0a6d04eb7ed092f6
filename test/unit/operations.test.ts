/** Operations as pure logic: counting, the Prometheus text, trace context, log levels, alert rules. */
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import { log, setLogLevel } from "../../src/log";
import {
  emptyTotals,
  histogramQuantile,
  MetricsBuffer,
  mergeTotals,
  renderPrometheus,
  seriesKey,
  summarizeTotals,
} from "../../src/metrics/registry";
import { addToWindow, SLO_WINDOW_MS, windowTotals } from "../../src/metrics/slo-window";
import { parseTraceparent } from "../../src/middleware/trace";

function promtoolCheck(args: string[], input?: string) {
  return spawnSync("promtool", args, { input, encoding: "utf8" });
}

describe("counting", () => {
  it("keys series by name and sorted, escaped labels", () => {
    expect(seriesKey("crafting_throttles_total", { b: "2", a: 'x"y\\z\n' })).toBe(
      'crafting_throttles_total{a="x\\"y\\\\z\\n",b="2"}',
    );
    expect(seriesKey("crafting_dead_letters_total")).toBe("crafting_dead_letters_total");
  });

  it("drains deltas and merges them into totals, histograms included", () => {
    const buffer = new MetricsBuffer();
    buffer.count("crafting_messages_out_total", {}, 3);
    buffer.count("crafting_messages_out_total");
    buffer.observe("crafting_delivery_latency_seconds", 0.003);
    buffer.observe("crafting_delivery_latency_seconds", 7);
    expect(buffer.dirty).toBe(true);
    const totals = mergeTotals(emptyTotals(), buffer.drain());
    mergeTotals(totals, { counters: { crafting_messages_out_total: 1 }, histograms: {} });
    expect(buffer.dirty).toBe(false);
    expect(totals.counters.crafting_messages_out_total).toBe(5);
    const h = totals.histograms.crafting_delivery_latency_seconds;
    expect(h?.count).toBe(2);
    expect(h?.sum).toBeCloseTo(7.003);
    expect(histogramQuantile(h as never, 0.5)).toBe(0.005);
    expect(histogramQuantile(h as never, 0.99)).toBe(Number.POSITIVE_INFINITY);
  });

  it("derives streams open, sessions active, the failure share and the drop share", () => {
    const buffer = new MetricsBuffer();
    buffer.count("crafting_streams_opened_total", { kind: "session" }, 200);
    buffer.count("crafting_streams_closed_total", { kind: "session", code: "1000" }, 150);
    buffer.count("crafting_streams_closed_total", { kind: "session", code: "1006" }, 4);
    buffer.count("crafting_streams_closed_total", { kind: "session", code: "1011" }, 2);
    buffer.count("crafting_sessions_created_total", {}, 10);
    buffer.count("crafting_sessions_ended_total", { status: "completed" }, 7);
    const summary = summarizeTotals(buffer.drain());
    expect(summary).toMatchObject({
      streamsOpen: 44,
      sessionsActive: 3,
      // The server's failures (1011) only; drops (1006) beside them.
      streamFailureRatio: 0.01,
      streamDropRatio: 0.02,
      deliveryP99Seconds: null,
    });
  });
});

describe("the SLO's window", () => {
  const MINUTE = 60_000;
  /** A delta of `opened` streams, `failed` of them ended with 1011, and one delivery of `seconds`. */
  function delta(opened: number, failed: number, seconds: number) {
    const buffer = new MetricsBuffer();
    buffer.count("crafting_streams_opened_total", { kind: "session" }, opened);
    buffer.count("crafting_streams_closed_total", { kind: "session", code: "1011" }, failed);
    buffer.count("crafting_messages_out_total", {}, 5);
    buffer.observe("crafting_delivery_latency_seconds", seconds);
    return buffer.drain();
  }

  it("judges the last 15 minutes: a long calm history does not hide an outage, nor an old one linger", () => {
    const start = 1_000 * MINUTE;
    let window = addToWindow([], delta(100_000, 0, 0.004), start);
    // A week's calm, in one lifetime total; then an outage: 50 of 100 streams fail, slowly.
    const lifetime = mergeTotals(emptyTotals(), delta(100_000, 0, 0.004));
    const outageAt = start + 30 * MINUTE;
    const outage = delta(100, 50, 2);
    mergeTotals(lifetime, outage);
    window = addToWindow(window, outage, outageAt);
    expect(summarizeTotals(lifetime).streamFailureRatio).toBeLessThan(0.01);
    const now = summarizeTotals(windowTotals(window, outageAt + MINUTE));
    expect(now.streamFailureRatio).toBe(0.5);
    expect(now.deliveryP99Seconds).toBeGreaterThan(0.05);
    // Fifteen minutes on, with nothing since, it has left the window.
    const later = summarizeTotals(windowTotals(window, outageAt + SLO_WINDOW_MS));
    expect(later).toMatchObject({ streamFailureRatio: 0, deliveryP99Seconds: null });
  });

  it("keeps only the SLO's series, a bucket per minute, and drops buckets past the window", () => {
    const start = 2_000 * MINUTE;
    let window = addToWindow([], delta(10, 1, 0.01), start);
    window = addToWindow(window, delta(10, 1, 0.01), start + 30_000);
    window = addToWindow(window, delta(10, 0, 0.01), start + 14 * MINUTE);
    expect(window.map((bucket) => bucket.minute)).toEqual([2_000, 2_014]);
    // The buckets given are not changed: a new list, with a new bucket for this minute.
    const given = JSON.stringify(window);
    expect(addToWindow(window, delta(5, 5, 1), start + 14 * MINUTE)).not.toBe(window);
    expect(JSON.stringify(window)).toBe(given);
    expect(Object.keys(window[0]?.totals.counters ?? {}).sort()).toEqual([
      'crafting_streams_closed_total{code="1011",kind="session"}',
      'crafting_streams_opened_total{kind="session"}',
    ]);
    expect(summarizeTotals(windowTotals(window, start + 14 * MINUTE)).streamFailureRatio).toBe(
      2 / 30,
    );
    // A delta with nothing of the SLO's adds no bucket, and still ages the old ones out.
    const buffer = new MetricsBuffer();
    buffer.count("crafting_messages_out_total", {}, 1);
    window = addToWindow(window, buffer.drain(), start + 15 * MINUTE);
    expect(window.map((bucket) => bucket.minute)).toEqual([2_014]);
  });
});

describe("the Prometheus text", () => {
  function sample(): string {
    const buffer = new MetricsBuffer();
    buffer.count(
      "crafting_http_requests_total",
      { route: "/v1/sessions/:id/:action", code: "200" },
      12,
    );
    buffer.count("crafting_auth_failures_total", { reason: "bad_signature" });
    buffer.count("crafting_streams_opened_total", { kind: "session" }, 5);
    buffer.count("crafting_streams_closed_total", { kind: "session", code: "1000" }, 2);
    for (const s of [0.0004, 0.002, 0.02, 0.3])
      buffer.observe("crafting_delivery_latency_seconds", s);
    return renderPrometheus(buffer.drain(), [
      { name: "crafting_slo_breached", help: "Thresholds exceeded.", value: 0 },
    ]);
  }

  it("writes cumulative histogram buckets, sum and count, and the derived gauges", () => {
    const text = sample();
    expect(text).toContain('crafting_delivery_latency_seconds_bucket{le="0.001"} 1');
    expect(text).toContain('crafting_delivery_latency_seconds_bucket{le="0.025"} 3');
    expect(text).toContain('crafting_delivery_latency_seconds_bucket{le="+Inf"} 4');
    expect(text).toContain("crafting_delivery_latency_seconds_count 4");
    expect(text).toContain('crafting_streams_open{kind="session"} 3');
    expect(text).toContain("# TYPE crafting_streams_opened_total counter");
    expect(text).toContain("crafting_slo_breached 0");
  });

  it("passes promtool check metrics", () => {
    const result = promtoolCheck(["check", "metrics"], sample());
    expect(result.stderr + result.stdout).not.toMatch(/error|problem/i);
    expect(result.status).toBe(0);
  });

  it("ships alert rules that promtool accepts", () => {
    const result = promtoolCheck([
      "check",
      "rules",
      join(import.meta.dirname, "../../deploy/prometheus/alerts.yml"),
    ]);
    expect(result.stdout).toContain("SUCCESS: 7 rules found");
    expect(result.status).toBe(0);
  });

  it("pages on the server's stream failures, not on clients that drop, and tickets queued events (alerts.test.yml)", () => {
    const result = promtoolCheck([
      "test",
      "rules",
      join(import.meta.dirname, "../../deploy/prometheus/alerts.test.yml"),
    ]);
    expect(result.stdout + result.stderr).toContain("SUCCESS");
    expect(result.status).toBe(0);
  });
});

describe("trace context", () => {
  it("takes the trace id of a valid traceparent and refuses invalid ones", () => {
    expect(parseTraceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")).toBe(
      "4bf92f3577b34da6a3ce929d0e0e4736",
    );
    for (const bad of [
      null,
      "",
      "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
      "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
      "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
      "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
      "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",
    ]) {
      expect(parseTraceparent(bad), String(bad)).toBeNull();
    }
  });
});

describe("log levels", () => {
  afterEach(() => {
    setLogLevel("info");
    vi.restoreAllMocks();
  });

  it("writes JSON lines at or above the configured level only", () => {
    const lines: string[] = [];
    for (const method of ["log", "warn", "error"] as const) {
      vi.spyOn(console, method).mockImplementation((line: string) => {
        lines.push(line);
      });
    }
    setLogLevel("warn");
    log("debug", "a");
    log("info", "b");
    log("warn", "c", { trace_id: "t" });
    log("error", "d");
    expect(lines.map((line) => (JSON.parse(line) as { event: string }).event)).toEqual(["c", "d"]);
    expect(JSON.parse(lines[0] as string)).toMatchObject({
      level: "warn",
      event: "c",
      trace_id: "t",
    });
    setLogLevel("nonsense");
    log("info", "e");
    expect(lines).toHaveLength(3);
  });
});
