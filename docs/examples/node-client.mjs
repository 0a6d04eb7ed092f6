// A game client in Node (>= 22): follows one crafting session until it ends.
import { LiteClient } from "crafting-network-service/client/lite";

const { BASE_URL, TOKEN, SESSION } = process.env;
if (!BASE_URL || !TOKEN || !SESSION) {
  console.error(
    "usage: BASE_URL=http://127.0.0.1:8787 TOKEN=<player token> SESSION=<id> node node-client.mjs",
  );
  process.exit(2);
}
const client = new LiteClient({ baseUrl: BASE_URL, token: () => TOKEN });
const session = client.watchSession(SESSION);

session.on("change", (state) => {
  const { percent } = session.predictProgress();
  console.log(`${state.status} ${percent.toFixed(1)}%`);
});
session.on("state", ({ state, code, reason }) => {
  if (state === "closed") console.log(`closed ${code} ${reason}`);
});
