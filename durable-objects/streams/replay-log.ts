/**
 * The frames a stream may have missed: the last `limit` changes of what an
 * object streams, by seq, so a resuming client is replayed exactly what it
 * missed (stream-hub.ts). Appends belong in the same transaction as the
 * change they record.
 *
 * Kept in the object's key-value store (one key per seq, ordered by a
 * zero-padded seq), beside the state it logs, not in a table of its own:
 * every table takes at least one 4 KB database page, and an object whose
 * state is in the key-value store (a player, a workflow) needs no second
 * one: a fresh player takes two pages, not three (docs/benchmarks.md).
 */
import { fromBinary, toBinary } from "@bufbuild/protobuf";
import { type ServerFrame, ServerFrameSchema } from "../../src/gen/crafting/v1/frames_pb";
import { tableExists } from "../sqlite";

/** Digits of a seq in its key: keys sort as their seqs do up to 10^15. */
const SEQ_DIGITS = 15;

/** One object's replay log, under keys `<name>:<seq>`. */
export class ReplayLog {
  /** Whether a log kept in the earlier layout (a table named `name`) was looked for. */
  #checked = false;
  readonly #prefix: string;

  constructor(
    private readonly storage: DurableObjectStorage,
    private readonly name: string,
    private readonly limit: number,
  ) {
    this.#prefix = `${name}:`;
  }

  /** Records the frame of change `seq` and forgets what falls out of the log. Call inside `transactionSync`. */
  append(seq: number, frame: ServerFrame): void {
    this.#moveEarlierLayout();
    const { kv } = this.storage;
    kv.put(this.#key(seq), toBinary(ServerFrameSchema, frame));
    this.#forgetThrough(seq - this.limit);
  }

  /** The frames after `seq`, in order, as far as the log reaches. */
  after(seq: number): ServerFrame[] {
    this.#moveEarlierLayout();
    const frames: ServerFrame[] = [];
    for (const [, bytes] of this.storage.kv.list<Uint8Array>({
      prefix: this.#prefix,
      start: this.#key(Math.max(0, seq + 1)),
    }))
      frames.push(fromBinary(ServerFrameSchema, bytes));
    return frames;
  }

  #key(seq: number): string {
    return this.#prefix + String(seq).padStart(SEQ_DIGITS, "0");
  }

  /** Deletes the frames of seqs up to `seq` (usually one: the frame that just fell out). */
  #forgetThrough(seq: number): void {
    if (seq < 0) return;
    const { kv } = this.storage;
    const old = [...kv.list({ prefix: this.#prefix, end: this.#key(seq + 1) })];
    for (const [key] of old) kv.delete(key);
  }

  /**
   * Moves a log kept in a table of its own (before session 13) into the
   * key-value store and drops the table; once per instance (a read when
   * there is none). Each step can be redone: cut short, the next instance
   * moves the same frames again.
   */
  #moveEarlierLayout(): void {
    if (this.#checked) return;
    const { sql, kv } = this.storage;
    if (tableExists(sql, this.name)) {
      const rows = sql
        .exec<{ seq: number; frame: ArrayBuffer }>(`SELECT seq, frame FROM ${this.name}`)
        .toArray();
      for (const row of rows) kv.put(this.#key(row.seq), new Uint8Array(row.frame));
      sql.exec(`DROP TABLE ${this.name}`);
    }
    this.#checked = true;
  }
}
