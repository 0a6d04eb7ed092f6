/**
 * The frames a stream may have missed: the last `limit` changes of what an
 * object streams, by seq, in the object's SQLite storage, so a resuming
 * client is replayed exactly what it missed (stream-hub.ts). Appends belong
 * in the same transaction as the change they record.
 */
import { fromBinary, toBinary } from "@bufbuild/protobuf";
import { type ServerFrame, ServerFrameSchema } from "../../src/gen/crafting/v1/frames_pb";
import { tableExists } from "../sqlite";

/** One object's replay log, in its own table. */
export class ReplayLog {
  /** Whether the table is known to exist (it is created by the first append, so reads write nothing). */
  #ready = false;

  constructor(
    private readonly storage: DurableObjectStorage,
    private readonly table: string,
    private readonly limit: number,
  ) {}

  #exists(): boolean {
    this.#ready ||= tableExists(this.storage.sql, this.table);
    return this.#ready;
  }

  /** Creates the table if need be. Call inside `transactionSync`. */
  prepare(): void {
    // Not marked ready here: a rolled-back transaction takes the table with it.
    if (!this.#ready) {
      this.storage.sql.exec(
        `CREATE TABLE IF NOT EXISTS ${this.table} (seq INTEGER PRIMARY KEY, frame BLOB NOT NULL)`,
      );
    }
  }

  /** Records the frame of change `seq` and forgets what falls out of the log. Call inside `transactionSync`. */
  append(seq: number, frame: ServerFrame): void {
    this.prepare();
    const { sql } = this.storage;
    sql.exec(
      `INSERT INTO ${this.table} (seq, frame) VALUES (?, ?)`,
      seq,
      toBinary(ServerFrameSchema, frame),
    );
    sql.exec(`DELETE FROM ${this.table} WHERE seq <= ?`, seq - this.limit);
  }

  /** The frames after `seq`, in order, as far as the log reaches. */
  after(seq: number): ServerFrame[] {
    if (!this.#exists()) return [];
    return this.storage.sql
      .exec<{ frame: ArrayBuffer }>(
        `SELECT frame FROM ${this.table} WHERE seq > ? ORDER BY seq`,
        seq,
      )
      .toArray()
      .map((row) => fromBinary(ServerFrameSchema, new Uint8Array(row.frame)));
  }
}
