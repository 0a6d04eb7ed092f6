/**
 * Query parameters. A credential in one is refused on every path. On the
 * API (`/v1`, `/udp`) a call to a route that takes none is refused, naming
 * them, as a body's unknown field is: a `?reason=` on a fail, or a
 * `?player_id=` on a create, would otherwise vanish unnoticed. A route
 * that takes some is marked `readsQuery` and reads them with `parseQuery`
 * (src/http/valid.ts), which refuses the rest. Stream upgrades and probes
 * ignore theirs (docs/streams.md, docs/sessions.md).
 */
import type { Context, Next } from "hono";
import { matchedRoutes } from "hono/route";
import { routed } from "../http/allowed-methods";
import { refusal } from "../http/valid";
import { refuseCredentials } from "./auth";

/** Marks a route that reads its query parameters (with `parseQuery`). */
export function readsQuery(_c: Context, next: Next): Promise<void> {
  return next();
}

/**
 * Every request's query parameters, read once and only when it has some
 * (most calls carry none): credentials are refused on every path
 * (`refuseCredentials`), and on the API a call's parameters its route does
 * not read (`readsQuery`), unless it is an upgrade.
 */
export async function checkQuery(c: Context, next: Next): Promise<void> {
  if (!c.req.url.includes("?")) return next();
  const params = new URL(c.req.url).searchParams;
  refuseCredentials(params);
  if (
    params.size > 0 &&
    API_PATH.test(c.req.path) &&
    c.req.header("Upgrade")?.toLowerCase() !== "websocket" &&
    routed(c) && // a path no route takes is a 404 first
    !matchedRoutes(c).some((route) => route.handler === readsQuery)
  ) {
    const rule = "is not a query parameter here (this route takes none)";
    throw refusal([...new Set(params.keys())].map((name) => `${name} ${rule}`));
  }
  return next();
}

/** The API's calls; probes (`/health`, `/metrics`) answer whatever a monitor adds. */
const API_PATH = /^\/(v1|udp)\//;
