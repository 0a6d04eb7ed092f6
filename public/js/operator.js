// The operator dashboard, with an operator token (npm run token -- --operator):
// polls /metrics and the dead-letter log and draws charts; the health checks
// arrive live over /health/ws; any session, player's queue or workflow can be
// watched live by id.
import { LineChart, owedWork, parseMetrics, tokenFrom } from "./charts.js";
import { html } from "./html.js";
import { LiteClient } from "./sdk-lite.js";

const POLL_MS = 2000;
const KEY = "crafting.operatorToken";
const $ = (selector) => document.querySelector(selector);
const charts = {
  sessions: new LineChart($("#chart-sessions")),
  streams: new LineChart($("#chart-streams")),
  messages: new LineChart($("#chart-messages")),
  latency: new LineChart($("#chart-latency")),
};
let token = tokenFrom(KEY);
let previous = null;

function askForToken() {
  $("#token-panel").hidden = false;
  // Said where the health goes, which otherwise waits ("health …") for a token.
  $("#health").textContent = "needs an operator token";
  $("#health").className = "status";
  $("#token-form").onsubmit = (event) => {
    event.preventDefault();
    token = $("#token-input").value.trim();
    sessionStorage.setItem(KEY, token);
    $("#token-panel").hidden = true;
  };
}

async function get(path, init = {}) {
  const response = await fetch(path, {
    ...init,
    headers: { Authorization: `Bearer ${token}`, ...init.headers },
  });
  if (response.status === 401 || response.status === 403) {
    askForToken();
    throw new Error(`${path}: ${response.status}`);
  }
  return response;
}

const sum = (samples, name, filter = () => true) =>
  samples
    .filter((s) => s.name === name && filter(s.labels))
    .reduce((total, s) => total + s.value, 0);

// Quantile of the observations between two cumulative histograms (linear within a bucket).
function quantile(now, before, q) {
  const buckets = now
    .filter((s) => s.name === "crafting_delivery_latency_seconds_bucket")
    .map((s) => {
      const old = before.find((b) => b.name === s.name && b.labels.le === s.labels.le);
      return {
        le: s.labels.le === "+Inf" ? Number.POSITIVE_INFINITY : Number(s.labels.le),
        count: s.value - (old?.value ?? 0),
      };
    })
    .sort((a, b) => a.le - b.le);
  const total = buckets.at(-1)?.count ?? 0;
  if (total <= 0) return null;
  const rank = q * total;
  let lower = 0;
  let below = 0;
  for (const { le, count } of buckets) {
    if (count >= rank) {
      if (!Number.isFinite(le)) return lower * 1000;
      const inBucket = count - below;
      return (lower + ((rank - below) / Math.max(1, inBucket)) * (le - lower)) * 1000;
    }
    lower = Number.isFinite(le) ? le : lower;
    below = count;
  }
  return lower * 1000;
}

const show = (name, value, digits = 0) => {
  const el = document.querySelector(`[data-metric="${name}"]`);
  if (el && value !== null && value !== undefined) el.textContent = Number(value).toFixed(digits);
};

async function poll() {
  if (!token) return askForToken();
  const at = performance.now();
  const samples = parseMetrics(await (await get("/metrics")).text());
  const current = { at, samples };
  const sessions = sum(samples, "crafting_sessions_active");
  show("sessions", sessions);
  charts.sessions.push("sessions", sessions);
  const kinds = {};
  for (const s of samples.filter((x) => x.name === "crafting_streams_open"))
    kinds[s.labels.kind] = (kinds[s.labels.kind] ?? 0) + s.value;
  const streams = Object.entries(kinds);
  $("#streams").innerHTML =
    streams.length === 0
      ? html`<dt>none</dt><dd>0</dd>`
      : html`${streams.map(([kind, n]) => html`<dt>${kind}</dt><dd data-stream-kind="${kind}">${n}</dd>`)}`;
  for (const [kind, n] of Object.entries(kinds)) charts.streams.push(kind, n);
  if (previous) {
    const seconds = (at - previous.at) / 1000;
    const rate = (name) =>
      Math.max(0, (sum(samples, name) - sum(previous.samples, name)) / seconds);
    const out = rate("crafting_messages_out_total");
    const inbound = rate("crafting_messages_in_total");
    show("out-rate", out, 1);
    show("in-rate", inbound, 1);
    charts.messages.push("out/s", out);
    charts.messages.push("in/s", inbound);
    const p99 = quantile(samples, previous.samples, 0.99);
    const p50 = quantile(samples, previous.samples, 0.5);
    if (p99 !== null) {
      show("p99", p99, 1);
      show("p50", p50, 1);
    }
    charts.latency.push("p99 ms", p99 ?? 0);
    charts.latency.push("p50 ms", p50 ?? 0);
  }
  if (previous) showCost(samples, previous.samples, (at - previous.at) / 1000, sessions);
  showOwed(samples);
  previous = current;
  const letters = await (await get("/v1/events/dead-letters?limit=5")).json();
  show("dlq", letters.count);
  $("#letters").innerHTML = html`${letters.letters.map(
    (l) =>
      html`<tr><td>${Number(l.id)}</td><td>${new Date(l.atMs).toLocaleTimeString()}</td><td>${l.body?.eventId ?? l.queue}</td><td>${l.reason}</td></tr>`,
  )}`;
  for (const chart of Object.values(charts)) chart.draw();
  $("#updated").textContent = `updated ${new Date().toLocaleTimeString()}`;
  document.body.dataset.polls = String(Number(document.body.dataset.polls ?? 0) + 1);
}

let pricing = null;
fetch("/pricing.json")
  .then((response) => response.json())
  .then((prices) => {
    pricing = prices;
    $("#pricing-source").textContent = `list prices as of ${prices.as_of} (public/pricing.json)`;
  })
  .catch(() => {});

/**
 * What the last interval cost at list prices, per hour and per 1,000 active
 * sessions per hour: Worker requests, Durable Object requests (API calls
 * reaching an object, alarms, slot checks, and incoming WebSocket messages
 * at 20:1), storage rows written and read. Not counted: duration (objects
 * that can hibernate are not billed while idle) and included allowances.
 */
function showCost(now, before, seconds, sessions) {
  if (!pricing || seconds <= 0) return;
  const perHour = (name, filter) =>
    (Math.max(0, sum(now, name, filter) - sum(before, name, filter)) * 3600) / seconds;
  const requests = perHour("crafting_http_requests_total");
  const wakes = perHour("crafting_object_wakes_total", (l) => l.event !== "message");
  const messages = perHour("crafting_messages_in_total");
  const written = perHour("crafting_storage_rows_written_total");
  const read = perHour("crafting_storage_rows_read_total");
  const parts = {
    "Worker requests": (requests * pricing.workers_requests_per_million) / 1e6,
    "object requests":
      ((requests + wakes + messages / pricing.websocket_messages_per_billed_request) *
        pricing.durable_objects_requests_per_million) /
      1e6,
    "rows written": (written * pricing.sqlite_rows_written_per_million) / 1e6,
    "rows read": (read * pricing.sqlite_rows_read_per_million) / 1e6,
  };
  const total = Object.values(parts).reduce((a, b) => a + b, 0);
  show("cost-hour", total, 4);
  show("cost-per-1000", sessions > 0 ? (total / sessions) * 1000 : null, 4);
  $("#cost-parts").innerHTML = html`${Object.entries(parts).map(
    ([name, dollars]) => html`<dt>${name}</dt><dd>$${dollars.toFixed(4)}/h</dd>`,
  )}`;
  document.body.dataset.costSamples = String(Number(document.body.dataset.costSamples ?? 0) + 1);
}

/** Work objects owe others, retried by their alarms: counts since the service started. */
function showOwed(samples) {
  const rows = owedWork(samples);
  const total = (outcome) => rows.reduce((n, row) => n + row[outcome], 0);
  show("owed-abandoned", total("abandoned"));
  show("owed-scheduled", total("retry_scheduled"));
  $("#owed").innerHTML =
    rows.length === 0
      ? html`<tr><td colspan="5" class="muted">nothing owed since the service started</td></tr>`
      : html`${rows.map(
          (r) =>
            html`<tr data-owed="${r.object}.${r.work}" class="${r.abandoned > 0 ? "bad" : ""}"><td>${r.object}</td><td>${r.work}</td><td>${r.retry_scheduled}</td><td>${r.done}</td><td>${r.abandoned}</td></tr>`,
        )}`;
}

/** A stream opened with the token in the subprotocol list (browsers cannot set headers on a WebSocket). */
function stream(path, onFrame, onClose) {
  const url = `${location.origin.replace(/^http/, "ws")}${path}`;
  const ws = new WebSocket(url, ["crafting.v1.json", `bearer.${token}`]);
  ws.onmessage = (event) => onFrame(JSON.parse(event.data));
  ws.onclose = (event) => onClose(event);
  // Keepalive answered by the runtime, without waking the object.
  const keepalive = setInterval(() => ws.readyState === 1 && ws.send("ping"), 20_000);
  ws.addEventListener("close", () => clearInterval(keepalive));
  return ws;
}

/** The health checks, live: the health stream sends a snapshot on every change. */
function watchHealth() {
  if (!token) return setTimeout(watchHealth, 1_000);
  stream(
    "/health/ws",
    (frame) => {
      if (!frame.health) return;
      const status = frame.health.status.replace("HEALTH_STATUS_", "").toLowerCase();
      const badge = $("#health");
      badge.textContent = `health ${status}`;
      badge.className = `status ${status}`;
      $("#checks").innerHTML = html`${(frame.health.checks ?? []).map((c) => {
        const s = c.status.replace("HEALTH_STATUS_", "").toLowerCase();
        const ms = c.latencyMs === undefined ? "" : Number(c.latencyMs).toFixed(0);
        return html`<tr><td>${c.name}</td><td><span class="status ${s}">${s}</span></td><td>${ms}</td></tr>`;
      })}`;
      document.body.dataset.healthFrames = String(
        Number(document.body.dataset.healthFrames ?? 0) + 1,
      );
    },
    (event) => {
      if (event.code === 4001 || event.code === 4003) askForToken();
      setTimeout(watchHealth, 2_000);
    },
  );
}

/** A wire enum's name without its prefix, in lower case (`SESSION_STATUS_ACTIVE` → `active`). */
const lower = (value, prefix) =>
  String(value ?? "")
    .replace(prefix, "")
    .toLowerCase();

/** The live view each box (session, queue, workflow) holds: opening another closes it. */
const watching = {};

/**
 * Opens a live view in `name`'s box with the light SDK (read-only,
 * audit-logged by the service): the box says "connecting…", and a refusal
 * (no such id, a refused token) as `closed: code reason`; the end of what
 * is watched (1000) is no error. `live()` is true while it is the box's view.
 */
function openView(name, open) {
  watching[name]?.close();
  const view = $(`#${name}-view`);
  view.textContent = "connecting…";
  const stream = open(new LiteClient({ baseUrl: location.origin, token: () => token }));
  watching[name] = stream;
  stream.on("state", ({ state, code, reason }) => {
    if (state === "closed" && code !== 1000) view.textContent = `closed: ${code} ${reason}`;
  });
  return { view, stream, live: () => watching[name] === stream && stream.state !== "closed" };
}

/** Redraws with `render` four times a second while `live()`: progress follows the clock between frames. */
function animate(live, render) {
  const frame = () => {
    if (!live()) return;
    render();
    setTimeout(() => requestAnimationFrame(frame), 250);
  };
  requestAnimationFrame(frame);
}

/**
 * Any session by id, held as a player's client holds it (the same merge of
 * updates and material changes, reconnect and resume); updates carry only
 * what changed, so the progress follows the session's clock between them.
 */
function watchSession(sessionId) {
  const { view, stream: session, live } = openView("session", (c) => c.watchSession(sessionId));
  const render = () => {
    const state = session.current;
    if (!state) return;
    const p = session.predictProgress();
    const materials = (state.materials ?? []).map(
      (m) => `${m.materialId} ${m.available ?? 0}/${m.required ?? 0}`,
    );
    const missing = (state.materials ?? []).some((m) => (m.available ?? 0) < (m.required ?? 0));
    view.innerHTML = html`<dl class="kv"><dt>player</dt><dd>${state.playerId}</dd><dt>status</dt><dd data-session-status>${lower(state.status, "SESSION_STATUS_")}</dd>${state.failureReason ? html`<dt>reason</dt><dd data-session-reason>${state.failureReason}</dd>` : ""}<dt>progress</dt><dd data-session-progress>${p.percent.toFixed(1)} %</dd><dt>step</dt><dd>${state.steps?.[p.stepIndex]?.name ?? ""}</dd><dt>materials</dt><dd data-session-materials>${materials.length ? `${materials.join(", ")}${missing ? " (missing)" : ""}` : "none required"}</dd><dt>seq</dt><dd data-session-seq>${state.seq}</dd></dl>`;
  };
  session.on("change", () => {
    render();
    document.body.dataset.sessionFrames = String(
      Number(document.body.dataset.sessionFrames ?? 0) + 1,
    );
  });
  animate(live, render);
}

/**
 * Any player's crafting queue by id: how many requests they craft at once,
 * what holds the slots and what waits (position, wait), and the last
 * requests that left it, with why.
 */
function watchQueue(playerId) {
  const { view, stream: queue } = openView("queue", (c) => c.watchQueue(playerId));
  const status = (s) => lower(s, "QUEUE_ENTRY_STATUS_");
  let ended = [];
  queue.on("change", (q) => {
    ended = [...(q.ended ?? []), ...ended].slice(0, 5);
    const entries = q.entries ?? [];
    // proto3 JSON leaves out zeros: position 0 (processing) and a wait of 0.
    const rows = entries.map(
      (e) =>
        html`<tr><td>${e.requestId}</td><td>${e.recipeId}</td><td>${status(e.status)}</td><td>${e.queuePosition ?? 0}</td><td>${Number(e.estimatedWaitSeconds ?? 0).toFixed(0)} s</td></tr>`,
    );
    const left = ended.map(
      (e) =>
        html`<tr class="muted" data-queue-ended><td>${e.requestId}</td><td>${e.recipeId}</td><td colspan="3">${status(e.status)}${e.failureReason ? `: ${e.failureReason}` : ""}</td></tr>`,
    );
    view.innerHTML = html`<p data-queue-slots>${q.slots} slot${q.slots === 1 ? "" : "s"}</p><table><thead><tr><th>request</th><th>recipe</th><th>status</th><th>position</th><th>wait</th></tr></thead><tbody>${entries.length ? rows : html`<tr><td colspan="5" class="muted">empty</td></tr>`}${left}</tbody></table>`;
  });
}

/**
 * Any workflow by id: its status (and why it failed), each step's status
 * and progress, moving with the steps' clocks.
 */
function watchWorkflow(workflowId) {
  const { view, stream: workflow, live } = openView("workflow", (c) => c.watchWorkflow(workflowId));
  const status = (s) => lower(s, "WORKFLOW_STATUS_");
  // A step not started has no status yet (proto3 JSON leaves out the zero value).
  const render = () => {
    const w = workflow.current;
    if (!w) return;
    const p = workflow.predictProgress();
    const steps = (w.steps ?? []).map(
      (step, i) =>
        html`<tr data-workflow-step><td>${i === (w.currentStepIndex ?? 0) ? "▶ " : ""}${step.name}</td><td>${step.recipeId}</td><td>${status(step.status) || "not started"}${step.failureReason ? `: ${step.failureReason}` : ""}</td><td>${(p.steps[i] ?? 0).toFixed(1)} %</td></tr>`,
    );
    view.innerHTML = html`<dl class="kv"><dt>player</dt><dd>${w.playerId}</dd><dt>status</dt><dd data-workflow-status>${status(w.status)}${w.failureReason ? `: ${w.failureReason}` : ""}</dd><dt>progress</dt><dd data-workflow-progress>${p.percent.toFixed(1)} %</dd></dl><table><thead><tr><th>step</th><th>recipe</th><th>status</th><th>progress</th></tr></thead><tbody>${steps}</tbody></table>`;
  };
  workflow.on("change", render);
  animate(live, render);
}

/** A "watch by id" form: `watch(id)` on submit; a refused id (thrown by the SDK) is said in its view. */
function watchForm(name, watch) {
  $(`#${name}-form`).onsubmit = (event) => {
    event.preventDefault();
    const id = $(`#${name}-input`).value.trim();
    if (!id) return;
    try {
      watch(id);
    } catch (error) {
      $(`#${name}-view`).textContent = error.message;
    }
  };
}
watchForm("session", watchSession);
watchForm("queue", watchQueue);
watchForm("workflow", watchWorkflow);

async function loop(fn, every) {
  for (;;) {
    try {
      await fn();
    } catch (error) {
      $("#updated").textContent = `retrying: ${error.message}`;
    }
    await new Promise((resolve) => setTimeout(resolve, every));
  }
}

loop(poll, POLL_MS);
watchHealth();
