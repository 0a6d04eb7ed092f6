/**
 * Query parameters on the API (`/v1`, `/udp`): a call to a route that takes
 * none is refused, naming them, as a body's unknown field is — a `?reason=`
 * on a fail, or a `?player_id=` on a create, would otherwise vanish
 * unnoticed. A route that takes some is marked `readsQuery` and reads them
 * with `parseQuery` (src/http/valid.ts), which refuses the rest. Stream
 * upgrades ignore theirs (docs/streams.md).
 */
import type { Context, Next } from "hono";
import { matchedRoutes } from "hono/route";
import { routed } from "../http/allowed-methods";
import { refusal } from "../http/valid";

/** Marks a route that reads its query parameters (with `parseQuery`). */
export function readsQuery(_c: Context, next: Next): Promise<void> {
  return next();
}

/** Refuses a call's query parameters unless its route reads them (`readsQuery`), or it is an upgrade. */
export async function refuseUnreadQuery(c: Context, next: Next): Promise<void> {
  // Most calls carry none: the URL is parsed only when it has a query.
  const params = c.req.url.includes("?") ? new URL(c.req.url).searchParams : null;
  if (
    params &&
    params.size > 0 &&
    c.req.header("Upgrade")?.toLowerCase() !== "websocket" &&
    routed(c) && // a path no route takes is a 404 first
    !matchedRoutes(c).some((route) => route.handler === readsQuery)
  ) {
    const rule = "is not a query parameter here (this route takes none)";
    throw refusal([...new Set(params.keys())].map((name) => `${name} ${rule}`));
  }
  await next();
}
