/**
 * Which methods a path answers to, from the router's own table: what a
 * request with another method is told (405 with `Allow`, RFC 9110 §15.5.6)
 * instead of "no such route".
 */

/** A route as Hono lists it (`app.routes`): middleware is `ALL`. */
export interface ListedRoute {
  method: string;
  path: string;
}

/**
 * Whether a Hono path pattern (`/v1/sessions/:id/start`, `/rpc/*`) takes
 * `pathname`. A parameter takes any one segment: a constraint written in it
 * (`:id{[0-9]+}`) is not read, which no route of ours writes.
 */
export function patternMatches(pattern: string, pathname: string): boolean {
  // Segment by segment, empty ones included: routing is strict, `/a/` is not `/a`.
  const want = pattern.split("/");
  const got = pathname.split("/");
  for (const [i, part] of want.entries()) {
    if (part === "*") return true;
    const segment = got[i];
    if (segment === undefined) return false;
    if (part.startsWith(":") ? segment === "" : part !== segment) return false;
  }
  return want.length === got.length;
}

/**
 * The methods of the routes that take `pathname` when it was asked with
 * `asked` and no route answered, sorted; HEAD wherever GET is (the router
 * answers HEAD with GET's handler). Empty: no route takes the path (and
 * whenever this reading would list `asked` itself, the router's reading,
 * that nothing takes it, wins).
 */
export function allowedMethods(
  routes: readonly ListedRoute[],
  pathname: string,
  asked: string,
): string[] {
  const methods = new Set<string>();
  for (const { method, path } of routes)
    if (method !== "ALL" && patternMatches(path, pathname)) methods.add(method);
  if (methods.has("GET")) methods.add("HEAD");
  return methods.has(asked) ? [] : [...methods].sort();
}
