/**
 * npm run bench:profile — where the CPU of one progress update goes, step by
 * step, in V8 (the engine workerd runs): the pure work our Durable Object does
 * per update, without the runtime's I/O. Prints µs per step.
 */
import { toBinary } from "@bufbuild/protobuf";
import { signJwt, verifyJwt } from "../src/auth/jwt.ts";
import type { Session } from "../src/domain/session/session.ts";
import { transition } from "../src/domain/session/session-machine.ts";
import { ServerFrameSchema } from "../src/gen/crafting/v1/frames_pb.ts";
import { encodeJson, updateFrame } from "../src/protocol/frames.ts";
import { sessionUpdateMessage } from "../src/protocol/session-wire.ts";

const ROUNDS = 20_000;
const secret = "profile-secret-0123456789abcdef0123456789";
const created = transition(null, {
  type: "create",
  params: {
    sessionId: "s-1",
    playerId: "p-1",
    recipeId: "r",
    workflowId: null,
    materials: [],
    steps: [
      { name: "a", durationMs: 3_600_000 },
      { name: "b", durationMs: 3_600_000 },
    ],
  },
  epoch: 7,
  atMs: Date.now(),
});
if (!created.ok) throw new Error("create failed");
const started = transition(created.state, { type: "lifecycle", action: "start", atMs: Date.now() });
if (!started.ok) throw new Error("start failed");
let state: Session = started.state;
const token = await signJwt(
  { sub: "crafting-service", scope: "service", iat: 0, exp: 4_000_000_000 },
  secret,
);

async function time(
  name: string,
  step: (i: number) => unknown | Promise<unknown>,
): Promise<number> {
  for (let i = 0; i < 500; i++) await step(i);
  const t0 = performance.now();
  for (let i = 0; i < ROUNDS; i++) await step(i);
  const us = ((performance.now() - t0) / ROUNDS) * 1000;
  process.stdout.write(`${name.padEnd(44)} ${us.toFixed(2).padStart(8)} µs\n`);
  return us;
}

const frameOf = (s: Session, at: number) =>
  updateFrame(
    { seq: s.seq, epoch: s.epoch, serverTimeMs: at },
    sessionUpdateMessage(s, "progress"),
  );
await time("verify the service JWT (HMAC-SHA256, Web Crypto)", () =>
  verifyJwt(token, secret, Date.now()),
);
await time("JSON.parse of the progress body", () => JSON.parse('{"elapsed_ms":12345}'));
await time("transition (pure state machine)", (i) => {
  const r = transition(state, {
    type: "progress",
    correction: { elapsedMs: 1000 + (i % 1000) },
    atMs: Date.now(),
  });
  if (r.ok) state = r.state;
});
await time("build the update message (progress view)", () =>
  sessionUpdateMessage(state, "progress"),
);
const frame = frameOf(state, Date.now());
await time("encode the frame as proto3 JSON (toJsonString)", () => encodeJson(frame));
await time("encode the frame as protobuf binary (replay log)", () =>
  toBinary(ServerFrameSchema, frame),
);
await time("state as the HTTP answer (JSON.stringify)", () => JSON.stringify(state));
