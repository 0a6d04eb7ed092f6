/** crafting-service calls against a running server, for end-to-end tests. */
import { serviceToken } from "./tokens";

/** POSTs `body` (JSON, when given) to `baseUrl + path` with a crafting-service token. */
export async function servicePost(
  baseUrl: string,
  path: string,
  body?: unknown,
): Promise<Response> {
  return fetch(`${baseUrl}${path}`, {
    method: "POST",
    headers: {
      Authorization: `Bearer ${await serviceToken()}`,
      "Content-Type": "application/json",
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
}
