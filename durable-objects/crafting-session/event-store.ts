/**
 * A session's bridged events in its own SQLite storage: every event not
 * yet settled (the dedupe set and the input of a re-fold), the base state
 * they fold onto, and the version floor below which events are stale.
 * All writes happen inside the caller's `transactionSync`, with the state.
 */

import { foldEvents, type SessionEvent } from "../../src/domain/events/session-events";
import type { Session } from "../../src/domain/session/session";
import { tableExists } from "../sqlite";

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

/**
 * The floor and the base: written with a session's first events and when
 * events settle, not with every batch — the highest version stored is
 * read back from the events themselves when an instance starts.
 */
const META_KEY = "events_meta";
/** The events table's layout (under `name`). */
const EVENTS_TABLE = (name: string) => `CREATE TABLE ${name} (
  event_id TEXT PRIMARY KEY,
  version INTEGER NOT NULL,
  accepted_at_ms INTEGER NOT NULL,
  body TEXT NOT NULL
) WITHOUT ROWID`;

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
    if (this.#meta === undefined) {
      const meta = this.storage.kv.get<EventMeta>(META_KEY) ?? null;
      // The stored maxVersion is the floor's (set when events settle); above
      // it, the events table says. One scan per instance, of unsettled events.
      if (meta && tableExists(this.storage.sql, "events")) {
        const [row] = this.storage.sql
          .exec<{ v: number | null }>("SELECT MAX(version) AS v FROM events")
          .toArray();
        meta.maxVersion = Math.max(meta.maxVersion, row?.v ?? 0);
      }
      this.#meta = meta;
    }
    return this.#meta;
  }

  /** A transaction that wrote through this store rolled back: read the bookkeeping again. */
  forget(): void {
    this.#meta = undefined;
  }

  /** Writes the floor and the base (and the highest version, known then to be the floor). */
  #putMeta(meta: EventMeta): void {
    this.storage.kv.put(META_KEY, meta);
    this.#meta = meta;
  }

  /**
   * The events table, keyed by event id and nothing else (`WITHOUT ROWID`):
   * an event costs one row written, where a rowid table with a key on
   * `event_id` (this store's earlier layout, moved over here once) costs two.
   */
  #table(): void {
    if (this.#ready) return;
    const { sql } = this.storage;
    const [existing] = sql
      .exec<{ sql: string }>(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'events'",
      )
      .toArray();
    if (!existing) sql.exec(EVENTS_TABLE("events"));
    else if (!/WITHOUT ROWID/i.test(existing.sql)) {
      this.storage.transactionSync(() => {
        sql.exec(EVENTS_TABLE("events_keyed"));
        sql.exec(
          `INSERT INTO events_keyed (event_id, version, accepted_at_ms, body)
           SELECT event_id, version, accepted_at_ms, body FROM events`,
        );
        sql.exec("DROP TABLE events");
        sql.exec("ALTER TABLE events_keyed RENAME TO events");
      });
    }
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
    const known = this.meta();
    this.#table();
    let rows = 0;
    // A session's first events: the floor and the base they fold onto.
    if (!known) {
      this.storage.kv.put(META_KEY, { floor: 0, maxVersion: 0, base });
      rows += 1;
    }
    const meta = known ?? { floor: 0, maxVersion: 0, base };
    for (const event of events) {
      rows += this.storage.sql.exec(
        "INSERT INTO events (event_id, version, accepted_at_ms, body) VALUES (?, ?, ?, ?)",
        event.eventId,
        event.version,
        event.acceptedAtMs,
        JSON.stringify(event),
      ).rowsWritten;
    }
    this.#meta = { ...meta, maxVersion: Math.max(meta.maxVersion, maxVersion) };
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
   * Retention is a day, so an instance looks once a minute at most, and a
   * batch in between opens no transaction for it. Its own transaction.
   */
  expire(nowMs: number, epoch: number): void {
    if (nowMs - this.#expiryCheckedAtMs < EXPIRY_CHECK_INTERVAL_MS) return;
    this.#expiryCheckedAtMs = nowMs;
    try {
      this.storage.transactionSync(() => this.#settleExpired(nowMs, epoch));
    } catch (e: unknown) {
      this.forget();
      throw e;
    }
  }

  #settleExpired(nowMs: number, epoch: number): void {
    const meta = this.meta();
    if (!meta) return;
    this.#table();
    const cutoff = nowMs - EVENT_RETENTION_MS;
    // A scan of the unsettled events, once a minute at most: an index on
    // acceptance would cost a row written with every event instead.
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
