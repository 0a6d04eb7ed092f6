/** Typed access to the Durable Object namespaces. */
import { type LocationHint, type Placement, placementFor } from "./domain/placement/placement";
import { AppError } from "./errors";
import { descriptorBudgetOf, descriptors } from "./health/descriptor-budget";
import { log } from "./log";
import { metrics } from "./metrics/push";

/** The stub type of a Durable Object binding of Env. */
export type DurableObjectStubOf<
  K extends "CRAFTING_SESSION" | "CRAFTING_WORKFLOW" | "PLAYER" | "DEAD_LETTERS" | "METRICS",
> = Env[K] extends DurableObjectNamespace<infer T> ? DurableObjectStub<T> : never;

/**
 * How long one request that calls many objects (`POST /v1/events`, `POST
 * /v1/progress`) waits for them (ms). An object that hangs would otherwise
 * hold the request past its caller's timeout (a Kafka sink's is 10 s,
 * deploy/kafka-connect/), and a caller that retries the same batch would
 * be held again.
 */
export const OBJECT_CALLS_BUDGET_MS = 5_000;

/**
 * `call`'s answer, or `unavailable` (retry in 1 s) once `ms` (what is left
 * of the request's `budgetMs`) have passed without one. The call is left
 * to finish: what it applies late, the caller's retry or a Queue copy
 * finds stored (every such call is idempotent: bridged events by id,
 * progress corrections absolute).
 */
export function answeredWithin<T>(
  pending: PromiseLike<T>,
  ms: number,
  budgetMs = OBJECT_CALLS_BUDGET_MS,
): Promise<T> {
  const call = Promise.resolve(pending);
  let timer: ReturnType<typeof setTimeout> | null = null;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new AppError(
            "unavailable",
            `the session did not answer within the request's ${budgetMs} ms`,
            1,
          ),
        ),
      ms,
    );
  });
  // A late failure of a call given up on is nobody's to handle: the caller has answered for it.
  call.catch(() => {});
  return Promise.race([call, timeout]).finally(() => {
    if (timer !== null) clearTimeout(timer);
  });
}

/** Seconds a caller refused for want of descriptors waits: the runtime evicts idle objects 10 s after their last call. */
const DESCRIPTORS_RETRY_AFTER_S = 10;

function outOfDescriptors(what: string): AppError {
  metrics.count("crafting_throttles_total", { limit: "descriptors" });
  log("warn", "descriptors.refused", { what });
  return new AppError(
    "unavailable",
    `the service holds as many ${what} as this process may: retry shortly`,
    DESCRIPTORS_RETRY_AFTER_S,
  );
}

/**
 * Notes a call to the object `key`, or refuses it (503, Retry-After) when
 * bringing the object to life would take this process past its descriptor
 * budget (docs/reliability.md, the descriptor budget).
 */
function called(env: Env, key: string): void {
  const budget = descriptorBudgetOf(env);
  if (budget <= 0) return;
  const now = Date.now();
  if (!descriptors.admitsCall(key, budget, now)) throw outOfDescriptors("live objects");
  descriptors.called(key, now);
}

/**
 * Refuses a new stream (503, Retry-After) when it would take this process
 * past its descriptor budget: its socket and the `objects` it may bring to
 * life (DescriptorBudget.admitsStream).
 */
export function admitStream(env: Env, objects = 2): void {
  if (!descriptors.admitsStream(descriptorBudgetOf(env), Date.now(), objects))
    throw outOfDescriptors("streams");
}

/** The session object for an id; one object per session id, the world over. */
export function sessionStub(
  env: Env,
  sessionId: string,
  locationHint?: LocationHint | null,
): DurableObjectStubOf<"CRAFTING_SESSION"> {
  called(env, `session:${sessionId}`);
  // The hint only matters for the call that creates the object (docs/sessions.md, placement).
  return locationHint
    ? env.CRAFTING_SESSION.getByName(sessionId, { locationHint })
    : env.CRAFTING_SESSION.getByName(sessionId);
}

/** The object of one workflow (placed by `locationHint` if this call creates it). */
export function workflowStub(
  env: Env,
  workflowId: string,
  locationHint?: LocationHint | null,
): DurableObjectStubOf<"CRAFTING_WORKFLOW"> {
  called(env, `workflow:${workflowId}`);
  return locationHint
    ? env.CRAFTING_WORKFLOW.getByName(workflowId, { locationHint })
    : env.CRAFTING_WORKFLOW.getByName(workflowId);
}

/**
 * Where a new object of `playerId`'s (a session, a workflow) should start:
 * the region the caller named, else where the player last connected from
 * (one call to the player's object, only when no region is named), else
 * nowhere in particular (docs/sessions.md, placement).
 */
export async function placementOf(
  env: Env,
  playerId: string,
  region: LocationHint | null | undefined,
): Promise<Placement> {
  return placementFor(region, region ? null : await playerStub(env, playerId).lastRegion());
}

/** The object of one player: stream leases, queue. */
export function playerStub(env: Env, playerId: string): DurableObjectStubOf<"PLAYER"> {
  called(env, `player:${playerId}`);
  return env.PLAYER.getByName(playerId);
}

/** The object serving the operators' health stream (one of the metrics objects, by name). */
export function healthStub(env: Env, name = "health"): DurableObjectStubOf<"METRICS"> {
  return env.METRICS.getByName(name);
}

/** The one dead-letter log. */
export function deadLetterStub(env: Env): DurableObjectStubOf<"DEAD_LETTERS"> {
  return env.DEAD_LETTERS.getByName("dead-letters");
}

/** A stream's claim on its player's slot, as the holder remembers it. */
export interface HeldLease {
  playerId: string;
  leaseId: string;
}

/** Calls `action` once per player with that player's lease ids. Best effort: failures are swallowed. */
async function perPlayer(
  env: Env,
  leases: readonly HeldLease[],
  action: (stub: DurableObjectStubOf<"PLAYER">, leaseIds: string[]) => Promise<void>,
): Promise<void> {
  const byPlayer = new Map<string, string[]>();
  for (const { playerId, leaseId } of leases)
    byPlayer.set(playerId, [...(byPlayer.get(playerId) ?? []), leaseId]);
  await Promise.allSettled(
    [...byPlayer].map(([playerId, ids]) => action(playerStub(env, playerId), ids)),
  );
}

/** Frees stream slots; one that is not freed is reclaimed when its player needs it (stream-leases.ts). */
export function releaseStreamLeases(env: Env, leases: readonly HeldLease[]): Promise<void> {
  return perPlayer(env, leases, (stub, ids) => stub.releaseStreams(ids));
}
