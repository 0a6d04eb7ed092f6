/**
 * Stream leases: the rule "at most 10 concurrent streams per player, across
 * all their sessions and stream kinds", as a pure function of the lease set.
 * A lease lasts as long as its stream may: until the stream's token expires
 * (a stream ends then). Nothing renews it on a timer — a lease whose stream
 * was lost (a crashed object, a close event never seen, workerd#1187) is
 * reclaimed when the player needs the slot: the objects holding the streams
 * are asked which are still open.
 */
import type { ServiceError } from "../../errors";

/** What a stream watches. */
export type StreamKind = "session" | "queue" | "workflow" | "health" | "rpc";

/** One stream's claim on a slot. */
export interface StreamLease {
  id: string;
  kind: StreamKind;
  target: string;
  /** When the slot was taken (absent in leases stored before it was recorded: long ago). */
  takenAtMs?: number;
  /** The stream's token expiry: the stream cannot outlive it. */
  expiresAtMs: number;
}

/** The limits, in one place. */
export const LEASE_RULES = {
  maxStreamsPerPlayer: 10,
  /** The longest a lease lasts, whatever the token says (a token without a near expiry). */
  maxLifetimeMs: 24 * 3_600_000,
  /** A slot taken this recently is never reclaimed (its stream may still be being accepted). */
  settleMs: 5_000,
} as const;

/** Whether a lease still holds its slot at `nowMs` (its stream cannot outlive its expiry). */
const holds = (lease: StreamLease, nowMs: number) => lease.expiresAtMs > nowMs;

/** Leases still alive at `nowMs`. */
export function liveLeases(leases: Iterable<StreamLease>, nowMs: number): StreamLease[] {
  const live: StreamLease[] = [];
  for (const lease of leases) if (holds(lease, nowMs)) live.push(lease);
  return live;
}

/** Leases past their expiry at `nowMs`: their streams have ended, so their slots are free. */
export function expiredLeases(leases: Iterable<StreamLease>, nowMs: number): StreamLease[] {
  const expired: StreamLease[] = [];
  for (const lease of leases) if (!holds(lease, nowMs)) expired.push(lease);
  return expired;
}

/**
 * Leases whose streams may be checked for and reclaimed when the player is
 * at the limit: all live ones but those taken in the last `settleMs`, whose
 * streams may still be being accepted.
 */
export function reclaimableLeases(leases: Iterable<StreamLease>, nowMs: number): StreamLease[] {
  const takenBefore = nowMs - LEASE_RULES.settleMs;
  return liveLeases(leases, nowMs).filter((lease) => (lease.takenAtMs ?? 0) < takenBefore);
}

/**
 * Takes a slot for a new stream, or says the player is at the limit.
 * `leases`: the player's leases, expired ones included (they hold no
 * slot). Counts without copying: a player's leases are read on every open.
 */
export function acquireLease(
  leases: Iterable<StreamLease>,
  request: { id: string; kind: StreamKind; target: string; expiresAtMs?: number },
  nowMs: number,
  max: number = LEASE_RULES.maxStreamsPerPlayer,
): { ok: true; lease: StreamLease } | { ok: false; error: ServiceError } {
  let live = 0;
  for (const lease of leases) if (holds(lease, nowMs)) live++;
  if (live >= max) {
    return {
      ok: false,
      error: {
        code: "resource_exhausted",
        message: `a player may hold at most ${max} streams at once`,
      },
    };
  }
  const longest = nowMs + LEASE_RULES.maxLifetimeMs;
  return {
    ok: true,
    lease: {
      id: request.id,
      kind: request.kind,
      target: request.target,
      takenAtMs: nowMs,
      expiresAtMs: Math.min(request.expiresAtMs ?? longest, longest),
    },
  };
}
