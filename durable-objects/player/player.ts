/**
 * One player: holds the player's stream leases (and, later, their crafting
 * queue). A thin shell around the pure rules in stream-leases.ts; the lease
 * set is small (at most 10 live), so it is stored whole under one key.
 */
import { DurableObject } from "cloudflare:workers";
import type { Result } from "../../src/errors";
import { ok } from "../../src/errors";
import {
  acquireLease,
  LEASE_RULES,
  liveLeases,
  releaseLeases,
  renewLeases,
  type StreamKind,
  type StreamLease,
} from "./stream-leases";

const LEASES_KEY = "stream_leases";

/** Durable Object for one player. */
export class Player extends DurableObject<Env> {
  #leases(): StreamLease[] {
    return this.ctx.storage.kv.get<StreamLease[]>(LEASES_KEY) ?? [];
  }

  #save(leases: StreamLease[]): void {
    if (leases.length === 0) this.ctx.storage.kv.delete(LEASES_KEY);
    else this.ctx.storage.kv.put(LEASES_KEY, leases);
  }

  /** Takes a stream slot; `resource_exhausted` when the player is at the limit. */
  async acquireStream(kind: StreamKind, target: string): Promise<Result<{ leaseId: string }>> {
    const max = Number(this.env.MAX_STREAMS_PER_PLAYER) || LEASE_RULES.maxStreamsPerPlayer;
    const request = { id: crypto.randomUUID(), kind, target };
    const result = acquireLease(this.#leases(), request, Date.now(), max);
    if (!result.ok) return result;
    this.#save(result.leases);
    return ok({ leaseId: result.lease.id });
  }

  /** Keeps the given streams' slots alive. */
  async renewStreams(leaseIds: string[]): Promise<void> {
    this.#save(renewLeases(this.#leases(), leaseIds, Date.now()));
  }

  /** Frees the given streams' slots. */
  async releaseStreams(leaseIds: string[]): Promise<void> {
    this.#save(releaseLeases(this.#leases(), leaseIds, Date.now()));
  }

  /** The player's live streams (operators, tests). */
  async streams(): Promise<StreamLease[]> {
    return liveLeases(this.#leases(), Date.now());
  }
}
