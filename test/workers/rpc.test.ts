/**
 * CraftingStreamingService over Connect and gRPC-Web, called in workerd
 * with connect-es clients (the transports game backends and tools use).
 */
import { env, exports } from "cloudflare:workers";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-web";
import { describe, expect, it } from "vitest";
import { QueueEntryStatus } from "../../src/gen/crafting/v1/queue_pb";
import {
  CraftingStreamingService,
  StreamCraftingProgressRequestSchema,
  StreamCraftingProgressResponseSchema,
  StreamCraftingQueueRequestSchema,
  StreamCraftingQueueResponseSchema,
  StreamMultiStepWorkflowRequestSchema,
  StreamMultiStepWorkflowResponseSchema,
} from "../../src/gen/crafting/v1/streaming_service_pb";
import { freshId, serviceToken, token } from "../support/tokens";
import { captureLogs, createSession, serviceCall } from "./helpers";

// connect-web asks for redirect "error", which workerd does not implement; nothing here redirects.
const fetchWorker: typeof fetch = (input, init) =>
  exports.default.fetch(new Request(input as RequestInfo, { ...init, redirect: "manual" }));

const transports: [string, (useBinary: boolean) => Transport][] = [
  [
    "Connect",
    (useBinaryFormat) =>
      createConnectTransport({
        baseUrl: "https://crafting.test",
        fetch: fetchWorker,
        useBinaryFormat,
      }),
  ],
  [
    "gRPC-Web",
    (useBinaryFormat) =>
      createGrpcWebTransport({
        baseUrl: "https://crafting.test",
        fetch: fetchWorker,
        useBinaryFormat,
      }),
  ],
];

function client(transport: Transport) {
  return createClient(CraftingStreamingService, transport);
}

const bearer = async (playerId: string) => ({ Authorization: `Bearer ${await token(playerId)}` });

/** One message as Connect and gRPC-Web frame it: a flags byte (0), its length, the message. */
function enveloped(message: Uint8Array): Uint8Array {
  const frame = new Uint8Array(5 + message.length);
  new DataView(frame.buffer).setUint32(1, message.length);
  frame.set(message, 5);
  return frame;
}

/** The error an RPC ends with (or null when it ends cleanly), after draining it. */
async function outcome(stream: AsyncIterable<unknown>): Promise<ConnectError | null> {
  try {
    for await (const _ of stream) {
      // drain
    }
    return null;
  } catch (err) {
    return ConnectError.from(err);
  }
}

/** Waits until the player holds `count` stream slots. */
async function slotsHeld(playerId: string, count: number): Promise<void> {
  const deadline = Date.now() + 5_000;
  for (;;) {
    const held = (await env.PLAYER.getByName(playerId).streams()).length;
    if (held === count) return;
    if (Date.now() > deadline) throw new Error(`player holds ${held} slots, expected ${count}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

for (const [name, transport] of transports) {
  for (const binary of [false, true]) {
    describe(`${name} (${binary ? "binary" : "JSON"})`, () => {
      const rpc = () => client(transport(binary));

      it("streams a session's progress to completion, then ends cleanly, closing the object's stream itself", async () => {
        const logs = captureLogs();
        const sessionId = freshId("s");
        const playerId = freshId("p");
        await createSession(sessionId, playerId);
        const stream = rpc().streamCraftingProgress(
          { sessionId },
          { headers: await bearer(playerId) },
        );
        const seen: { seq: number; status: number; percent: number }[] = [];
        const drive = (async () => {
          await slotsHeld(playerId, 1);
          await serviceCall(`/v1/sessions/${sessionId}/start`);
          await serviceCall(`/udp/sessions/${sessionId}/progress`, { progress_percent: 40 });
          await serviceCall(`/v1/sessions/${sessionId}/complete`);
        })();
        for await (const message of stream) {
          seen.push({
            seq: message.seq,
            status: message.status,
            percent: Math.round(message.update?.progressPercent ?? -1),
          });
        }
        await drive;
        expect(seen).toEqual([
          { seq: 1, status: 1, percent: 0 },
          { seq: 2, status: 2, percent: 0 },
          { seq: 3, status: 2, percent: 40 },
          { seq: 4, status: 4, percent: 100 },
        ]);
        // The stream's slot is free again.
        await slotsHeld(playerId, 0);
        // The Worker closed it after the final message (a close the object
        // starts may hold its connection for seconds: docs/streams.md).
        const closes = logs.events("stream.close").filter((e) => e.session_id === sessionId);
        expect(closes).toEqual([expect.objectContaining({ close_code: 1000, by: "client" })]);
      });
    });
  }
}

describe("what a progress RPC carries besides progress", () => {
  const rpcs = transports.map(([name, transport]) => [name, client(transport(true))] as const);

  it.each(rpcs)(
    "%s: the materials with every message, each material change a message of its own (no hole in the seqs), and why the session failed",
    async (_, rpc) => {
      const sessionId = freshId("s");
      const playerId = freshId("p");
      await createSession(sessionId, playerId, {
        steps: [{ name: "smelt", duration_ms: 60_000 }],
        materials: [
          { material_id: "iron-ore", required: 3 },
          { material_id: "coal", required: 1 },
        ],
      });
      const stream = rpc.streamCraftingProgress({ sessionId }, { headers: await bearer(playerId) });
      const drive = (async () => {
        await slotsHeld(playerId, 1);
        await serviceCall(`/udp/sessions/${sessionId}/materials`, {
          changes: [{ material_id: "iron-ore", quantity: 1 }],
        });
        await serviceCall(`/v1/sessions/${sessionId}/start`);
        await serviceCall(`/udp/sessions/${sessionId}/materials`, {
          changes: [{ material_id: "coal", quantity: 4, available: false }],
        });
        await serviceCall(`/v1/sessions/${sessionId}/fail`, { reason: "out of coal" });
      })();
      const seen: unknown[] = [];
      for await (const m of stream) {
        seen.push({
          seq: m.seq,
          superseded: m.superseded,
          cause: m.cause,
          status: m.status,
          materials: m.materials.map((x) => `${x.materialId} ${x.available}/${x.required}`),
          failureReason: m.failureReason,
          timed: m.update?.timestampMs !== undefined && m.update.timestampMs > 0n,
        });
      }
      await drive;
      const held = (ore: number, coal: number) => [`iron-ore ${ore}/3`, `coal ${coal}/1`];
      const message = { superseded: 0, failureReason: "", timed: true };
      expect(seen).toEqual([
        { ...message, seq: 1, cause: "", status: 1, materials: held(3, 1) },
        { ...message, seq: 2, cause: "material", status: 1, materials: held(1, 1) },
        { ...message, seq: 3, cause: "start", status: 2, materials: held(1, 1) },
        // Unavailable counts as none, whatever the quantity.
        { ...message, seq: 4, cause: "material", status: 2, materials: held(1, 0) },
        {
          ...message,
          seq: 5,
          cause: "fail",
          status: 5,
          materials: held(1, 0),
          failureReason: "out of coal",
        },
      ]);
    },
  );
});

describe("gRPC-Web's text mode (application/grpc-web-text)", () => {
  /** A text-mode call of an RPC (StreamCraftingProgress unless named): the framed request, in base64. */
  const textCall = async (
    body: string,
    headers: Record<string, string>,
    signal?: AbortSignal,
    method = "StreamCraftingProgress",
  ) =>
    fetchWorker(`https://crafting.test/crafting.v1.CraftingStreamingService/${method}`, {
      method: "POST",
      headers: { "Content-Type": "application/grpc-web-text", "X-Grpc-Web": "1", ...headers },
      body,
      signal,
    });
  const framed = (sessionId: string) =>
    base64Framed(
      toBinary(
        StreamCraftingProgressRequestSchema,
        create(StreamCraftingProgressRequestSchema, { sessionId }),
      ),
    );
  const base64Framed = (message: Uint8Array) => btoa(String.fromCharCode(...enveloped(message)));
  /** The first message of a text-mode answer: one data frame, in base64. */
  const firstFrame = async (response: Response) => {
    const reader = (response.body as ReadableStream<Uint8Array>).getReader();
    const bytes = Uint8Array.from(
      atob(new TextDecoder().decode((await reader.read()).value)),
      (c) => c.charCodeAt(0),
    );
    expect(bytes[0]).toBe(0);
    return { reader, message: bytes.subarray(5, 5 + new DataView(bytes.buffer).getUint32(1)) };
  };

  it("answers in base64, a chunk per message, and frees the slot when the caller goes away", async () => {
    const sessionId = freshId("s");
    const playerId = freshId("p");
    await createSession(sessionId, playerId);
    const controller = new AbortController();
    const response = await textCall(framed(sessionId), await bearer(playerId), controller.signal);
    expect(response.status).toBe(200);
    expect(response.headers.get("Content-Type")).toBe("application/grpc-web-text+proto");
    // One data frame (flag 0): the snapshot.
    const { reader, message: frame } = await firstFrame(response);
    const message = fromBinary(StreamCraftingProgressResponseSchema, frame);
    expect(message).toMatchObject({ seq: 1, snapshot: true, update: { sessionId } });
    await slotsHeld(playerId, 1);
    controller.abort();
    await reader.cancel().catch(() => {});
    await slotsHeld(playerId, 0);
  });

  it("serves the queue and workflow RPCs in text mode too: each answers its first message", async () => {
    const playerId = freshId("p");
    const sessionId = freshId("s");
    await createSession(sessionId, playerId);
    const workflowId = freshId("w");
    await serviceCall("/v1/workflows", {
      workflow_id: workflowId,
      player_id: playerId,
      steps: [{ name: "one", recipe_id: "one", steps: [{ name: "work", duration_ms: 10_000 }] }],
    });
    const headers = await bearer(playerId);
    const queue = await textCall(
      base64Framed(
        toBinary(
          StreamCraftingQueueRequestSchema,
          create(StreamCraftingQueueRequestSchema, { playerId }),
        ),
      ),
      headers,
      undefined,
      "StreamCraftingQueue",
    );
    expect(queue.headers.get("Content-Type")).toBe("application/grpc-web-text+proto");
    const queued = await firstFrame(queue);
    expect(fromBinary(StreamCraftingQueueResponseSchema, queued.message)).toMatchObject({
      snapshot: true,
    });
    await queued.reader.cancel();
    const workflow = await textCall(
      base64Framed(
        toBinary(
          StreamMultiStepWorkflowRequestSchema,
          create(StreamMultiStepWorkflowRequestSchema, { workflowId }),
        ),
      ),
      headers,
      undefined,
      "StreamMultiStepWorkflow",
    );
    const first = await firstFrame(workflow);
    expect(fromBinary(StreamMultiStepWorkflowResponseSchema, first.message)).toMatchObject({
      update: { workflowId, totalSteps: 1 },
    });
    await first.reader.cancel();
    await slotsHeld(playerId, 0);
  });

  it("refuses a body that is not base64, or too large, with a grpc-web status and no stream", async () => {
    const playerId = freshId("p");
    for (const [body, status, message] of [
      ["not base64!", "3", "must be base64"],
      ["A".repeat(40_000), "8", "larger than"],
    ] as const) {
      const response = await textCall(body, await bearer(playerId));
      expect(response.status).toBe(200);
      expect(response.headers.get("grpc-status")).toBe(status);
      expect(decodeURIComponent(response.headers.get("grpc-message") ?? "")).toContain(message);
    }
    expect(await env.PLAYER.getByName(playerId).streams()).toEqual([]);
  });
});

describe("resuming an RPC stream", () => {
  const rpc = client(transports[0]?.[1](true) as Transport);

  it("replays exactly what was missed after (resume_epoch, resume_seq), then goes live", async () => {
    const sessionId = freshId("s");
    const playerId = freshId("p");
    await createSession(sessionId, playerId);
    const headers = await bearer(playerId);
    const controller = new AbortController();
    const first = rpc.streamCraftingProgress({ sessionId }, { headers, signal: controller.signal });
    const iterator = first[Symbol.asyncIterator]();
    const { value: snapshot } = await iterator.next();
    // The first message is the whole state: counting changes starts at its seq.
    expect(snapshot).toMatchObject({ snapshot: true, superseded: 0 });
    controller.abort();
    await iterator.next().catch(() => {});
    await slotsHeld(playerId, 0);
    await serviceCall(`/v1/sessions/${sessionId}/start`);
    await serviceCall(`/udp/sessions/${sessionId}/progress`, { progress_percent: 30 });
    const resumed = rpc.streamCraftingProgress(
      { sessionId, resumeEpoch: snapshot?.epoch ?? 0, resumeSeq: snapshot?.seq ?? 0 },
      { headers },
    );
    const seen: number[] = [];
    const percents: number[] = [];
    const drive = (async () => {
      await slotsHeld(playerId, 1);
      await serviceCall(`/v1/sessions/${sessionId}/complete`);
    })();
    for await (const message of resumed) {
      expect(message.epoch).toBe(snapshot?.epoch);
      expect(message.snapshot).toBe(false);
      seen.push(message.seq);
      percents.push(Math.round(message.update?.progressPercent ?? -1));
    }
    await drive;
    const from = snapshot?.seq ?? 0;
    expect(seen).toEqual([from + 1, from + 2, from + 3]);
    // Replayed updates carry only what changed; the RPC still answers seed 000's progress fields.
    expect(percents).toEqual([0, 30, 100]);
  });
});

describe("the queue and workflow RPCs", () => {
  const rpc = client(transports[0]?.[1](false) as Transport);

  it("streams queue entries: each one on join, then what changed and what ended", async () => {
    const playerId = freshId("p");
    const [a, b] = [freshId("s"), freshId("s")];
    await createSession(a, playerId);
    await new Promise((resolve) => setTimeout(resolve, 5));
    await createSession(b, playerId);
    const controller = new AbortController();
    const stream = rpc.streamCraftingQueue(
      { playerId },
      { headers: await bearer(playerId), signal: controller.signal },
    );
    const seen: string[] = [];
    const drive = (async () => {
      await slotsHeld(playerId, 1);
      await serviceCall(`/v1/sessions/${a}/start`);
      await serviceCall(`/v1/sessions/${a}/complete`);
    })();
    try {
      for await (const { entry, seq, snapshot } of stream) {
        seen.push(
          `${seq}:${entry?.requestId === a ? "a" : "b"}:${entry?.status}:${entry?.queuePosition}${snapshot ? ":snapshot" : ""}`,
        );
        if (seen.length === 6) controller.abort();
      }
    } catch (err) {
      expect(ConnectError.from(err).code).toBe(Code.Canceled);
    }
    await drive;
    const [first] = seen;
    const seq0 = Number(first?.split(":")[0]);
    // Snapshot: both queued; start: a processing, b still 1st in line (unchanged? its wait changed);
    // complete: b moves nowhere but a ended.
    expect(seen.map((s) => s.replace(/^\d+/, (n) => String(Number(n) - seq0)))).toEqual([
      "0:a:1:1:snapshot",
      "0:b:1:2:snapshot",
      "1:a:2:0",
      "1:b:1:1",
      "2:b:1:1",
      "2:a:3:0",
    ]);
    await slotsHeld(playerId, 0);
  });

  it("says the player's slots on every queue message, and a change of slots alone is a message of its own", async () => {
    const playerId = freshId("p");
    const sessionId = freshId("s");
    await createSession(sessionId, playerId);
    const controller = new AbortController();
    const stream = rpc.streamCraftingQueue(
      { playerId },
      { headers: await bearer(playerId), signal: controller.signal },
    );
    const seen: { seq: number; slots: number; entry?: string }[] = [];
    const drive = (async () => {
      await slotsHeld(playerId, 1);
      // Nothing processing: two slots move no entry's position or wait.
      const put = await serviceCall(`/v1/players/${playerId}/slots`, { slots: 2 }, "PUT");
      expect(put.status).toBe(200);
      await serviceCall(`/v1/sessions/${sessionId}/start`);
    })();
    try {
      for await (const { entry, seq, slots } of stream) {
        seen.push({
          seq,
          slots,
          ...(entry && { entry: `${entry.status}:${entry.queuePosition}` }),
        });
        // The start's message is the last one driven.
        if (entry?.status === QueueEntryStatus.PROCESSING) controller.abort();
      }
    } catch (err) {
      expect(ConnectError.from(err).code).toBe(Code.Canceled);
    }
    await drive;
    const seq0 = seen[0]?.seq ?? 0;
    // Every seq has its message (no hole a client would read as a lost change), and the
    // slots are told where they changed.
    expect(seen.map((m) => ({ ...m, seq: m.seq - seq0 }))).toEqual([
      { seq: 0, slots: 1, entry: "1:1" },
      { seq: 1, slots: 2 },
      { seq: 2, slots: 2, entry: "2:0" },
    ]);
  });

  it("marks the whole queue as a snapshot, an empty one too, so a resynced client drops what ended", async () => {
    const playerId = freshId("p");
    const sessionId = freshId("s");
    /** The first `count` messages of a queue stream opened with `request`, as plain fields. */
    const first = async (count: number, request: { resumeEpoch?: number; resumeSeq?: number }) => {
      const controller = new AbortController();
      const taken: { entry?: string; status?: number; snapshot: boolean }[] = [];
      let at = { epoch: 0, seq: 0 };
      try {
        for await (const { entry, seq, epoch, snapshot } of rpc.streamCraftingQueue(
          { playerId, ...request },
          { headers: await bearer(playerId), signal: controller.signal },
        )) {
          taken.push({ entry: entry?.requestId, status: entry?.status, snapshot });
          at = { epoch, seq };
          if (taken.length === count) controller.abort();
        }
      } catch (err) {
        expect(ConnectError.from(err).code).toBe(Code.Canceled);
      }
      await slotsHeld(playerId, 0);
      return { taken, at };
    };

    // A player with nothing queued is told so, not left waiting for a first message.
    expect((await first(1, {})).taken).toEqual([{ snapshot: true }]);

    await createSession(sessionId, playerId);
    const held = await first(1, {});
    expect(held.taken).toEqual([{ entry: sessionId, status: 1, snapshot: true }]);
    await serviceCall(`/v1/sessions/${sessionId}/start`);
    await serviceCall(`/v1/sessions/${sessionId}/complete`);

    // Resumed from where it was, the client is replayed the changes: not a snapshot.
    const resumed = { resumeEpoch: held.at.epoch, resumeSeq: held.at.seq };
    expect((await first(2, resumed)).taken).toEqual([
      { entry: sessionId, status: 2, snapshot: false },
      { entry: sessionId, status: 3, snapshot: false },
    ]);
    // A resume that cannot be replayed (another epoch) gets the whole queue again: empty,
    // so the client drops the entry it held, though it never heard that it ended.
    expect((await first(1, { ...resumed, resumeEpoch: held.at.epoch + 1 })).taken).toEqual([
      { snapshot: true },
    ]);
  });

  it("streams a workflow to completion and ends cleanly", async () => {
    const playerId = freshId("p");
    const workflowId = freshId("w");
    await serviceCall("/v1/workflows", {
      workflow_id: workflowId,
      player_id: playerId,
      steps: ["one", "two"].map((name) => ({
        name,
        recipe_id: name,
        steps: [{ name: "work", duration_ms: 10_000 }],
      })),
    });
    const stream = rpc.streamMultiStepWorkflow({ workflowId }, { headers: await bearer(playerId) });
    const drive = (async () => {
      await slotsHeld(playerId, 1);
      await serviceCall(`/v1/sessions/${workflowId}.0/complete`);
      await serviceCall(`/v1/sessions/${workflowId}.1/complete`);
    })();
    const steps: number[] = [];
    let lastStatus = 0;
    for await (const { update } of stream) {
      steps.push(update?.currentStepIndex ?? -1);
      lastStatus = update?.status ?? 0;
    }
    await drive;
    expect(steps[0]).toBe(0);
    expect(steps).toContain(1);
    expect(lastStatus).toBe(3); // WORKFLOW_STATUS_COMPLETED
  });
});

describe("RPC errors", () => {
  const rpc = client(transports[0]?.[1](false) as Transport);
  const grpcWeb = client(transports[1]?.[1](true) as Transport);

  it("answers unauthenticated without a token or with a service token's wrong scope as permission_denied", async () => {
    const sessionId = freshId("s");
    await createSession(sessionId, freshId("p"));
    for (const c of [rpc, grpcWeb]) {
      expect((await outcome(c.streamCraftingProgress({ sessionId })))?.code).toBe(
        Code.Unauthenticated,
      );
      const forged = { Authorization: "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJwIn0." };
      expect(
        (await outcome(c.streamCraftingProgress({ sessionId }, { headers: forged })))?.code,
      ).toBe(Code.Unauthenticated);
      const service = { Authorization: `Bearer ${await serviceToken()}` };
      expect(
        (await outcome(c.streamCraftingProgress({ sessionId }, { headers: service })))?.code,
      ).toBe(Code.PermissionDenied);
    }
  });

  it("ends a stream with unauthenticated when its token expires mid-stream", async () => {
    const sessionId = freshId("s");
    const playerId = freshId("p");
    await createSession(sessionId, playerId);
    const shortLived = await token(playerId, "player", { ttlSeconds: 2 });
    const messages: number[] = [];
    let ended: ConnectError | null = null;
    try {
      for await (const { seq } of rpc.streamCraftingProgress(
        { sessionId },
        { headers: { Authorization: `Bearer ${shortLived}` } },
      ))
        messages.push(seq);
    } catch (err) {
      ended = ConnectError.from(err);
    }
    expect(messages).toEqual([1]);
    expect(ended?.code).toBe(Code.Unauthenticated);
    expect(ended?.rawMessage).toMatch(/token expired/);
    await slotsHeld(playerId, 0);
  });

  it("answers permission_denied for another player's session, workflow or queue", async () => {
    const sessionId = freshId("s");
    await createSession(sessionId, freshId("owner"));
    const intruder = freshId("intruder");
    const headers = await bearer(intruder);
    for (const c of [rpc, grpcWeb]) {
      expect((await outcome(c.streamCraftingProgress({ sessionId }, { headers })))?.code).toBe(
        Code.PermissionDenied,
      );
      expect(
        (await outcome(c.streamCraftingQueue({ playerId: freshId("p") }, { headers })))?.code,
      ).toBe(Code.PermissionDenied);
      expect(
        (
          await outcome(
            c.streamCraftingProgress({ sessionId, playerId: "someone-else" }, { headers }),
          )
        )?.code,
      ).toBe(Code.PermissionDenied);
    }
    // Refusals took no slot.
    await slotsHeld(intruder, 0);
  });

  it("answers not_found and invalid_argument", async () => {
    const headers = await bearer(freshId("p"));
    for (const [c, field] of [
      [rpc, "sessionId"], // JSON: the proto3 JSON name
      [grpcWeb, "session_id"], // binary: the proto name
    ] as const) {
      expect(
        (await outcome(c.streamCraftingProgress({ sessionId: freshId("s") }, { headers })))?.code,
      ).toBe(Code.NotFound);
      expect(
        (await outcome(c.streamMultiStepWorkflow({ workflowId: freshId("w") }, { headers })))?.code,
      ).toBe(Code.NotFound);
      const invalid = await outcome(
        c.streamCraftingProgress({ sessionId: "not an id!" }, { headers }),
      );
      expect(invalid?.code).toBe(Code.InvalidArgument);
      expect(invalid?.rawMessage).toMatch(new RegExp(`^${field} must be`));
      expect((await outcome(c.streamCraftingProgress({ sessionId: "" }, { headers })))?.code).toBe(
        Code.InvalidArgument,
      );
      // Every id at fault in one answer, as a refused body is told.
      const player = field === "sessionId" ? "playerId" : "player_id";
      const both = await outcome(
        c.streamCraftingProgress({ sessionId: "", playerId: "not an id!" }, { headers }),
      );
      expect(both?.code).toBe(Code.InvalidArgument);
      expect(both?.rawMessage).toMatch(new RegExp(`^${field} must be [^;]+; ${player} must be `));
      const workflow = await outcome(
        c.streamMultiStepWorkflow({ workflowId: "", playerId: "?" }, { headers }),
      );
      expect(workflow?.rawMessage).toMatch(/workflow_?[iI]d must be [^;]+; player_?[iI]d must be /);
    }
  });

  it("ignores a field its request does not have, as connect-es servers do: a newer client still streams", async () => {
    const [sessionId, playerId] = [freshId("s"), freshId("p")];
    await createSession(sessionId, playerId);
    // A Connect JSON request, enveloped by hand: a typed client cannot write an unknown field.
    const envelope = enveloped(
      new TextEncoder().encode(JSON.stringify({ sessionId, fieldOfANewerClient: 1 })),
    );
    const response = await fetchWorker(
      "https://crafting.test/crafting.v1.CraftingStreamingService/StreamCraftingProgress",
      {
        method: "POST",
        headers: { ...(await bearer(playerId)), "Content-Type": "application/connect+json" },
        body: envelope,
      },
    );
    expect(response.status).toBe(200);
    const reader = (response.body as ReadableStream<Uint8Array>).getReader();
    const { value } = await reader.read();
    const chunk = value as Uint8Array;
    const length = new DataView(chunk.buffer, chunk.byteOffset).getUint32(1);
    const first = JSON.parse(new TextDecoder().decode(chunk.subarray(5, 5 + length)));
    expect(first).toMatchObject({ snapshot: true, update: { sessionId } });
    await reader.cancel();
  });

  it("ends a stream with deadline_exceeded at the client's deadline (Connect-Timeout-Ms), freeing its slot", async () => {
    const sessionId = freshId("s");
    const playerId = freshId("p");
    await createSession(sessionId, playerId);
    // A raw Connect JSON call with a deadline and no client enforcing it: the server must.
    const envelope = enveloped(new TextEncoder().encode(JSON.stringify({ sessionId })));
    const response = await fetchWorker(
      "https://crafting.test/crafting.v1.CraftingStreamingService/StreamCraftingProgress",
      {
        method: "POST",
        headers: {
          ...(await bearer(playerId)),
          "Content-Type": "application/connect+json",
          "Connect-Timeout-Ms": "500",
        },
        body: envelope,
      },
    );
    expect(response.status).toBe(200);
    // The whole body: the snapshot, then (flag 2) the end of the stream with the error.
    const body = new Uint8Array(await response.arrayBuffer());
    const messages: { flags: number; json: { seq?: number; error?: { code: string } } }[] = [];
    for (let at = 0; at < body.length; ) {
      const length = new DataView(body.buffer, at + 1, 4).getUint32(0);
      const text = new TextDecoder().decode(body.subarray(at + 5, at + 5 + length));
      messages.push({ flags: body[at] as number, json: JSON.parse(text) });
      at += 5 + length;
    }
    expect(messages.map((m) => m.flags)).toEqual([0, 2]);
    expect(messages[0]?.json.seq).toBe(1);
    expect(messages[1]?.json).toMatchObject({ error: { code: "deadline_exceeded" } });
    await slotsHeld(playerId, 0);
  });

  it("answers resource_exhausted past the player's 10 streams, WebSockets and RPCs counted together", async () => {
    const playerId = freshId("p");
    const sessionId = freshId("s");
    await createSession(sessionId, playerId);
    const headers = await bearer(playerId);
    const controller = new AbortController();
    const open = Array.from({ length: 10 }, () =>
      rpc
        .streamCraftingProgress({ sessionId }, { headers, signal: controller.signal })
        [Symbol.asyncIterator](),
    );
    await Promise.all(open.map((it) => it.next()));
    await slotsHeld(playerId, 10);
    const eleventh = await outcome(rpc.streamCraftingProgress({ sessionId }, { headers }));
    expect(eleventh?.code).toBe(Code.ResourceExhausted);
    const socket = await exports.default.fetch(
      new Request(`https://crafting.test/ws/crafting/${sessionId}`, {
        headers: { Upgrade: "websocket", ...headers },
      }),
    );
    expect(socket.status).toBe(429);
    // Cancelling frees every slot: the server stops the streams' work.
    controller.abort();
    await Promise.allSettled(open.map((it) => it.next()));
    await slotsHeld(playerId, 0);
  });
});
