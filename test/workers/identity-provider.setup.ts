/**
 * An identity provider for the workers tests, served on 127.0.0.1 from Node:
 * one ES256 key pair, its public key published as a JWKS, and a count of how
 * often the JWKS was fetched. Tests sign player tokens with the private key.
 */
import { createServer } from "node:http";
import { exportJWK, generateKeyPair, type JWK } from "jose";
import type { TestProject } from "vitest/node";

declare module "vitest" {
  export interface ProvidedContext {
    identityProvider: { jwksUrl: string; fetchesUrl: string; privateJwk: JWK; kid: string };
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const kid = "idp-test-1";
  const { privateKey, publicKey } = await generateKeyPair("ES256", { extractable: true });
  const jwks = JSON.stringify({ keys: [{ ...(await exportJWK(publicKey)), kid, alg: "ES256" }] });
  let fetches = 0;
  const server = createServer((request, response) => {
    if (request.url === "/jwks.json") {
      fetches++;
      response.writeHead(200, { "Content-Type": "application/json" }).end(jwks);
    } else if (request.url === "/fetches") {
      response.writeHead(200, { "Content-Type": "application/json" }).end(String(fetches));
    } else response.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  project.provide("identityProvider", {
    jwksUrl: `http://127.0.0.1:${port}/jwks.json`,
    fetchesUrl: `http://127.0.0.1:${port}/fetches`,
    privateJwk: { ...(await exportJWK(privateKey)), kid, alg: "ES256" },
    kid,
  });
  return () => new Promise<void>((resolve) => server.close(() => resolve()));
}
