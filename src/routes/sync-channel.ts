/**
 * The player's compact sync channel (seed 001's "UDP" channel, carried in
 * binary WebSocket frames): `POST /udp/sessions/{id}/connect` negotiates
 * packet size, codec options and the full-sync interval and answers a
 * short-lived token scoped to that session; `GET /udp/sessions/{id}/sync`
 * opens the stream with it (subprotocol `crafting.sync.v1`).
 */
import { Hono } from "hono";
import * as v from "valibot";
import { signJwt, type TokenClaims } from "../auth/jwt";
import { signingKey } from "../auth/keys";
import { sessionStub } from "../durable";
import { AppError, unwrap } from "../errors";
import { readJsonBody } from "../http/body";
import { fields, parse, wholeNumber } from "../http/valid";
import { type AuthVariables, requireAuth } from "../middleware/auth";
import { rateLimit, requireAllowedOrigin, subject } from "../middleware/limits";
import { SUBPROTOCOL } from "../protocol/stream-codec";
import { LZ4_MIN_BYTES } from "../protocol/sync/lz4";
import { PACKET_SIZE } from "../protocol/sync/packet";
import type { SyncOptions } from "../protocol/sync/sync-encoder";
import { parseId } from "./session-input";
import { connectStream, negotiateProtocol, requireUpgrade } from "./streams";

/** The channel's defaults and bounds. */
export const SYNC_RULES = {
  defaultPacketSize: 1200,
  defaultFullSyncIntervalMs: 10_000,
  minFullSyncIntervalMs: 1_000,
  maxFullSyncIntervalMs: 300_000,
  /** A sync token lives this long (or less, if the player's token expires sooner). */
  tokenTtlSeconds: 900,
} as const;

type ChannelEnv = { Bindings: Env; Variables: AuthVariables };

const POSITIVE = "must be a positive whole number";
const BOOLEAN = "must be a boolean";

/** The negotiation's body: every field optional, sizes and intervals clamped after. */
const negotiation = v.nullish(
  fields(
    {
      packet_size: v.nullish(wholeNumber(1, Number.MAX_VALUE, POSITIVE)),
      delta: v.nullish(v.boolean(BOOLEAN)),
      lz4: v.nullish(v.boolean(BOOLEAN)),
      full_sync_interval_ms: v.nullish(wholeNumber(1, Number.MAX_VALUE, POSITIVE)),
    },
    "the body must be a JSON object",
  ),
  {},
);

const clamp = (value: number, min: number, max: number) => Math.min(max, Math.max(min, value));

/**
 * What a client asked for, within the rules: sizes and intervals out of
 * range are clamped (and the answer says so), wrong types are refused.
 */
export function negotiate(body: unknown): { options: SyncOptions; clamped: string[] } {
  const input = parse(negotiation, body);
  const clamped: string[] = [];
  const askedSize = input.packet_size ?? SYNC_RULES.defaultPacketSize;
  const packetSize = clamp(askedSize, PACKET_SIZE.min, PACKET_SIZE.max);
  if (packetSize !== askedSize) clamped.push("packet_size");
  const askedInterval = input.full_sync_interval_ms ?? SYNC_RULES.defaultFullSyncIntervalMs;
  const fullSyncIntervalMs = clamp(
    askedInterval,
    SYNC_RULES.minFullSyncIntervalMs,
    SYNC_RULES.maxFullSyncIntervalMs,
  );
  if (fullSyncIntervalMs !== askedInterval) clamped.push("full_sync_interval_ms");
  return {
    options: {
      packetSize,
      delta: input.delta ?? true,
      lz4: input.lz4 ?? true,
      fullSyncIntervalMs,
    },
    clamped,
  };
}

/** The options a sync token carries (claims `syn`), checked again on the way in. */
function optionsOf(claims: TokenClaims): SyncOptions {
  const syn = claims.syn ?? {};
  return negotiate({
    packet_size: syn.p,
    delta: syn.d,
    lz4: syn.l,
    full_sync_interval_ms: syn.f,
  }).options;
}

/** Routes under /udp/sessions for players. */
export const syncChannelRoutes = new Hono<ChannelEnv>()
  .post(
    "/:id/connect",
    requireAuth("player"),
    rateLimit("UPGRADE_RATE_LIMITER", subject),
    async (c) => {
      const sessionId = parseId(c.req.param("id"), "session_id");
      const { options, clamped } = negotiate(await readJsonBody(c.req.raw, { optional: true }));
      const auth = c.get("auth");
      const owner = unwrap(await sessionStub(c.env, sessionId).owner());
      if (owner.playerId !== auth.sub) {
        throw new AppError("permission_denied", "this crafting session belongs to another player");
      }
      if (owner.ended) throw new AppError("failed_precondition", "the session has ended");
      const now = Math.floor(Date.now() / 1000);
      const exp = Math.min(auth.exp, now + SYNC_RULES.tokenTtlSeconds);
      const token = await signJwt(
        {
          sub: auth.sub,
          scope: "sync",
          iat: now,
          exp,
          sid: sessionId,
          syn: {
            p: options.packetSize,
            d: options.delta,
            l: options.lz4,
            f: options.fullSyncIntervalMs,
          },
        },
        ...signingKey(c.env),
      );
      return c.json({
        token,
        expires_at_ms: exp * 1000,
        url: `/udp/sessions/${sessionId}/sync`,
        subprotocol: SUBPROTOCOL.sync,
        packet_size: options.packetSize,
        delta: options.delta,
        lz4: options.lz4,
        lz4_min_bytes: LZ4_MIN_BYTES,
        full_sync_interval_ms: options.fullSyncIntervalMs,
        clamped,
      });
    },
  )
  .get(
    "/:id/sync",
    requireAllowedOrigin,
    requireAuth("sync"),
    requireUpgrade,
    rateLimit("UPGRADE_RATE_LIMITER", subject),
    async (c) => {
      const sessionId = parseId(c.req.param("id"), "session_id");
      const auth = c.get("auth");
      if (auth.sid !== sessionId) {
        throw new AppError("permission_denied", "this sync token is for another session");
      }
      // Required: the packets are not what a client that did not ask for them expects.
      if (negotiateProtocol(c.req.raw, [SUBPROTOCOL.sync]) === null) {
        throw new AppError("invalid_argument", `offer the ${SUBPROTOCOL.sync} subprotocol`);
      }
      return connectStream(c.env, auth, {
        kind: "session",
        target: sessionId,
        protocol: SUBPROTOCOL.sync,
        resume: null,
        origin: c.req.header("Origin") ?? null,
        sync: JSON.stringify(optionsOf(auth)),
      });
    },
  );
