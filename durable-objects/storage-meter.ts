/**
 * What the platform bills a Durable Object for, counted where it happens:
 * each activation (the constructor runs when an object starts or wakes from
 * hibernation) and the rows its storage reads and writes — SQL statements
 * (the cursor's `rowsRead`/`rowsWritten`), KV reads and writes (a row each)
 * and `setAlarm`/`deleteAlarm` (a row written each). Call `meterObject` first
 * thing in a constructor; the counts reach `/metrics` with the isolate's
 * next push. The metrics aggregator is not metered: it is the observer, and
 * metering it would make every push count (and push) again.
 */
import { metrics } from "../src/metrics/push";

/** Which object the counts are for (a label value). */
export type MeteredObject = "session" | "player" | "workflow" | "dead_letters";

const METERED = Symbol("metered");

export function meterObject(ctx: DurableObjectState, object: MeteredObject): void {
  metrics.count("crafting_object_activations_total", { object });
  const storage = ctx.storage as DurableObjectStorage & { [METERED]?: true };
  if (storage[METERED]) return;
  storage[METERED] = true;
  const read = (rows: number) => {
    if (rows > 0) metrics.count("crafting_storage_rows_read_total", { object }, rows);
  };
  const written = (rows: number) => {
    if (rows > 0) metrics.count("crafting_storage_rows_written_total", { object }, rows);
  };

  const sql = storage.sql;
  const exec = sql.exec.bind(sql);
  // Callers read their cursor at once (toArray, one, rowsWritten): count
  // after that, every cursor of the turn in one microtask.
  let cursors: SqlStorageCursor<Record<string, SqlStorageValue>>[] = [];
  const countCursors = () => {
    const done = cursors;
    cursors = [];
    let rowsRead = 0;
    let rowsWritten = 0;
    for (const cursor of done) {
      rowsRead += cursor.rowsRead;
      rowsWritten += cursor.rowsWritten;
    }
    read(rowsRead);
    written(rowsWritten);
  };
  sql.exec = ((query: string, ...bindings: unknown[]) => {
    const cursor = exec(query, ...bindings);
    if (cursors.push(cursor) === 1) queueMicrotask(countCursors);
    return cursor;
  }) as typeof sql.exec;

  const kv = storage.kv;
  const get = kv.get.bind(kv);
  const put = kv.put.bind(kv);
  const remove = kv.delete.bind(kv);
  kv.get = ((key: string) => {
    read(1);
    return get(key);
  }) as typeof kv.get;
  kv.put = ((key: string, value: unknown) => {
    written(1);
    return put(key, value);
  }) as typeof kv.put;
  kv.delete = ((key: string) => {
    written(1);
    return remove(key);
  }) as typeof kv.delete;

  const setAlarm = storage.setAlarm.bind(storage);
  const deleteAlarm = storage.deleteAlarm.bind(storage);
  storage.setAlarm = ((time: number | Date, options?: DurableObjectSetAlarmOptions) => {
    written(1);
    return setAlarm(time, options);
  }) as typeof storage.setAlarm;
  storage.deleteAlarm = ((options?: DurableObjectSetAlarmOptions) => {
    written(1);
    return deleteAlarm(options);
  }) as typeof storage.deleteAlarm;
}
