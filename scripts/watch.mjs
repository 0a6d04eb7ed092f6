// Watches a crafting session live, as a game client would:
//   npm run watch -- <session_id> --player <player_id> [--url http://127.0.0.1:8787]
// Mints a local player token (see scripts/token.mjs) and prints one line per frame.
import WebSocket from "ws";
import { signJwt } from "../src/auth/jwt.ts";
import { endedAs, endedReason } from "../src/client/ended.ts";
import { isFinal } from "../src/domain/session/session.ts";
import { commandLine, unreachable, urlOption } from "./command-line.mjs";
import { readKeyId, readSecret } from "./dev-secret.mjs";

const USAGE = "npm run watch -- <session_id> --player <player_id> [--url <base url>]";

const { values, positionals } = commandLine(
  {
    allowPositionals: true,
    options: {
      player: { type: "string", about: "the session's player (a token is minted for them)" },
      url: { type: "string", default: "http://127.0.0.1:8787", about: "the service" },
    },
  },
  USAGE,
  "Watches a crafting session live, as its player's game client would, and prints\none line per frame.",
);
const [sessionId] = positionals;
if (!sessionId || !values.player) {
  console.error(`usage: ${USAGE}`);
  process.exit(2);
}
const secret = readSecret();
const now = Math.floor(Date.now() / 1000);
const token = await signJwt(
  { sub: values.player, scope: "player", iat: now, exp: now + 3600 },
  secret,
  readKeyId(),
);

const base = urlOption(values, "url", USAGE);
const url = `${base.replace(/^http/, "ws")}/ws/crafting/${encodeURIComponent(sessionId)}`;
// closeTimeout: local workerd leaves TCP open after a close the server starts
// (an idle or expired stream's).
const socket = new WebSocket(url, ["crafting.v1.json"], {
  headers: { Authorization: `Bearer ${token}` },
  closeTimeout: 500,
});
socket.on("unexpected-response", (_request, response) => {
  let body = "";
  response.on("data", (chunk) => {
    body += chunk;
  });
  response.on("end", () => {
    console.error(`refused: HTTP ${response.statusCode} ${body}`);
    process.exit(1);
  });
});
let opened = false;
socket.on("error", (err) => {
  if (!opened) unreachable(base, err);
  console.error(`stream error: ${err.message}`);
  process.exit(1);
});
socket.on("open", () => {
  opened = true;
  console.log(`watching ${sessionId} (Ctrl-C to stop)`);
});
// Updates carry what changed (status when it changed, the clock); the plan is
// the snapshot's. Progress is computed from the clock, as the SDK does.
let held = null;
socket.on("message", (data) => {
  const frame = JSON.parse(String(data));
  const kind = ["snapshot", "update", "error", "pong"].find((k) => k in frame) ?? "frame";
  if (frame.snapshot?.session) held = frame.snapshot.session;
  else if (frame.update && held) {
    held = {
      ...held,
      status: frame.update.status ?? held.status,
      clock: { ...frame.update.clock, totalDurationMs: held.clock?.totalDurationMs ?? 0 },
    };
  }
  const body = frame.snapshot?.session ?? frame.update ?? frame[kind];
  const summary =
    held && (kind === "snapshot" || kind === "update")
      ? `${held.status} ${progressOf(held, Number(frame.serverTimeMs)).toFixed(1)}% step=${stepOf(held, Number(frame.serverTimeMs))} ${body.cause ?? ""}`
      : JSON.stringify(body);
  console.log(`seq=${frame.seq} ${kind}: ${summary}`.trimEnd());
  // The final frame: closed from this side at once, as a client of one's own
  // should (docs/streams.md); the server echoes the close, so it is printed
  // as the server says it.
  if (endedAs("SESSION_STATUS_", isFinal, held?.status))
    socket.close(1000, endedReason("session", held.status));
});

/** Elapsed ms of a session at a server time, from its clock. */
function elapsedOf(session, nowMs) {
  const {
    anchorAtMs = 0,
    anchorElapsedMs = 0,
    rate = 1,
    running = false,
    totalDurationMs = 0,
  } = session.clock ?? {};
  if (session.status === "SESSION_STATUS_COMPLETED") return totalDurationMs;
  const elapsed = anchorElapsedMs + (running ? rate * Math.max(0, nowMs - Number(anchorAtMs)) : 0);
  return Math.min(totalDurationMs, elapsed);
}

function progressOf(session, nowMs) {
  const total = session.clock?.totalDurationMs ?? 0;
  return total > 0 ? (elapsedOf(session, nowMs) / total) * 100 : 100;
}

function stepOf(session, nowMs) {
  const elapsed = elapsedOf(session, nowMs);
  let start = 0;
  for (const step of session.steps ?? []) {
    if (elapsed < start + step.durationMs) return step.name;
    start += step.durationMs;
  }
  return session.steps?.at(-1)?.name ?? "";
}
socket.on("close", (code, reason) => {
  console.log(`closed ${code} ${reason}`);
  process.exit(0);
});
