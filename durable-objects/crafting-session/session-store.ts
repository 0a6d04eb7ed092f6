/**
 * A session's state and its replay log in one SQLite table, written one row
 * per change (what the platform bills). The log is kept in pages of
 * `PER_PAGE` consecutive seqs: a change rewrites its page's row, appending
 * the frame clients were sent for it and replacing the page's state with
 * the state after it. So the newest page holds the state, the pages before
 * it hold the frames a resuming client may need, and only one state per
 * page is on disk: a session past 1,000 changes takes 92 KB, where a state
 * in every change's row took 512 KB (docs/benchmarks.md, session 11). The
 * pages are a ring of slots, so trimming the log costs no delete.
 * https://developers.cloudflare.com/durable-objects/platform/pricing/#sqlite-storage-backend
 */
import { fromBinary, toBinary } from "@bufbuild/protobuf";
import type { Session } from "../../src/domain/session/session";
import { type ServerFrame, ServerFrameSchema } from "../../src/gen/crafting/v1/frames_pb";
import { tableExists } from "../sqlite";

/** Consecutive seqs per page: a page's row stays within one 4 KB database page. */
export const PER_PAGE = 16;

const TABLE = "session_pages";
/** Earlier layouts, moved over on load: one row per seq (state in each), and before it the state in KV with a log table. */
const EARLIER = { ring: "session_log", stateKey: "state", table: "replay_log" } as const;

/** One session object's state and replay log. */
export class SessionStore {
  /** Whether the table is known to exist (reads of a session never created write nothing). */
  #ready = false;
  readonly #slots: number;

  /** Keeps the frames of the last `limit` seqs for replay. */
  constructor(
    private readonly storage: DurableObjectStorage,
    private readonly limit: number,
  ) {
    // The last `limit` seqs span at most this many pages.
    this.#slots = Math.ceil(limit / PER_PAGE) + 1;
  }

  /** The stored session, or null (never created). Moves an earlier layout over first. */
  load(): Session | null {
    if (!this.#exists() && !this.#migrate()) return null;
    const [row] = this.storage.sql
      .exec<{ state: string }>(
        `SELECT state FROM ${TABLE} WHERE state IS NOT NULL ORDER BY seq DESC LIMIT 1`,
      )
      .toArray();
    return row ? (JSON.parse(row.state) as Session) : null;
  }

  /**
   * Stores the session after a change, and the frame sent for it (none for a
   * creation, nor for a change that took no new seq: its page keeps its
   * frames). Returns the rows written: one. With other writes, call inside
   * `transactionSync`.
   */
  save(state: Session, frame: ServerFrame | null): number {
    if (!this.#exists()) this.#create();
    const frames = frame ? entry(toBinary(ServerFrameSchema, frame)) : null;
    return this.#write(state.seq, JSON.stringify(state), frames);
  }

  /** The frames after `seq`, in order, as far as the log reaches (the last `limit` seqs). */
  after(seq: number): ServerFrame[] {
    if (!this.#exists()) return [];
    const rows = this.storage.sql
      .exec<{ seq: number; frames: ArrayBuffer | null }>(
        `SELECT seq, frames FROM ${TABLE} WHERE seq > ? ORDER BY page`,
        seq,
      )
      .toArray();
    const newest = rows.reduce((max, row) => Math.max(max, row.seq), 0);
    const from = Math.max(seq, newest - this.limit);
    // A seq stored twice (restated with a frame) counts once: the later entry.
    const bySeq = new Map<number, ServerFrame>();
    for (const row of rows) {
      if (!row.frames) continue;
      for (const bytes of entries(new Uint8Array(row.frames))) {
        const frame = fromBinary(ServerFrameSchema, bytes);
        if (frame.seq > from) bySeq.set(frame.seq, frame);
      }
    }
    return [...bySeq.values()].sort((a, b) => a.seq - b.seq);
  }

  /**
   * One upsert into the page of `seq`: a new page replaces the one its slot
   * held; the same page gains the frame (and the state, when given).
   */
  #write(seq: number, state: string | null, frames: Uint8Array | null): number {
    const page = Math.floor(seq / PER_PAGE);
    return this.storage.sql.exec(
      `INSERT INTO ${TABLE} (slot, page, seq, state, frames) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (slot) DO UPDATE SET
         frames = CASE
           WHEN page <> excluded.page THEN excluded.frames
           WHEN excluded.frames IS NULL THEN frames
           ELSE CAST(coalesce(frames, X'') || excluded.frames AS BLOB)
         END,
         page = excluded.page,
         seq = max(CASE WHEN page = excluded.page THEN seq ELSE 0 END, excluded.seq),
         state = coalesce(excluded.state, CASE WHEN page = excluded.page THEN state END)`,
      page % this.#slots,
      page,
      seq,
      state,
      frames,
    ).rowsWritten;
  }

  #exists(): boolean {
    this.#ready ||= tableExists(this.storage.sql, TABLE);
    return this.#ready;
  }

  #create(): void {
    // Not marked ready here: a rolled-back transaction takes the table with it.
    if (this.#ready) return;
    this.storage.sql.exec(
      `CREATE TABLE IF NOT EXISTS ${TABLE} (
         slot INTEGER PRIMARY KEY,
         page INTEGER NOT NULL,
         seq INTEGER NOT NULL,
         state TEXT,
         frames BLOB
       )`,
    );
  }

  /**
   * Moves a session stored in an earlier layout into the pages, in one
   * transaction: its frames (the last `limit` seqs), then its state on the
   * newest page. False when there is none (the session was never created).
   */
  #migrate(): boolean {
    const { sql, kv } = this.storage;
    let state: Session | null = null;
    let frames: { seq: number; frame: ArrayBuffer }[] = [];
    const ring = tableExists(sql, EARLIER.ring);
    const legacyTable = !ring && tableExists(sql, EARLIER.table);
    if (ring) {
      const [newest] = sql
        .exec<{ state: string }>(
          `SELECT state FROM ${EARLIER.ring} WHERE state IS NOT NULL ORDER BY seq DESC LIMIT 1`,
        )
        .toArray();
      if (newest) state = JSON.parse(newest.state) as Session;
      frames = sql
        .exec<{ seq: number; frame: ArrayBuffer }>(
          `SELECT seq, frame FROM ${EARLIER.ring} WHERE frame IS NOT NULL ORDER BY seq`,
        )
        .toArray();
    } else {
      const legacy = kv.get<Session>(EARLIER.stateKey);
      if (!legacy) return false;
      // Sessions stored before materials existed require none.
      state = { ...legacy, materials: legacy.materials ?? [] };
      if (legacyTable)
        frames = sql
          .exec<{ seq: number; frame: ArrayBuffer }>(
            `SELECT seq, frame FROM ${EARLIER.table} ORDER BY seq`,
          )
          .toArray();
    }
    if (!state) return false;
    const current = state;
    this.storage.transactionSync(() => {
      this.#create();
      for (const { seq, frame } of frames)
        if (seq > current.seq - this.limit && seq <= current.seq)
          this.#write(seq, null, entry(new Uint8Array(frame)));
      this.#write(current.seq, JSON.stringify(current), null);
      if (ring) {
        sql.exec(`DROP TABLE ${EARLIER.ring}`);
        return;
      }
      if (legacyTable) sql.exec(`DROP TABLE ${EARLIER.table}`);
      kv.delete(EARLIER.stateKey);
    });
    return true;
  }
}

/** A frame as stored in a page: its length (4 bytes, big-endian), then its bytes. */
function entry(bytes: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + bytes.byteLength);
  new DataView(out.buffer).setUint32(0, bytes.byteLength);
  out.set(bytes, 4);
  return out;
}

/** The frames of a page, in the order they were appended. */
function* entries(page: Uint8Array): Generator<Uint8Array> {
  const view = new DataView(page.buffer, page.byteOffset, page.byteLength);
  for (let at = 0; at + 4 <= page.byteLength; ) {
    const length = view.getUint32(at);
    yield page.subarray(at + 4, at + 4 + length);
    at += 4 + length;
  }
}
