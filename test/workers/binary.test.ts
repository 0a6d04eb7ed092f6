/**
 * The binary protocols in workerd: `crafting.v1.bin` frames, the sync
 * channel (`crafting.sync.v1`), and application/x-protobuf bodies.
 */
import { create, fromBinary, fromJson, type JsonValue, toBinary } from "@bufbuild/protobuf";
import { describe, expect, it } from "vitest";
import {
  ClientFrameSchema,
  type ServerFrame,
  ServerFrameSchema,
} from "../../src/gen/crafting/v1/frames_pb";
import { SessionStateSchema, SessionStatus } from "../../src/gen/crafting/v1/session_pb";
import {
  MaterialReportResultSchema,
  ProgressCorrectionRequestSchema,
  SyncRequestSchema,
  UdpMaterialUpdateSchema,
} from "../../src/gen/crafting/v1/sync_pb";
import { SyncReceiver } from "../../src/protocol/sync/sync-receiver";
import { freshId, token } from "../support/tokens";
import { call, RawSocket, serviceCall, watch } from "./helpers";

async function open(path: string, headers: Record<string, string>): Promise<Response> {
  return call(path, { headers: { Upgrade: "websocket", ...headers } });
}

async function started(materials: string[] = []) {
  const sessionId = freshId("s");
  const playerId = freshId("p");
  const created = await serviceCall("/v1/sessions", {
    session_id: sessionId,
    player_id: playerId,
    recipe_id: "iron-sword",
    steps: [
      { name: "smelt", duration_ms: 60_000 },
      { name: "forge", duration_ms: 60_000 },
    ],
    materials: materials.map((material_id) => ({ material_id, required: 2 })),
  });
  expect(created.status).toBe(201);
  await serviceCall(`/v1/sessions/${sessionId}/start`);
  return { sessionId, playerId, bearer: await token(playerId) };
}

const binaryFrame = (data: string | Uint8Array | undefined): ServerFrame => {
  if (!(data instanceof Uint8Array))
    throw new Error(`expected a binary frame, got ${String(data)}`);
  return fromBinary(ServerFrameSchema, data);
};

describe("crafting.v1.bin", () => {
  it("carries exactly what the JSON frames carry, as binary protobuf", async () => {
    const { sessionId, bearer } = await started();
    const response = await open(`/ws/crafting/${sessionId}`, {
      Authorization: `Bearer ${bearer}`,
      "Sec-WebSocket-Protocol": "crafting.v1.bin",
    });
    expect(response.status).toBe(101);
    expect(response.headers.get("Sec-WebSocket-Protocol")).toBe("crafting.v1.bin");
    const binary = new RawSocket(response.webSocket as WebSocket);
    const json = await watch(sessionId, bearer);
    await serviceCall(`/udp/sessions/${sessionId}/progress`, { progress_percent: 40 });
    const [jsonSnapshot, jsonUpdate] = await json.frameCount(2);
    const [binSnapshot, binUpdate] = (await binary.count(2)).map(binaryFrame);
    const asFrame = (frame: unknown) => fromJson(ServerFrameSchema, frame as JsonValue);
    // Same state, same update, same seq (server times differ by when each was taken).
    expect(binSnapshot?.seq).toBe(asFrame(jsonSnapshot).seq);
    expect(binSnapshot?.kind.case).toBe("snapshot");
    expect(
      toBinary(ServerFrameSchema, { ...(binUpdate as ServerFrame), serverTimeMs: 0n }),
    ).toEqual(toBinary(ServerFrameSchema, { ...asFrame(jsonUpdate), serverTimeMs: 0n }));
  });

  it("answers binary client frames, tolerates unknown fields, and refuses garbage with an error frame", async () => {
    const { sessionId, bearer } = await started();
    const response = await open(`/ws/crafting/${sessionId}`, {
      Authorization: `Bearer ${bearer}`,
      "Sec-WebSocket-Protocol": "crafting.v1.bin",
    });
    const socket = new RawSocket(response.webSocket as WebSocket);
    await socket.count(1);
    const ping = toBinary(
      ClientFrameSchema,
      create(ClientFrameSchema, { kind: { case: "ping", value: { clientTimeMs: 42n } } }),
    );
    // An unknown field (number 99, varint 1) appended: a newer client.
    socket.ws.send(Uint8Array.from([...ping, 0x98, 0x06, 0x01]));
    socket.ws.send(Uint8Array.from([0xff, 0xff, 0xff, 0x01, 0x02]));
    socket.ws.send('{"ping":{}}');
    const [, pong, garbage, text] = (await socket.count(4)).map(binaryFrame);
    expect(pong?.kind).toMatchObject({ case: "pong", value: { clientTimeMs: 42n } });
    expect(garbage?.kind).toMatchObject({ case: "error", value: { code: "invalid_argument" } });
    expect(text?.kind).toMatchObject({
      case: "error",
      value: { message: expect.stringContaining("binary frames") },
    });
    expect(socket.closed).toBeNull();
    // The session keeps serving.
    await serviceCall(`/udp/sessions/${sessionId}/progress`, { progress_percent: 10 });
    expect(binaryFrame((await socket.count(5))[4]).kind.case).toBe("update");
  });
});

describe("the sync channel", () => {
  async function connect(sessionId: string, bearer: string, body: unknown = {}) {
    return call(`/udp/sessions/${sessionId}/connect`, {
      method: "POST",
      headers: { Authorization: `Bearer ${bearer}`, "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
  }

  it("negotiates, clamps, and opens a stream of full syncs and small deltas", async () => {
    const { sessionId, bearer } = await started(["ore", "coal"]);
    const answer = await connect(sessionId, bearer, {
      packet_size: 10,
      full_sync_interval_ms: 60_000,
    });
    expect(answer.status).toBe(200);
    const offer = (await answer.json()) as Record<string, unknown>;
    expect(offer).toMatchObject({
      url: `/udp/sessions/${sessionId}/sync`,
      subprotocol: "crafting.sync.v1",
      packet_size: 64,
      delta: true,
      lz4: true,
      full_sync_interval_ms: 60_000,
      clamped: ["packet_size"],
    });
    const response = await open(offer.url as string, {
      Authorization: `Bearer ${offer.token}`,
      "Sec-WebSocket-Protocol": "crafting.sync.v1",
    });
    expect(response.status).toBe(101);
    const socket = new RawSocket(response.webSocket as WebSocket);
    const client = new SyncReceiver();
    const first = await socket.count(1);
    // A 64-byte packet size splits the full sync into parts.
    await new Promise((resolve) => setTimeout(resolve, 100));
    let full = false;
    for (const packet of socket.messages) {
      expect((packet as Uint8Array).length).toBeLessThanOrEqual(64);
      const event = client.receive(packet as Uint8Array);
      if (event.type === "state") full = event.full;
    }
    expect(first.length).toBeGreaterThan(0);
    expect(full).toBe(true);
    expect(client.state?.status).toBe(SessionStatus.ACTIVE);
    expect(client.session?.materials.map((m) => m.materialId)).toEqual(["ore", "coal"]);

    const before = socket.messages.length;
    await serviceCall(`/udp/sessions/${sessionId}/progress`, { progress_percent: 30 });
    const [delta] = (await socket.count(before + 1)).slice(before) as Uint8Array[];
    expect(delta?.length).toBeLessThanOrEqual(32);
    expect(client.receive(delta as Uint8Array)).toMatchObject({ type: "state", full: false });
    expect(client.state?.anchorElapsedMs).toBe(36_000);

    await serviceCall(`/udp/sessions/${sessionId}/materials`, {
      changes: [{ material_id: "coal", quantity: 0 }],
    });
    const [materials] = (await socket.count(before + 2)).slice(before + 1) as Uint8Array[];
    expect(client.receive(materials as Uint8Array)).toMatchObject({ type: "state", full: false });
    expect(client.state?.materialQuantities).toEqual([2, 0]);
  });

  it("sends a full sync when the client asks, and refuses garbage with an error packet", async () => {
    const { sessionId, bearer } = await started(["ore"]);
    const offer = (await (await connect(sessionId, bearer, { lz4: false })).json()) as {
      token: string;
    };
    const response = await open(`/udp/sessions/${sessionId}/sync`, {
      Authorization: `Bearer ${offer.token}`,
      "Sec-WebSocket-Protocol": "crafting.sync.v1",
    });
    const socket = new RawSocket(response.webSocket as WebSocket);
    await socket.count(1);
    const client = new SyncReceiver();
    socket.ws.send(toBinary(SyncRequestSchema, create(SyncRequestSchema, { full: true })));
    const [, again] = (await socket.count(2)) as Uint8Array[];
    expect(client.receive(again as Uint8Array)).toMatchObject({ type: "state", full: true });
    socket.ws.send(Uint8Array.from([0x0a, 0xff]));
    const [, , error] = (await socket.count(3)) as Uint8Array[];
    expect(client.receive(error as Uint8Array)).toMatchObject({
      type: "control",
      frame: { kind: { case: "error", value: { code: "invalid_argument" } } },
    });
    expect(socket.closed).toBeNull();
  });

  it("refuses what it must: another player's session, a sync token for another session, a player token, no subprotocol", async () => {
    const { sessionId, bearer } = await started();
    expect((await connect(sessionId, await token(freshId("p")))).status).toBe(403);
    expect((await connect(freshId("s"), bearer)).status).toBe(404);
    expect((await connect(sessionId, bearer, { packet_size: "big" })).status).toBe(400);
    const { token: syncToken } = (await (await connect(sessionId, bearer)).json()) as {
      token: string;
    };
    const other = await started();
    const subprotocol = { "Sec-WebSocket-Protocol": "crafting.sync.v1" };
    expect(
      (
        await open(`/udp/sessions/${other.sessionId}/sync`, {
          Authorization: `Bearer ${syncToken}`,
          ...subprotocol,
        })
      ).status,
    ).toBe(403);
    expect(
      (
        await open(`/udp/sessions/${sessionId}/sync`, {
          Authorization: `Bearer ${bearer}`,
          ...subprotocol,
        })
      ).status,
    ).toBe(403);
    expect(
      (await open(`/udp/sessions/${sessionId}/sync`, { Authorization: `Bearer ${syncToken}` }))
        .status,
    ).toBe(400);
    // A sync token opens nothing else.
    expect(
      (await open(`/ws/crafting/${sessionId}`, { Authorization: `Bearer ${syncToken}` })).status,
    ).toBe(403);
    await serviceCall(`/v1/sessions/${sessionId}/complete`);
    expect((await connect(sessionId, bearer)).status).toBe(409);
  });
});

describe("application/x-protobuf bodies", () => {
  it("take progress and materials as binary messages, and answer in binary when asked", async () => {
    const { sessionId } = await started(["ore"]);
    const headers = {
      Authorization: `Bearer ${await token("crafting-service", "service")}`,
      "Content-Type": "application/x-protobuf",
      Accept: "application/x-protobuf",
    };
    const progress = await call(`/udp/sessions/${sessionId}/progress`, {
      method: "POST",
      headers,
      body: toBinary(
        ProgressCorrectionRequestSchema,
        create(ProgressCorrectionRequestSchema, { progressPercent: 50 }),
      ),
    });
    expect(progress.status).toBe(200);
    expect(progress.headers.get("Content-Type")).toBe("application/x-protobuf");
    const state = fromBinary(SessionStateSchema, new Uint8Array(await progress.arrayBuffer()));
    expect(state.clock?.anchorElapsedMs).toBe(60_000);

    const materials = await call(`/udp/sessions/${sessionId}/materials`, {
      method: "POST",
      headers,
      body: toBinary(
        UdpMaterialUpdateSchema,
        create(UdpMaterialUpdateSchema, {
          changes: [{ materialId: "ore", quantity: 1, available: true }],
        }),
      ),
    });
    const result = fromBinary(
      MaterialReportResultSchema,
      new Uint8Array(await materials.arrayBuffer()),
    );
    expect(result.results).toMatchObject([{ materialId: "ore", outcome: "applied" }]);
    expect(result.session?.materials[0]?.available).toBe(1);

    const garbage = await call(`/udp/sessions/${sessionId}/progress`, {
      method: "POST",
      headers,
      body: Uint8Array.from([0xff, 0xff, 0xff]),
    });
    expect(garbage.status).toBe(400);
    expect(await garbage.json()).toMatchObject({ error: { code: "invalid_argument" } });
    // Validation is the same as for JSON.
    const outOfRange = await call(`/udp/sessions/${sessionId}/progress`, {
      method: "POST",
      headers,
      body: toBinary(
        ProgressCorrectionRequestSchema,
        create(ProgressCorrectionRequestSchema, { progressPercent: 120 }),
      ),
    });
    expect(outOfRange.status).toBe(400);
  });
});
