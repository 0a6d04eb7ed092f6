/**
 * The dead-letter log: every event the consumer could not apply, with its
 * reason, kept for operators (14 days, at most 10,000) and listed at
 * `GET /v1/events/dead-letters`. Dead letters are rare, so one object holds
 * them all.
 */

import { DurableObject } from "cloudflare:workers";
import { DEAD_LETTER_RETENTION, type DeadLetter } from "../../src/domain/events/dead-letter";
import { meterObject } from "../storage-meter";

/** Durable Object holding the dead-letter log. */
export class DeadLetters extends DurableObject<Env> {
  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    meterObject(ctx, "dead_letters");
    ctx.storage.sql.exec(
      `CREATE TABLE IF NOT EXISTS dead_letters (
         id INTEGER PRIMARY KEY AUTOINCREMENT,
         at_ms INTEGER NOT NULL,
         letter TEXT NOT NULL
       )`,
    );
  }

  /** Records letters and trims the log to its retention. */
  async record(letters: DeadLetter[]): Promise<void> {
    const { sql } = this.ctx.storage;
    this.ctx.storage.transactionSync(() => {
      for (const letter of letters) {
        sql.exec(
          "INSERT INTO dead_letters (at_ms, letter) VALUES (?, ?)",
          letter.atMs,
          JSON.stringify(letter),
        );
      }
      sql.exec(
        "DELETE FROM dead_letters WHERE at_ms < ?",
        Date.now() - DEAD_LETTER_RETENTION.maxAgeMs,
      );
      sql.exec(
        "DELETE FROM dead_letters WHERE id <= (SELECT MAX(id) FROM dead_letters) - ?",
        DEAD_LETTER_RETENTION.maxCount,
      );
    });
  }

  /** The kept letters among `ids`, each with its `id` (ids not kept are left out). */
  async letters(ids: readonly number[]): Promise<(DeadLetter & { id: number })[]> {
    const { sql } = this.ctx.storage;
    return sql
      .exec<{ id: number; letter: string }>(
        `SELECT id, letter FROM dead_letters WHERE id IN (${placeholders(ids)}) ORDER BY id`,
        ...ids,
      )
      .toArray()
      .map((row) => ({ id: row.id, ...(JSON.parse(row.letter) as DeadLetter) }));
  }

  /** Forgets the letters `ids` (sent again, or dealt with). */
  async forget(ids: readonly number[]): Promise<void> {
    if (ids.length === 0) return;
    this.ctx.storage.sql.exec(
      `DELETE FROM dead_letters WHERE id IN (${placeholders(ids)})`,
      ...ids,
    );
  }

  /**
   * The newest letters first, each with its `id`, and how many are kept: at
   * most `limit`, older than the letter `before` when given. `nextBefore`
   * is where the next page starts (null on the last page), so every kept
   * letter can be read.
   */
  async list(
    limit: number,
    before: number | null = null,
  ): Promise<{
    count: number;
    letters: (DeadLetter & { id: number })[];
    nextBefore: number | null;
  }> {
    const { sql } = this.ctx.storage;
    const count = sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM dead_letters").one().n;
    const rows = sql
      .exec<{ id: number; letter: string }>(
        "SELECT id, letter FROM dead_letters WHERE id < ? ORDER BY id DESC LIMIT ?",
        before ?? Number.MAX_SAFE_INTEGER,
        limit + 1,
      )
      .toArray();
    const letters = rows
      .slice(0, limit)
      .map((row) => ({ id: row.id, ...(JSON.parse(row.letter) as DeadLetter) }));
    const nextBefore = rows.length > limit ? (letters.at(-1)?.id ?? null) : null;
    return { count, letters, nextBefore };
  }
}

/** `?, ?, ?`: one bound parameter per id. */
const placeholders = (ids: readonly number[]) => ids.map(() => "?").join(", ");
