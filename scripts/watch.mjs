// Watches a crafting session, a workflow or a player's queue live, as the
// player's game client would:
//   npm run watch -- <session_id> --player <player_id> [--url http://127.0.0.1:8787]
//   npm run watch -- --workflow <workflow_id> --player <player_id>
//   npm run watch -- --queue --player <player_id>
// Mints a local player token (see scripts/token.mjs) and prints one line per
// frame, whatever its kind.
import WebSocket from "ws";
import { signJwt } from "../src/auth/jwt.ts";
import { backoffDelay } from "../src/client/backoff.ts";
import { endedAs, endedReason } from "../src/client/ended.ts";
import { isFinal } from "../src/domain/session/session.ts";
import { workflowStatusEnded } from "../src/domain/workflow/status.ts";
import { CloseCode, closeAdvice } from "../src/errors.ts";
import { commandLine, idOption, unreachable, urlOption, usageError } from "./command-line.mjs";
import { readKeyId, readSecret } from "./dev-secret.mjs";

const USAGE =
  "npm run watch -- (<session_id> | --workflow <workflow_id> | --queue) (--player <player_id> | --operator) [--url <base url>]";

const { values, positionals } = commandLine(
  {
    allowPositionals: true,
    options: {
      player: {
        type: "string",
        about: "the player watching (a token is minted for them); with --queue, whose queue",
      },
      operator: {
        type: "boolean",
        default: false,
        about: "watch as an operator instead: anything, read-only, without knowing its player",
      },
      workflow: { type: "string", about: "watch this workflow instead of a session" },
      queue: {
        type: "boolean",
        default: false,
        about: "watch the player's crafting queue instead",
      },
      url: { type: "string", default: "http://127.0.0.1:8787", about: "the service" },
    },
  },
  USAGE,
  "Watches a crafting session, a workflow or a player's queue live, as the player's game\nclient would, and prints one line per frame.",
);
const watched = [
  ...positionals.map((id) => ({ id, path: `/ws/crafting/${id}` })),
  ...(values.workflow === undefined
    ? []
    : [{ id: values.workflow, path: `/ws/workflow/${values.workflow}` }]),
  ...(values.queue
    ? [{ id: `the queue of ${values.player}`, path: `/ws/queue/${values.player}` }]
    : []),
];
if (watched.length !== 1 || !watched[0].id || !(values.player || values.operator))
  usageError(
    watched.length > 1
      ? "watch one thing at a time: a session id, --workflow or --queue"
      : "say what to watch (a session id, --workflow or --queue) and who watches (--player or --operator)",
    USAGE,
  );
if (values.queue && !values.player) usageError("--queue needs --player: whose queue", USAGE);
idOption(values, "player", USAGE);
/** Who the minted token is: the player, or an operator (audit-logged by the service as `watch`). */
const claims = values.operator
  ? { sub: "watch", scope: "operator" }
  : { sub: values.player, scope: "player" };
const [{ id, path }] = watched;
const secret = readSecret();
const base = urlOption(values, "url", USAGE);
const url = `${base.replace(/^http/, "ws")}${path.replace(/[^/]+$/, encodeURIComponent)}`;

/** The text `ping` the runtime answers itself: a stream silent for 30 s is closed as dead (4008). */
const KEEPALIVE_MS = 20_000;
/** Reconnect delays: the SDK's backoff, capped lower for a terminal. */
const BACKOFF = { baseMs: 250, capMs: 5_000 };
/** The kinds of a server frame (`crafting.v1.ServerFrame`), as proto3 JSON names them. */
const FRAME_KINDS = [
  "snapshot",
  "update",
  "material",
  "queue",
  "workflow",
  "error",
  "pong",
  "resumed",
  "heartbeat",
  "health",
];

// Session updates carry what changed (status when it changed, the clock);
// the plan is the snapshot's. Progress is computed from the clock, as the
// SDK does. Workflow and queue frames carry the whole of what they show.
let session = null;
/** The (epoch, seq) of the last frame: where a reconnect resumes from. */
let position = null;
/** Failed connects since the last one that opened; null until one has. */
let attempt = null;
connect();

/**
 * Opens the stream as a game client does: with a fresh token (the script
 * mints its own), resuming from the last frame after a drop, and sending
 * the keepalive. A close docs/streams.md calls final (`1000`, `4003`, …)
 * ends the script; any other close, and a failed or busy connect after
 * the first, reconnects with backoff.
 */
async function connect() {
  const now = Math.floor(Date.now() / 1000);
  const token = await signJwt({ ...claims, iat: now, exp: now + 3600 }, secret, readKeyId());
  const resume = position ? `?resume_epoch=${position.epoch}&resume_seq=${position.seq}` : "";
  // closeTimeout: local workerd leaves TCP open after a close the server starts
  // (an idle or expired stream's).
  const socket = new WebSocket(`${url}${resume}`, ["crafting.v1.json"], {
    headers: { Authorization: `Bearer ${token}` },
    closeTimeout: 500,
  });
  let keepalive = null;
  let retried = false;
  const retry = () => {
    if (retried) return;
    retried = true;
    clearInterval(keepalive);
    attempt = (attempt ?? 0) + 1;
    setTimeout(connect, backoffDelay(attempt, BACKOFF));
  };
  socket.on("unexpected-response", (_request, response) => {
    let body = "";
    response.on("data", (chunk) => {
      body += chunk;
    });
    response.on("end", () => {
      // Busy (429, 503) is worth waiting out; any other refusal is final.
      if (attempt !== null && [429, 503].includes(response.statusCode)) return retry();
      console.error(printable(`refused: HTTP ${response.statusCode} ${refusal(body)}`));
      process.exit(1);
    });
  });
  let opened = false;
  socket.on("error", (err) => {
    if (opened) return; // Its close follows, and says what happened.
    if (attempt === null) unreachable(base, err);
    retry(); // Reconnecting: the service may be restarting.
  });
  socket.on("open", () => {
    if (attempt === null) console.log(`watching ${id} (Ctrl-C to stop)`);
    opened = true;
    attempt = 0;
    keepalive = setInterval(() => socket.send("ping"), KEEPALIVE_MS);
  });
  socket.on("message", (data) => {
    const text = String(data);
    if (text === "pong") return;
    const ended = show(JSON.parse(text));
    // The final frame: closed from this side at once, as a client of one's own
    // should (docs/streams.md); the server echoes the close, so it is printed
    // as the server says it.
    if (ended) socket.close(1000, endedReason(...ended));
  });
  socket.on("close", (code, reason) => {
    clearInterval(keepalive);
    if (retried) return;
    const final = closeAdvice(code) === "do_not_reconnect";
    const why = String(reason); // A Buffer, empty for a dropped connection.
    console.log(printable(`closed ${code}${why ? ` ${why}` : ""}${final ? "" : "; reconnecting"}`));
    if (final) process.exit(code === CloseCode.NORMAL ? 0 : 1);
    retry();
  });
}

/** A refusal's `{ error: { code, message } }` as `code: message`; any other body as it came. */
function refusal(body) {
  try {
    const { code, message } = JSON.parse(body).error;
    if (code && message) return `${code}: ${message}`;
  } catch {
    // Not the service's error shape (a proxy's page?): said as it came.
  }
  return body;
}

/** Prints a frame as one line; what ended (`["session", status]`) if it is the final one. */
function show(frame) {
  const kind = FRAME_KINDS.find((k) => k in frame) ?? "frame";
  const atMs = Number(frame.serverTimeMs);
  const shown = frame.snapshot?.session ?? frame.snapshot?.workflow ?? frame.snapshot?.queue;
  const body = shown ?? frame[kind] ?? frame;
  let summary = JSON.stringify(body);
  let ended = null;
  if (frame.epoch !== undefined) position = { epoch: frame.epoch, seq: frame.seq ?? 0 };
  if (frame.snapshot?.session || (frame.update && session)) {
    session = frame.update ? mergeUpdate(session, frame.update) : frame.snapshot.session;
    const reason = session.failureReason && `reason: ${session.failureReason}`;
    const notes = [frame.update?.cause ?? missingMaterials(session), reason];
    summary = [sessionLine(session, atMs), ...notes.filter(Boolean)].join(" ");
    if (endedAs("SESSION_STATUS_", isFinal, session.status)) ended = ["session", session.status];
  } else if (kind === "material") {
    summary = materialLine(body);
  } else if (frame.workflow || frame.snapshot?.workflow) {
    summary = workflowLine(body);
    if (endedAs("WORKFLOW_STATUS_", workflowStatusEnded, body.status))
      ended = ["workflow", body.status];
  } else if (frame.queue || frame.snapshot?.queue) {
    summary = queueLine(body);
  } else if (kind === "resumed") {
    const missed = body.replayed ?? 0;
    summary =
      missed === 0 ? "nothing missed" : `${missed} missed change${missed > 1 ? "s" : ""} replayed`;
  }
  console.log(printable(`seq=${frame.seq} ${kind}: ${summary}`.trimEnd()));
  return ended;
}

/**
 * A line with its control characters written as escapes (`\u001b`): names
 * are free text a producer chose, and a terminal obeys what it is sent.
 */
function printable(line) {
  return line.replace(/\p{Cc}/gu, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

/** A session after an update: its status and failure reason when they changed, its new clock. */
function mergeUpdate(held, update) {
  return {
    ...held,
    status: update.status ?? held.status,
    failureReason: update.failureReason ?? held.failureReason,
    clock: { ...update.clock, totalDurationMs: held.clock?.totalDurationMs ?? 0 },
  };
}

/** `SESSION_STATUS_ACTIVE 50.0% step=forge`, at a server time. */
function sessionLine(held, nowMs) {
  return `${held.status} ${progressOf(held, nowMs).toFixed(1)}% step=${stepOf(held, nowMs)}`;
}

/** Elapsed ms of a session at a server time, from its clock. */
function elapsedOf(held, nowMs) {
  const {
    anchorAtMs = 0,
    anchorElapsedMs = 0,
    rate = 1,
    running = false,
    totalDurationMs = 0,
  } = held.clock ?? {};
  if (held.status === "SESSION_STATUS_COMPLETED") return totalDurationMs;
  const elapsed = anchorElapsedMs + (running ? rate * Math.max(0, nowMs - Number(anchorAtMs)) : 0);
  return Math.min(totalDurationMs, elapsed);
}

function progressOf(held, nowMs) {
  const total = held.clock?.totalDurationMs ?? 0;
  return total > 0 ? (elapsedOf(held, nowMs) / total) * 100 : 100;
}

function stepOf(held, nowMs) {
  const elapsed = elapsedOf(held, nowMs);
  let start = 0;
  for (const step of held.steps ?? []) {
    if (elapsed < start + step.durationMs) return step.name;
    start += step.durationMs;
  }
  return held.steps?.at(-1)?.name ?? "";
}

/** `missing iron-ore 1/3` for each material the session lacks (proto3 JSON leaves zeros out). */
function missingMaterials(held) {
  const missing = (held.materials ?? []).filter((m) => (m.available ?? 0) < (m.required ?? 0));
  return missing.length === 0
    ? ""
    : `missing ${missing.map((m) => `${m.materialId} ${m.available ?? 0}/${m.required}`).join(", ")}`;
}

/** `iron-ore 3, coal 0 (unavailable); all available`. */
function materialLine(notice) {
  const changes = (notice.changes ?? []).map(
    (c) => `${c.materialId} ${c.quantity ?? 0}${c.available ? "" : " (unavailable)"}`,
  );
  return `${changes.join(", ")}; ${notice.allAvailable ? "all available" : "some missing"}`;
}

/** `WORKFLOW_STATUS_ACTIVE 40.0% step 1/2 smelt`, as of the frame. */
function workflowLine(workflow) {
  const step = (workflow.currentStepIndex ?? 0) + 1;
  const line = `${workflow.status} ${(workflow.overallProgress ?? 0).toFixed(1)}% step ${step}/${workflow.totalSteps} ${workflow.currentStepName ?? ""}`;
  return workflow.failureReason ? `${line} reason: ${workflow.failureReason}` : line;
}

/** `1 slot: s-1 processing iron-sword; s-2 queued #1 wait 30s; ended s-0 completed`. */
function queueLine(queue) {
  const status = (entry) => entry.status.replace("QUEUE_ENTRY_STATUS_", "").toLowerCase();
  const entries = (queue.entries ?? []).map((entry) =>
    [
      entry.requestId,
      status(entry),
      entry.recipeId,
      entry.queuePosition
        ? `#${entry.queuePosition} wait ${Math.round(entry.estimatedWaitSeconds ?? 0)}s`
        : "",
    ]
      .filter(Boolean)
      .join(" "),
  );
  const ended = (queue.ended ?? []).map((entry) =>
    [`ended ${entry.requestId} ${status(entry)}`, entry.failureReason && `(${entry.failureReason})`]
      .filter(Boolean)
      .join(" "),
  );
  const slots = `${queue.slots ?? 1} slot${queue.slots > 1 ? "s" : ""}`;
  return `${slots}: ${[...entries, ...ended].join("; ") || "empty"}`;
}
