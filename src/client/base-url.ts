/** The service's base URL, as every client here takes it (views, the sync channel, the ingest client). */

/**
 * The service's base URL as the clients use it: `http(s)` for requests,
 * `ws(s)` for streams (a path prefix kept). Any other is said at once, as a
 * `TypeError`: `localhost:8787` would otherwise fail every attempt.
 */
export function serviceBases(baseUrl: string): { http: string; ws: string } {
  const scheme = /^(https?|wss?):\/\/[^/]/i.exec(baseUrl)?.[1]?.toLowerCase();
  if (!scheme)
    throw new TypeError(
      `baseUrl must be the service's http(s) URL, such as http://127.0.0.1:8787 (got ${JSON.stringify(baseUrl)})`,
    );
  const rest = baseUrl.slice(scheme.length).replace(/\/$/, "");
  const secure = scheme === "https" || scheme === "wss";
  return { http: `http${secure ? "s" : ""}${rest}`, ws: `ws${secure ? "s" : ""}${rest}` };
}
