/**
 * A session's state and its replay log in one SQLite table, written one row
 * per change: row `seq % limit` holds the state after change `seq` and the
 * frame clients were sent for it. The ring keeps the last `limit` changes for
 * resuming clients without a delete per change, and the newest row is the
 * state — so a progress update costs one row written (what the platform
 * bills), where a state row, a log row and a trimming delete cost three.
 * https://developers.cloudflare.com/durable-objects/platform/pricing/#sqlite-storage-backend
 */
import { fromBinary, toBinary } from "@bufbuild/protobuf";
import type { Session } from "../../src/domain/session/session";
import { type ServerFrame, ServerFrameSchema } from "../../src/gen/crafting/v1/frames_pb";
import { tableExists } from "../sqlite";

/** The layout before this store: the state in a KV row, the log in its own table. */
const LEGACY = { stateKey: "state", table: "replay_log" } as const;

/** One session object's state and replay log. */
export class SessionStore {
  /** Whether the table is known to exist (reads of a session never created write nothing). */
  #ready = false;

  constructor(
    private readonly storage: DurableObjectStorage,
    private readonly limit: number,
  ) {}

  /** The stored session, or null (never created). Moves a legacy layout over first. */
  load(): Session | null {
    if (!this.#exists()) {
      // Only a session without this layout's table can hold the legacy one.
      const legacy = this.storage.kv.get<Session>(LEGACY.stateKey);
      if (!legacy) return null;
      this.storage.transactionSync(() => this.#migrate(legacy));
    }
    const [row] = this.storage.sql
      .exec<{ state: string }>(
        "SELECT state FROM session_log WHERE state IS NOT NULL ORDER BY seq DESC LIMIT 1",
      )
      .toArray();
    return row ? (JSON.parse(row.state) as Session) : null;
  }

  /**
   * Stores the session after a change, and the frame sent for it (none for a
   * creation, nor for a change that took no new seq: that row keeps its
   * frame). Returns the rows written: one. With other writes, call inside
   * `transactionSync`.
   */
  save(state: Session, frame: ServerFrame | null): number {
    if (!this.#exists()) this.#create();
    return this.storage.sql.exec(
      `INSERT INTO session_log (slot, seq, state, frame) VALUES (?, ?, ?, ?)
       ON CONFLICT (slot) DO UPDATE SET
         frame = CASE WHEN excluded.frame IS NULL AND seq = excluded.seq THEN frame ELSE excluded.frame END,
         seq = excluded.seq,
         state = excluded.state`,
      state.seq % this.limit,
      state.seq,
      JSON.stringify(state),
      frame ? toBinary(ServerFrameSchema, frame) : null,
    ).rowsWritten;
  }

  /** The frames after `seq`, in order, as far as the log reaches. */
  after(seq: number): ServerFrame[] {
    if (!this.#exists()) return [];
    return this.storage.sql
      .exec<{ frame: ArrayBuffer }>(
        "SELECT frame FROM session_log WHERE seq > ? AND frame IS NOT NULL ORDER BY seq",
        seq,
      )
      .toArray()
      .map((row) => fromBinary(ServerFrameSchema, new Uint8Array(row.frame)));
  }

  #exists(): boolean {
    this.#ready ||= tableExists(this.storage.sql, "session_log");
    return this.#ready;
  }

  #create(): void {
    // Not marked ready here: a rolled-back transaction takes the table with it.
    if (this.#ready) return;
    this.storage.sql.exec(
      `CREATE TABLE IF NOT EXISTS session_log (
         slot INTEGER PRIMARY KEY,
         seq INTEGER NOT NULL,
         state TEXT,
         frame BLOB
       )`,
    );
  }

  /** Sessions stored before this layout: their log rows move into the ring, the state onto the newest. */
  #migrate(state: Session): void {
    this.#create();
    const { sql } = this.storage;
    if (tableExists(sql, LEGACY.table)) {
      sql.exec(
        `INSERT OR REPLACE INTO session_log (slot, seq, state, frame)
         SELECT seq % ?, seq, NULL, frame FROM ${LEGACY.table} WHERE seq > ?`,
        this.limit,
        state.seq - this.limit,
      );
      sql.exec(`DROP TABLE ${LEGACY.table}`);
    }
    // Sessions stored before materials existed require none.
    const current = { ...state, materials: state.materials ?? [] };
    const [row] = sql
      .exec<{ frame: ArrayBuffer | null }>(
        "SELECT frame FROM session_log WHERE slot = ? AND seq = ?",
        current.seq % this.limit,
        current.seq,
      )
      .toArray();
    sql.exec(
      "INSERT OR REPLACE INTO session_log (slot, seq, state, frame) VALUES (?, ?, ?, ?)",
      current.seq % this.limit,
      current.seq,
      JSON.stringify(current),
      row?.frame ?? null,
    );
    this.storage.kv.delete(LEGACY.stateKey);
  }
}
