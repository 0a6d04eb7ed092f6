// A simulated crafting-service for a local demo: creates players, sessions
// (with materials) and a workflow, and drives them with realistic timing —
// starts as slots free up, progress corrections as crafting speed varies,
// material changes, completions (and the odd failure) — so the dashboard
// shows everything moving.
//   npm run demo [-- --url http://127.0.0.1:8787 --players 3 --speed 1 --seconds 0]
// Prints links to the operator and player pages (tokens in the fragment),
// and a machine-readable `DEMO_LINKS {...}` line.
import { signJwt } from "../src/auth/jwt.ts";
import { commandLine, numberOption, unreachable, urlOption } from "./command-line.mjs";
import { readKeyId, readSecret } from "./dev-secret.mjs";

const USAGE =
  "npm run demo [-- --url <base url>] [--players N] [--speed X] [--seconds S] [--quiet]";
const { values } = commandLine(
  {
    options: {
      url: { type: "string", default: "http://127.0.0.1:8787", about: "the service" },
      players: { type: "string", default: "3", about: "players to craft for" },
      speed: { type: "string", default: "1", about: "how much faster than real time" },
      seconds: {
        type: "string",
        default: "0",
        about: "stop after this many seconds (0: run until Ctrl-C)",
      },
      quiet: { type: "boolean", default: false, about: "print only the links" },
    },
  },
  USAGE,
  "Plays crafting-service against a running service (npm start): sessions, progress,\nmaterials, a workflow. Prints links to the operator and player pages.",
);
const BASE = urlOption(values, "url", USAGE);
const PLAYERS = numberOption(values, "players", USAGE, { min: 1, whole: true });
const SPEED = numberOption(values, "speed", USAGE, { min: 0.1 });
const SECONDS = numberOption(values, "seconds", USAGE);
const STOP_AT = SECONDS > 0 ? Date.now() + SECONDS * 1000 : Infinity;
const RUN = Math.random().toString(36).slice(2, 7);
const say = (...args) => values.quiet || console.log(...args);

const SECRET = readSecret();
const mint = (sub, scope) => {
  const now = Math.floor(Date.now() / 1000);
  return signJwt({ sub, scope, iat: now, exp: now + 24 * 3600 }, SECRET, readKeyId());
};
const SERVICE = await mint("crafting-service", "service");
await fetch(`${BASE}/health`).catch((err) => unreachable(BASE, err));

const RECIPES = [
  {
    id: "iron-sword",
    steps: [
      ["smelt", 20],
      ["forge", 25],
      ["temper", 15],
    ],
    materials: [
      ["iron-ore", 3],
      ["coal", 2],
    ],
  },
  {
    id: "healing-potion",
    steps: [
      ["brew", 12],
      ["bottle", 6],
    ],
    materials: [
      ["red-herb", 2],
      ["water-flask", 1],
    ],
  },
  {
    id: "leather-armor",
    steps: [
      ["tan", 18],
      ["cut", 10],
      ["stitch", 22],
    ],
    materials: [
      ["hide", 4],
      ["thread", 2],
    ],
  },
  {
    id: "oak-bow",
    steps: [
      ["carve", 16],
      ["string", 8],
    ],
    materials: [
      ["oak-wood", 2],
      ["thread", 1],
    ],
  },
];

async function call(method, path, body) {
  const response = await fetch(`${BASE}${path}`, {
    method,
    headers: { Authorization: `Bearer ${SERVICE}`, "Content-Type": "application/json" },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await response.text();
  if (!response.ok && response.status !== 409)
    throw new Error(`${method} ${path}: ${response.status} ${text}`);
  return text ? JSON.parse(text) : {};
}

const pick = (list) => list[Math.floor(Math.random() * list.length)];
let counter = 0;

/** One simulated player: a queue of sessions, crafted `slots` at a time. */
class Player {
  constructor(index) {
    this.id = `p-demo-${RUN}-${index}`;
    this.slots = index % 2 === 0 ? 1 : 2;
    this.sessions = new Map(); // id -> { recipe, status }
  }

  async setUp() {
    await call("PUT", `/v1/players/${this.id}/slots`, { slots: this.slots });
    for (let i = 0; i < 3; i++) await this.queueOne();
  }

  async queueOne() {
    const recipe = pick(RECIPES);
    const id = `s-demo-${RUN}-${++counter}`;
    await call("POST", "/v1/sessions", {
      session_id: id,
      player_id: this.id,
      recipe_id: recipe.id,
      steps: recipe.steps.map(([name, s]) => ({
        name,
        duration_ms: Math.round((s * 1000) / SPEED),
      })),
      materials: recipe.materials.map(([material_id, required]) => ({ material_id, required })),
    });
    this.sessions.set(id, { recipe, status: "queued" });
    return id;
  }

  async tick(n) {
    const live = [...this.sessions].filter(
      ([, s]) => s.status === "queued" || s.status === "active",
    );
    const active = live.filter(([, s]) => s.status === "active");
    for (const [id, s] of active) {
      const state = await call("GET", `/v1/sessions/${id}`);
      const elapsed = (state.progress?.elapsedSeconds ?? 0) * 1000;
      const total = state.clock?.totalDurationMs ?? 1;
      if (elapsed >= total) {
        const fail = Math.random() < 0.05;
        await call(
          "POST",
          `/v1/sessions/${id}/${fail ? "fail" : "complete"}`,
          fail ? { reason: "the forge cooled" } : undefined,
        );
        s.status = fail ? "failed" : "completed";
        say(`${this.id}: ${id} ${s.status}`);
      } else if (n % 5 === 0) {
        // Crafting speed varies: crafting-service reports where it really is.
        const rate = Math.round((0.85 + Math.random() * 0.4) * 100) / 100;
        await call("POST", `/udp/sessions/${id}/progress`, {
          elapsed_ms: Math.round(elapsed),
          rate,
        });
      }
    }
    const activeNow = [...this.sessions.values()].filter((s) => s.status === "active").length;
    const queued = [...this.sessions].filter(([, s]) => s.status === "queued");
    for (const [id, s] of queued.slice(0, Math.max(0, this.slots - activeNow))) {
      await call("POST", `/v1/sessions/${id}/start`);
      s.status = "active";
      say(`${this.id}: ${id} started (${s.recipe.id})`);
    }
    if (queued.length < 2) await this.queueOne();
    if (n % 7 === 3) {
      const material = pick(pick(RECIPES).materials)[0];
      await call("POST", `/v1/players/${this.id}/materials`, {
        changes: [{ material_id: material, quantity: Math.floor(Math.random() * 5) }],
      });
    }
    for (const [id, s] of this.sessions)
      if (s.status !== "queued" && s.status !== "active" && this.sessions.size > 12)
        this.sessions.delete(id);
  }
}

/** A three-step workflow for the first player; a new one when it ends. */
class Workflow {
  constructor(player) {
    this.player = player;
  }

  async create() {
    this.id = `w-demo-${RUN}-${++counter}`;
    await call("POST", "/v1/workflows", {
      workflow_id: this.id,
      player_id: this.player.id,
      steps: [
        {
          name: "gather",
          recipe_id: "ore-gathering",
          steps: [{ name: "mine", duration_ms: Math.round(15000 / SPEED) }],
        },
        {
          name: "smelt",
          recipe_id: "iron-ingot",
          steps: [{ name: "melt", duration_ms: Math.round(20000 / SPEED) }],
        },
        {
          name: "forge",
          recipe_id: "iron-sword",
          steps: [{ name: "hammer", duration_ms: Math.round(25000 / SPEED) }],
        },
      ],
    });
    say(`${this.player.id}: workflow ${this.id} created`);
  }

  async tick() {
    const workflow = await call("GET", `/v1/workflows/${this.id}`);
    const status = String(workflow.status ?? "");
    if (status.endsWith("COMPLETED") || status.endsWith("FAILED")) return this.create();
    const step = workflow.steps?.[workflow.currentStepIndex ?? 0];
    if (!step?.sessionId) return;
    const state = await call("GET", `/v1/sessions/${step.sessionId}`);
    if (
      String(state.status).endsWith("ACTIVE") &&
      (state.progress?.elapsedSeconds ?? 0) * 1000 >= (state.clock?.totalDurationMs ?? 1)
    ) {
      await call("POST", `/v1/sessions/${step.sessionId}/complete`);
    }
  }
}

const players = Array.from({ length: PLAYERS }, (_, i) => new Player(i));
for (const player of players) await player.setUp();
const workflow = new Workflow(players[0]);
await workflow.create();
await players[0].tick(1);

const first = players[0];
const firstSession =
  [...first.sessions].find(([, s]) => s.status === "active")?.[0] ?? [...first.sessions.keys()][0];
const links = {
  operator: `${BASE}/operator.html#token=${await mint("demo-operator", "operator")}`,
  player: `${BASE}/player.html?player=${first.id}&session=${firstSession}&workflow=${workflow.id}#token=${await mint(first.id, "player")}`,
  player_id: first.id,
  session_id: firstSession,
  workflow_id: workflow.id,
};
console.log(`\nOperators: ${links.operator}\nPlayer:    ${links.player}\n`);
console.log(`DEMO_LINKS ${JSON.stringify(links)}`);

let n = 0;
let stopping = false;
process.on("SIGINT", () => {
  stopping = true;
});
process.on("SIGTERM", () => {
  stopping = true;
});
while (!stopping && Date.now() < STOP_AT) {
  n++;
  for (const unit of [...players, workflow]) {
    try {
      await unit.tick(n);
    } catch (error) {
      // The service restarting, or a blip: try again on the next tick.
      say(`(retrying) ${error.message}`);
    }
  }
  await new Promise((resolve) => setTimeout(resolve, 1000));
}
