/** Small helpers over a Durable Object's SQLite storage. */

/** Whether a table exists (a read: probing never creates anything). */
export function tableExists(sql: SqlStorage, name: string): boolean {
  return (
    sql.exec("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", name).toArray()
      .length > 0
  );
}
