/**
 * Stream leases: the rule "at most 10 concurrent streams per player, across
 * all their sessions and stream kinds", as a pure function of the lease set.
 * Leases expire unless renewed, so a stream whose close was never seen (a
 * crashed object, workerd#1187) frees its slot by itself.
 */
import type { ServiceError } from "../../errors";

/** What a stream watches. */
export type StreamKind = "session" | "queue" | "workflow" | "health" | "rpc";

/** One stream's claim on a slot. */
export interface StreamLease {
  id: string;
  kind: StreamKind;
  target: string;
  expiresAtMs: number;
}

/** The limits, in one place. */
export const LEASE_RULES = {
  maxStreamsPerPlayer: 10,
  /** Holders renew every STREAM_TIMING.sweepIntervalMs (30 s); two missed renewals free the slot. */
  ttlMs: 65_000,
  /** A slot taken or renewed this recently is never reclaimed (its stream may be opening). */
  settleMs: 5_000,
} as const;

/** Leases still alive at `nowMs`. */
export function liveLeases(leases: readonly StreamLease[], nowMs: number): StreamLease[] {
  return leases.filter((lease) => lease.expiresAtMs > nowMs);
}

/**
 * Leases whose streams may be checked for and reclaimed when the player is
 * at the limit: all live ones but those taken (or renewed) in the last
 * `settleMs`, whose streams may still be being accepted.
 */
export function reclaimableLeases(leases: readonly StreamLease[], nowMs: number): StreamLease[] {
  const takenBefore = nowMs - LEASE_RULES.settleMs;
  return liveLeases(leases, nowMs).filter(
    (lease) => lease.expiresAtMs - LEASE_RULES.ttlMs < takenBefore,
  );
}

/** Takes a slot for a new stream, or says the player is at the limit. */
export function acquireLease(
  leases: readonly StreamLease[],
  request: { id: string; kind: StreamKind; target: string },
  nowMs: number,
  max: number = LEASE_RULES.maxStreamsPerPlayer,
): { ok: true; leases: StreamLease[]; lease: StreamLease } | { ok: false; error: ServiceError } {
  const live = liveLeases(leases, nowMs);
  if (live.length >= max) {
    return {
      ok: false,
      error: {
        code: "resource_exhausted",
        message: `a player may hold at most ${max} streams at once`,
      },
    };
  }
  const lease: StreamLease = { ...request, expiresAtMs: nowMs + LEASE_RULES.ttlMs };
  return { ok: true, leases: [...live, lease], lease };
}

/** Extends the leases whose ids are given; unknown ids are ignored. */
export function renewLeases(
  leases: readonly StreamLease[],
  ids: readonly string[],
  nowMs: number,
): StreamLease[] {
  const renewing = new Set(ids);
  return liveLeases(leases, nowMs).map((lease) =>
    renewing.has(lease.id) ? { ...lease, expiresAtMs: nowMs + LEASE_RULES.ttlMs } : lease,
  );
}

/** Frees the given leases. */
export function releaseLeases(
  leases: readonly StreamLease[],
  ids: readonly string[],
  nowMs: number,
): StreamLease[] {
  const releasing = new Set(ids);
  return liveLeases(leases, nowMs).filter((lease) => !releasing.has(lease.id));
}
