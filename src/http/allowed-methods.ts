/**
 * Which methods a path answers to, asked of the router itself: what a
 * request with another method is told (405 with `Allow`, RFC 9110 §15.5.6)
 * instead of "no such route". The router's own matching (strict paths,
 * parameters, wildcards) decides, so the answer cannot drift from routing.
 */
import type { Context } from "hono";
import { matchedRoutes } from "hono/route";
import { METHOD_NAME_ALL, METHODS, type Router } from "hono/router";
import type { RouterRoute } from "hono/types";

/** Whether a route (middleware aside) takes the request. */
export function routed(c: Context): boolean {
  return matchedRoutes(c).some((route) => route.method !== METHOD_NAME_ALL);
}

/** The methods the router knows, as requests spell them. */
const PROBED = METHODS.map((method) => method.toUpperCase());

/**
 * The methods of the routes (middleware aside) that take `path`, sorted;
 * HEAD wherever GET is (Hono answers HEAD with GET's routes). Empty: no
 * route takes the path, or one of the method `asked` does (and answered
 * nothing): either way the path is not found.
 */
export function allowedMethods(
  router: Router<[unknown, RouterRoute]>,
  path: string,
  asked: string,
): string[] {
  const methods = routedMethods(router, path);
  return methods.includes(asked) ? [] : methods.sort();
}

/** The methods of the routes (middleware aside) that take `path`, HEAD wherever GET is. */
function routedMethods(router: Router<[unknown, RouterRoute]>, path: string): string[] {
  const methods = PROBED.filter((method) =>
    router.match(method, path)[0].some(([[, route]]) => route.method !== METHOD_NAME_ALL),
  );
  if (methods.includes("GET")) methods.push("HEAD");
  return methods;
}

/**
 * The path a caller probably meant when `path` is not routed only for its
 * slashes — a trailing one (`/v1/sessions/`) or doubled ones
 * (`//v1/sessions`) — or for the case of the routes' own words
 * (`/V1/Sessions/Demo-1`: the words of `routes`' paths, never an id), and a
 * route takes it without them; null otherwise. Routing stays strict: this
 * only names the path in the 404.
 */
export function meantPath(
  router: Router<[unknown, RouterRoute]>,
  path: string,
  routes: readonly { path: string }[] = [],
): string | null {
  const words = new Set(routes.flatMap((route) => route.path.split("/")));
  const tidy = path
    .replace(/\/{2,}/g, "/")
    .replace(/(.)\/+$/, "$1")
    .split("/")
    .map((segment) => (words.has(segment.toLowerCase()) ? segment.toLowerCase() : segment))
    .join("/");
  if (tidy === path) return null;
  return routedMethods(router, tidy).length > 0 ? tidy : null;
}
