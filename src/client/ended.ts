/**
 * When a watched session or workflow has ended, read from its status as
 * proto3 JSON names it (`SESSION_STATUS_COMPLETED`), by the domain's rule
 * (passed in: this module imports nothing, so plain Node scripts such as
 * `scripts/watch.mjs` can load it as TypeScript source).
 */

/**
 * Whether a status named `name` is one `ended` (the domain's rule: `isFinal`,
 * `workflowStatusEnded`) says nothing follows; false for a name of another
 * kind (without `prefix`) or unknown to the rule.
 */
export function endedAs<Status extends string>(
  prefix: string,
  ended: (status: Status) => boolean,
  name: string | undefined,
): boolean {
  return (
    name?.startsWith(prefix) === true && ended(name.slice(prefix.length).toLowerCase() as Status)
  );
}

/**
 * The reason the server closes an ended stream with (`session completed`,
 * `workflow failed`), from what ended and its status (`COMPLETED`, or the
 * JSON name `SESSION_STATUS_COMPLETED`).
 */
export function endedReason(what: "session" | "workflow", status: string): string {
  return `${what} ${status.replace(/^.*_STATUS_/, "").toLowerCase()}`;
}
