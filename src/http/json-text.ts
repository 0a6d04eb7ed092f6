/** An answer whose JSON text is already encoded (a proto message's, by the object or the route). */
export function jsonText(
  body: string,
  status = 200,
  headers: Record<string, string> = {},
): Response {
  return new Response(body, {
    status,
    headers: { "Content-Type": "application/json; charset=utf-8", ...headers },
  });
}
