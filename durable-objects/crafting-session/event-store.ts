/**
 * A session's bridged events in its own SQLite storage: every event not
 * yet settled (the dedupe set and the input of a re-fold), the base state
 * they fold onto, and the version floor below which events are stale.
 * All writes happen inside the caller's `transactionSync`, with the state.
 */

import { foldEvents, type SessionEvent } from "../../src/domain/events/session-events";
import type { Session } from "../../src/domain/session/session";

/** How long event ids are remembered for dedupe, and events kept for re-folds. */
export const EVENT_RETENTION_MS = 24 * 60 * 60 * 1000;

/** Bookkeeping of the event log. */
export interface EventMeta {
  /** Events at or below this version are settled: a late one is stale. */
  floor: number;
  /** Highest version stored. */
  maxVersion: number;
  /** The state events fold onto (the session before its first event, or after the last HTTP command). */
  base: Session | null;
}

const META_KEY = "events_meta";
/** How often an instance looks for events past their retention. */
const EXPIRY_CHECK_INTERVAL_MS = 60_000;

/** The event log of one session object. */
export class EventStore {
  #ready = false;
  /** The bookkeeping as last read or written (undefined: not read yet); every HTTP command asks. */
  #meta: EventMeta | null | undefined;
  /** When this instance last looked for expired events. */
  #expiryCheckedAtMs = Number.NEGATIVE_INFINITY;

  constructor(private readonly storage: DurableObjectStorage) {}

  /** The log's bookkeeping, or null when this session never received an event. */
  meta(): EventMeta | null {
    if (this.#meta === undefined) this.#meta = this.storage.kv.get<EventMeta>(META_KEY) ?? null;
    return this.#meta;
  }

  /** A transaction that wrote through this store rolled back: read the bookkeeping again. */
  forget(): void {
    this.#meta = undefined;
  }

  #putMeta(meta: EventMeta): void {
    this.storage.kv.put(META_KEY, meta);
    this.#meta = meta;
  }

  #table(): void {
    if (this.#ready) return;
    this.storage.sql.exec(
      `CREATE TABLE IF NOT EXISTS events (
         event_id TEXT PRIMARY KEY,
         version INTEGER NOT NULL,
         accepted_at_ms INTEGER NOT NULL,
         body TEXT NOT NULL
       )`,
    );
    // `expire` runs once a minute at most: find the expired rows without scanning the table.
    this.storage.sql.exec(
      "CREATE INDEX IF NOT EXISTS events_by_acceptance ON events (accepted_at_ms)",
    );
    this.#ready = true;
  }

  /** Whether an event with this id is stored. */
  has(eventId: string): boolean {
    this.#table();
    return (
      this.storage.sql.exec("SELECT 1 FROM events WHERE event_id = ?", eventId).toArray().length > 0
    );
  }

  /** Every stored (unsettled) event. */
  all(): SessionEvent[] {
    this.#table();
    return this.storage.sql
      .exec<{ body: string }>("SELECT body FROM events")
      .toArray()
      .map((row) => JSON.parse(row.body) as SessionEvent);
  }

  /**
   * Stores new events and raises the highest version stored; a session's
   * first events fold onto `base` (the state before them). Returns the rows
   * written. Call inside `transactionSync`.
   */
  save(events: readonly SessionEvent[], maxVersion: number, base: Session | null): number {
    const meta = this.meta() ?? { floor: 0, maxVersion: 0, base };
    this.#table();
    let rows = 1; // the bookkeeping
    for (const event of events) {
      rows += this.storage.sql.exec(
        "INSERT INTO events (event_id, version, accepted_at_ms, body) VALUES (?, ?, ?, ?)",
        event.eventId,
        event.version,
        event.acceptedAtMs,
        JSON.stringify(event),
      ).rowsWritten;
    }
    this.#putMeta({ ...meta, maxVersion: Math.max(meta.maxVersion, maxVersion) });
    return rows;
  }

  /**
   * An HTTP command changed the session: it becomes the new base and every
   * stored event is settled under it. Call inside `transactionSync`.
   */
  settleUnder(state: Session): number {
    const meta = this.meta();
    if (!meta) return 0;
    this.#table();
    const { rowsWritten } = this.storage.sql.exec("DELETE FROM events");
    this.#putMeta({
      floor: meta.maxVersion,
      maxVersion: meta.maxVersion,
      base: state,
    });
    return rowsWritten + 1;
  }

  /**
   * Settles events accepted longer than the retention ago: they are folded
   * into the base, the floor rises to their highest version, and their rows
   * (and ids) are dropped. A copy delivered later is stale by the floor.
   * Call inside `transactionSync`.
   */
  expire(nowMs: number, epoch: number): void {
    // Retention is a day: looking once a minute (per instance) is as good as every batch.
    if (nowMs - this.#expiryCheckedAtMs < EXPIRY_CHECK_INTERVAL_MS) return;
    this.#expiryCheckedAtMs = nowMs;
    const meta = this.meta();
    if (!meta) return;
    this.#table();
    const cutoff = nowMs - EVENT_RETENTION_MS;
    const [row] = this.storage.sql
      .exec<{ v: number | null }>(
        "SELECT MAX(version) AS v FROM events WHERE accepted_at_ms < ?",
        cutoff,
      )
      .toArray();
    const settled = row?.v ?? null;
    if (settled === null) return;
    const old = this.all().filter((event) => event.version <= settled);
    const base = foldEvents(meta.base, old, epoch).state;
    this.storage.sql.exec("DELETE FROM events WHERE version <= ?", settled);
    this.#putMeta({ ...meta, floor: Math.max(meta.floor, settled), base });
  }
}
