// crafting-service's side of the ingest stream (docs/sessions.md, "The ingest stream"), Node >= 22:
// moves SESSION from 0 to 100 % in COUNT progress corrections on one WebSocket, at most WINDOW unanswered at once.
const { BASE_URL, TOKEN, SESSION } = process.env;
if (!BASE_URL || !TOKEN || !SESSION) {
  console.error(
    "usage: BASE_URL=http://127.0.0.1:8787 TOKEN=<service token> SESSION=<id> [COUNT=100] node ingest-client.mjs",
  );
  process.exit(2);
}
if (typeof WebSocket === "undefined") {
  console.error(`this needs Node >= 22 (a global WebSocket); this is Node ${process.version}`);
  process.exit(1);
}
const count = Number(process.env.COUNT ?? 100);
if (!Number.isInteger(count) || count < 1) {
  console.error(
    `COUNT must be a whole number of updates, at least 1 (got ${JSON.stringify(process.env.COUNT)})`,
  );
  process.exit(2);
}
const WINDOW = 64;

// The token rides in the subprotocol list, next to the protocol the server is asked to speak;
// crafting.refusals asks for a refusal as a close code and reason (Node's WebSocket hides its HTTP status).
const url = `${BASE_URL.replace(/^http/, "ws")}/v1/progress/stream`;
const ws = new WebSocket(url, ["crafting.ingest.v1", "crafting.refusals", `bearer.${TOKEN}`]);
let sent = 0;
let answered = 0;
let refused = 0;
let seq = 0;

function sendMore() {
  for (; sent < count && sent - answered < WINDOW; sent++) {
    const percent = Math.round((10_000 * (sent + 1)) / count) / 100;
    const update = { ref: sent + 1, session_id: SESSION, progress_percent: percent };
    ws.send(JSON.stringify(update));
  }
}

ws.addEventListener("open", sendMore);
ws.addEventListener("message", ({ data }) => {
  // Each message is an array of answers, one per update.
  for (const answer of JSON.parse(data)) {
    answered++;
    if (answer.error) {
      refused++;
      console.error(`update ${answer.ref}: ${answer.error.code}: ${answer.error.message}`);
    } else seq = answer.seq;
  }
  if (answered < count) return sendMore();
  // The seq is the last applied update's; with none applied, there is none to say.
  const at = refused < count ? `, session at seq ${seq}` : "";
  console.log(`${count - refused} applied, ${refused} refused${at}`);
  if (refused > 0) process.exitCode = 1;
  ws.close(1000);
});
// Nothing listening, or the connection broke (Node's WebSocket may say so with `error` alone).
ws.addEventListener("error", () => {
  console.error(`the connection to ${url} failed`);
  process.exitCode = 1;
});
ws.addEventListener("close", ({ code, reason }) => {
  // Unanswered corrections may or may not have been applied: send the newest of each session again.
  if (answered < count) {
    console.error(`closed ${code} ${reason} with ${sent - answered} updates unanswered`);
    process.exitCode = 1;
  }
});
