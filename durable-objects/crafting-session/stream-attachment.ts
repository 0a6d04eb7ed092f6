/**
 * What a stream carries through hibernation: small, serialisable, no token.
 * https://developers.cloudflare.com/durable-objects/api/websockets/#serializeattachment
 */
export interface StreamAttachment {
  playerId: string;
  /** Token expiry (seconds since the epoch): the stream must not outlive it. */
  tokenExp: number;
  connectedAtMs: number;
}

/**
 * Headers the Worker sets on the fresh request it forwards to a Durable
 * Object after verifying the token; a client's own headers never reach it.
 */
export const STREAM_HEADERS = {
  player: "X-Crafting-Player",
  tokenExp: "X-Crafting-Token-Exp",
  protocol: "X-Crafting-Protocol",
} as const;
