import { describe, expect, it } from "vitest";
import { allowedMethods, patternMatches } from "../../src/http/allowed-methods";

describe("patternMatches", () => {
  it("takes literal segments, parameters and a trailing wildcard", () => {
    expect(patternMatches("/v1/sessions/:id/start", "/v1/sessions/s-1/start")).toBe(true);
    expect(patternMatches("/v1/sessions/:id/start", "/v1/sessions/s-1/complete")).toBe(false);
    expect(patternMatches("/v1/sessions/:id", "/v1/sessions/s-1/start")).toBe(false);
    expect(patternMatches("/v1/sessions/:id/start", "/v1/sessions/s-1")).toBe(false);
    expect(patternMatches("/rpc/*", "/rpc/crafting.v1.Svc/Watch")).toBe(true);
    // Routing is strict: a trailing slash is another path, an empty segment no parameter.
    expect(patternMatches("/v1/sessions", "/v1/sessions/")).toBe(false);
    expect(patternMatches("/v1/sessions/:id", "/v1/sessions/")).toBe(false);
  });
});

describe("allowedMethods", () => {
  const routes = [
    { method: "ALL", path: "/v1/sessions/*" },
    { method: "GET", path: "/v1/sessions/:id" },
    { method: "POST", path: "/v1/sessions/:id/start" },
    { method: "POST", path: "/v1/sessions" },
    { method: "GET", path: "/v1/sessions" },
  ];

  it("lists the methods of every route taking the path, HEAD with GET, middleware aside", () => {
    expect(allowedMethods(routes, "/v1/sessions/s-1", "DELETE")).toEqual(["GET", "HEAD"]);
    expect(allowedMethods(routes, "/v1/sessions/s-1/start", "GET")).toEqual(["POST"]);
    expect(allowedMethods(routes, "/v1/sessions", "PUT")).toEqual(["GET", "HEAD", "POST"]);
  });

  it("is empty for a path only middleware takes", () => {
    expect(allowedMethods(routes, "/v1/sessions/s-1/explode", "POST")).toEqual([]);
    expect(allowedMethods(routes, "/nowhere", "GET")).toEqual([]);
  });

  it("is empty when it would list the method asked: the router found no route for it", () => {
    expect(allowedMethods(routes, "/v1/sessions/s-1", "GET")).toEqual([]);
    expect(allowedMethods(routes, "/v1/sessions/s-1", "HEAD")).toEqual([]);
  });
});
