/**
 * Headers the Worker sets on the fresh request it forwards to a Durable
 * Object after verifying the token; a client's own headers never reach it.
 * The contract between the stream routes and the streaming objects.
 */
export const STREAM_HEADERS = {
  player: "X-Crafting-Player",
  tokenExp: "X-Crafting-Token-Exp",
  protocol: "X-Crafting-Protocol",
  leaseId: "X-Crafting-Lease",
  origin: "X-Crafting-Origin",
  resume: "X-Crafting-Resume",
  /** The sync channel's negotiated options (JSON of SyncOptions). */
  sync: "X-Crafting-Sync",
  /** "1": the caller is an operator, who may watch what another player owns. */
  operator: "X-Crafting-Operator",
} as const;
