// Watches a crafting session live, as a game client would:
//   npm run watch -- <session_id> --player <player_id> [--url http://127.0.0.1:8787]
// Mints a local player token (see scripts/token.mjs) and prints one line per frame.
import { parseArgs } from "node:util";
import WebSocket from "ws";
import { signJwt } from "../src/auth/jwt.ts";
import { readSecret } from "./dev-secret.mjs";

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    player: { type: "string" },
    url: { type: "string", default: "http://127.0.0.1:8787" },
  },
});
const [sessionId] = positionals;
if (!sessionId || !values.player) {
  console.error("usage: npm run watch -- <session_id> --player <player_id> [--url <base url>]");
  process.exit(2);
}
const secret = readSecret();
const now = Math.floor(Date.now() / 1000);
const token = await signJwt(
  { sub: values.player, scope: "player", iat: now, exp: now + 3600 },
  secret,
);

const url = `${values.url.replace(/^http/, "ws")}/ws/crafting/${encodeURIComponent(sessionId)}`;
// closeTimeout: local workerd leaves TCP open after a server-initiated close handshake.
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
socket.on("open", () => console.log(`watching ${sessionId} (Ctrl-C to stop)`));
socket.on("message", (data) => {
  const frame = JSON.parse(String(data));
  const kind = ["snapshot", "update", "error", "pong"].find((k) => k in frame) ?? "frame";
  const body = frame.snapshot?.session ?? frame.update ?? frame[kind];
  const progress = body?.progress;
  const summary = progress
    ? `${body.status} ${(progress.progressPercent ?? 0).toFixed(1)}% step=${progress.currentStep} ${body.cause ?? ""}`
    : JSON.stringify(body);
  console.log(`seq=${frame.seq} ${kind}: ${summary}`);
});
socket.on("close", (code, reason) => {
  console.log(`closed ${code} ${reason}`);
  process.exit(0);
});
