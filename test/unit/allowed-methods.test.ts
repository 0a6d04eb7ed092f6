import { describe, expect, it } from "vitest";
import { allowedMethods, patternMatches } from "../../src/http/allowed-methods";

describe("patternMatches", () => {
  it("takes literal segments, parameters and a trailing wildcard", () => {
    expect(patternMatches("/v1/sessions/:id/start", "/v1/sessions/s-1/start")).toBe(true);
    expect(patternMatches("/v1/sessions/:id/start", "/v1/sessions/s-1/complete")).toBe(false);
    expect(patternMatches("/v1/sessions/:id", "/v1/sessions/s-1/start")).toBe(false);
    expect(patternMatches("/v1/sessions/:id/start", "/v1/sessions/s-1")).toBe(false);
    expect(patternMatches("/rpc/*", "/rpc/crafting.v1.Svc/Watch")).toBe(true);
    expect(patternMatches("/v1/sessions", "/v1/sessions/")).toBe(true);
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
    expect(allowedMethods(routes, "/v1/sessions/s-1")).toEqual(["GET", "HEAD"]);
    expect(allowedMethods(routes, "/v1/sessions/s-1/start")).toEqual(["POST"]);
    expect(allowedMethods(routes, "/v1/sessions")).toEqual(["GET", "HEAD", "POST"]);
  });

  it("is empty for a path only middleware takes", () => {
    expect(allowedMethods(routes, "/v1/sessions/s-1/explode")).toEqual([]);
    expect(allowedMethods(routes, "/nowhere")).toEqual([]);
  });
});
