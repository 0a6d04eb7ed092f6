// The player view, built on the client SDK: a session's progress (smooth between
// updates, never backwards), its steps and materials, the player's queue, a workflow.

import { tokenFrom } from "./charts.js";
import { html } from "./html.js";
import { CraftingClient } from "./sdk.js";

const $ = (selector) => document.querySelector(selector);
const params = new URLSearchParams(location.search);
const token = tokenFrom("crafting.playerToken");
const ids = {
  player: params.get("player"),
  session: params.get("session"),
  workflow: params.get("workflow"),
};

if (!token || !ids.player) {
  // Nothing to watch until the form is filled in: said, not "connecting".
  $("#connection").textContent = "not watching";
  document.body.dataset.connection = "setup";
  $("#setup").hidden = false;
  for (const [key, value] of Object.entries(ids)) if (value) $(`#${key}`).value = value;
  $("#setup-form").onsubmit = (event) => {
    event.preventDefault();
    const form = new FormData(event.target);
    const query = new URLSearchParams();
    for (const key of ["player", "session", "workflow"])
      if (form.get(key)) query.set(key, form.get(key));
    location.href = `/player.html?${query}#token=${encodeURIComponent(form.get("token"))}`;
  };
} else {
  start();
}

const SESSION_STATUS = ["", "queued", "active", "paused", "completed", "failed", "cancelled"];
const STEP_STATUS = ["", "pending", "active", "paused", "completed", "failed", "cancelled"];
const QUEUE_STATUS = ["", "queued", "processing", "completed", "failed", "cancelled"];
const WORKFLOW_STATUS = ["", "active", "paused", "completed", "failed"];

function start() {
  const client = new CraftingClient({ baseUrl: location.origin, token: () => token });
  const connection = $("#connection");
  // A refused stream ends with a close code and the server's reason (a wrong
  // token, another player's session, no such session): say it, do not retry.
  // A stream that ended normally (1000: the session completed) is no error.
  const onState = ({ state, code, reason }) => {
    const shown = state === "closed" && code === 1000 ? "ended" : state;
    connection.textContent = state === "closed" && reason ? `${shown}: ${reason}` : shown;
    connection.className = `status ${shown}`;
    document.body.dataset.connection = state;
    if (state === "closed" && code) document.body.dataset.closeCode = String(code);
  };

  if (ids.session) {
    const session = client.watchSession(ids.session);
    session.on("state", onState);
    $("#session-id").textContent = ids.session;
    session.on("change", (state) => {
      const status = SESSION_STATUS[state.status] ?? "";
      // A failed or cancelled session says why, as crafting-service said it.
      $("#session-status").textContent = state.failureReason
        ? `${status}: ${state.failureReason}`
        : status;
      $("#materials").innerHTML =
        state.materials.length === 0
          ? html`<tr><td colspan="3" class="muted">none required</td></tr>`
          : html`${state.materials.map(
              (m) =>
                html`<tr class="${m.available < m.required ? "missing" : ""}"><td>${m.materialId}</td><td>${m.available}</td><td>${m.required}</td></tr>`,
            )}`;
    });
    const frame = () => {
      const state = session.session;
      if (state) {
        const p = session.predictProgress();
        $("#progress").style.width = `${p.percent.toFixed(2)}%`;
        $("#percent").textContent = p.percent.toFixed(1);
        document.body.dataset.progress = p.percent.toFixed(3);
        $("#step-name").textContent = state.steps[p.stepIndex]?.name ?? "";
        $("#steps").innerHTML = html`${state.steps.map((step, i) => {
          const percent =
            i < p.stepIndex || state.status === 4 ? 100 : i === p.stepIndex ? p.stepPercent : 0;
          return html`<li><span>${step.name} <span class="muted">${STEP_STATUS[step.status] ?? ""}</span></span><div class="bar"><div style="width:${percent.toFixed(1)}%"></div></div></li>`;
        })}`;
      }
      $("#clock").textContent = `server time ${new Date(client.serverNow()).toLocaleTimeString()}`;
      requestAnimationFrame(frame);
    };
    requestAnimationFrame(frame);
  }

  const queue = client.watchQueue(ids.player);
  if (!ids.session) queue.on("state", onState);
  // Requests that left the queue while watching, newest first: how each ended, and why.
  let ended = [];
  queue.on("change", (snapshot) => {
    ended = [...snapshot.ended, ...ended].slice(0, 5);
    const live =
      snapshot.entries.length === 0
        ? html`<tr><td colspan="5" class="muted">empty</td></tr>`
        : html`${snapshot.entries.map(
            (e) =>
              html`<tr><td>${e.requestId}</td><td>${e.recipeId}</td><td>${QUEUE_STATUS[e.status] ?? ""}</td><td>${e.queuePosition}</td><td>${e.estimatedWaitSeconds.toFixed(0)} s</td></tr>`,
          )}`;
    // How many requests the player crafts at once: why two can be processing.
    $("#queue-slots").textContent = `${snapshot.slots} slot${snapshot.slots === 1 ? "" : "s"}`;
    $("#queue").innerHTML = html`${live}${ended.map(
      (e) =>
        html`<tr class="muted" data-ended><td>${e.requestId}</td><td>${e.recipeId}</td><td colspan="3">${QUEUE_STATUS[e.status] ?? ""}${e.failureReason ? `: ${e.failureReason}` : ""}</td></tr>`,
    )}`;
    document.body.dataset.queueUpdates = String(
      Number(document.body.dataset.queueUpdates ?? 0) + 1,
    );
  });

  if (ids.workflow) {
    const workflow = client.watchWorkflow(ids.workflow);
    workflow.on("change", (w) => {
      const status = WORKFLOW_STATUS[w.status] ?? "";
      $("#workflow-status").textContent = w.failureReason
        ? `${status}: ${w.failureReason}`
        : status;
      $("#workflow-steps").innerHTML = html`${w.steps.map(
        (s, i) =>
          html`<li><span>${i === w.currentStepIndex ? "▶ " : ""}${s.name}</span><div class="bar"><div></div></div></li>`,
      )}`;
    });
    // The bars follow each step's clock between frames (a report on course sends none).
    const frame = () => {
      if (workflow.workflow) {
        const p = workflow.predictProgress();
        $("#workflow-progress").style.width = `${p.percent.toFixed(2)}%`;
        document.body.dataset.workflowProgress = p.percent.toFixed(3);
        document.querySelectorAll("#workflow-steps .bar > div").forEach((bar, i) => {
          bar.style.width = `${(p.steps[i] ?? 0).toFixed(1)}%`;
        });
      }
      requestAnimationFrame(frame);
    };
    requestAnimationFrame(frame);
  }
}
