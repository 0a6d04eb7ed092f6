// A game client in Node (>= 22): follows one crafting session until it ends.
//   BASE_URL=http://127.0.0.1:8787 TOKEN=<player token> SESSION=<id> node node-client.mjs
import { LiteClient } from "crafting-network-service/client/lite";

const client = new LiteClient({ baseUrl: process.env.BASE_URL, token: () => process.env.TOKEN });
const session = client.watchSession(process.env.SESSION);

session.on("change", (state) => {
  const { percent } = session.predictProgress();
  console.log(`${state.status} ${percent.toFixed(1)}%`);
  if (session.ended) session.close();
});
session.on("state", ({ state, code, reason }) => {
  if (state === "closed") console.log(`closed ${code} ${reason}`);
});
