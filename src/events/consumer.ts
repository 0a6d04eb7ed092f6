/**
 * The Queue consumers. Events: a batch is grouped by session and each group
 * goes to its session object in one call; every message is acked, retried
 * with backoff, or dead-lettered with its reason on its own — one bad event
 * never retries a batch. Dead letters: recorded for operators.
 */

import type { DeadLetter } from "../domain/events/dead-letter";
import type { EventResult, SessionEvent } from "../domain/events/session-events";
import { deadLetterStub } from "../durable";
import { log } from "../log";
import { metrics } from "../metrics/push";
import { applyToSession } from "./apply-now";
import { isSessionEvent } from "./event-input";

/** The dead-letter queue's name (wrangler.toml); environments append `-<env>`. */
export const DEAD_LETTER_QUEUE_NAME = "crafting-events-dlq";

/** A batch from the dead-letter queue, in any environment (`crafting-events-dlq-staging`). */
export function isDeadLetterQueue(queue: string): boolean {
  return queue === DEAD_LETTER_QUEUE_NAME || queue.startsWith(`${DEAD_LETTER_QUEUE_NAME}-`);
}

/** Retry delay after a transient failure: 1, 2, 4 … 60 s. */
export function retryDelaySeconds(attempts: number): number {
  return Math.min(60, 2 ** Math.max(0, attempts - 1));
}

/** Applies a batch of bridged events. */
export async function consumeEvents(batch: MessageBatch<unknown>, env: Env): Promise<void> {
  const dead: { message: Message<unknown>; reason: string }[] = [];
  const bySession = new Map<string, { message: Message<unknown>; event: SessionEvent }[]>();
  for (const message of batch.messages) {
    if (!isSessionEvent(message.body)) {
      metrics.count("crafting_ingest_events_total", { outcome: "malformed" });
      dead.push({ message, reason: "malformed: not a crafting event" });
      continue;
    }
    const group = bySession.get(message.body.sessionId) ?? [];
    group.push({ message, event: message.body });
    bySession.set(message.body.sessionId, group);
  }

  await Promise.all(
    [...bySession].map(async ([sessionId, group]) => {
      let results: EventResult[];
      try {
        results = await applyToSession(
          env,
          sessionId,
          group.map((item) => item.event),
        );
      } catch (e) {
        // Overloaded, reset or broken: this group only, later.
        log("warn", "events.retry", {
          queue: batch.queue,
          session_id: sessionId,
          count: group.length,
          message: e instanceof Error ? e.message : String(e),
        });
        metrics.count("crafting_ingest_events_total", { outcome: "retried" }, group.length);
        for (const { message } of group)
          message.retry({ delaySeconds: retryDelaySeconds(message.attempts) });
        return;
      }
      group.forEach(({ message }, i) => {
        const result = results[i];
        metrics.count("crafting_ingest_events_total", { outcome: result?.outcome ?? "unknown" });
        if (result?.outcome === "rejected")
          dead.push({ message, reason: `rejected: ${result.reason}` });
        else message.ack();
      });
    }),
  );

  if (dead.length === 0) return;
  try {
    await env.DEAD_LETTER_QUEUE.sendBatch(
      dead.map(({ message, reason }) => ({
        body: {
          reason,
          queue: batch.queue,
          attempts: message.attempts,
          body: message.body,
          atMs: Date.now(),
        },
        contentType: "json" as const,
      })),
    );
    for (const { message, reason } of dead) {
      log("warn", "events.dead_letter", { queue: batch.queue, message_id: message.id, reason });
      message.ack();
    }
  } catch (e) {
    log("error", "events.dead_letter_failed", {
      message: e instanceof Error ? e.message : String(e),
    });
    for (const { message } of dead)
      message.retry({ delaySeconds: retryDelaySeconds(message.attempts) });
  }
}

/**
 * Records dead letters: those the consumer sent with a reason, and those
 * the Queue moved here after the configured retries (no reason given).
 */
export async function consumeDeadLetters(batch: MessageBatch<unknown>, env: Env): Promise<void> {
  const letters: DeadLetter[] = batch.messages.map((message) => {
    const body = message.body as Partial<DeadLetter> | null;
    const explicit =
      typeof body === "object" &&
      body !== null &&
      typeof body.reason === "string" &&
      "body" in body;
    return explicit
      ? (body as DeadLetter)
      : {
          reason: "retries exhausted",
          queue: "unknown",
          attempts: message.attempts,
          body: message.body,
          atMs: Date.now(),
        };
  });
  await deadLetterStub(env).record(letters);
  metrics.count("crafting_dead_letters_total", {}, letters.length);
  batch.ackAll();
}
