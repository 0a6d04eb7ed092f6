import { Hono } from "hono";
import { describe, expect, it } from "vitest";
import { allowedMethods, meantPath } from "../../src/http/allowed-methods";

// A router shaped like the service's: middleware on a prefix, routes by method.
const app = new Hono()
  .use("/v1/sessions/*", async (_c, next) => next())
  .get("/v1/sessions/:id", (c) => c.text("view"))
  .post("/v1/sessions/:id/start", (c) => c.text("start"))
  .post("/v1/sessions", (c) => c.text("create"))
  .get("/v1/sessions", (c) => c.text("list"))
  .post("/rpc/*", (c) => c.text("rpc"));

describe("allowedMethods", () => {
  it("lists the methods of every route taking the path, HEAD with GET, middleware aside", () => {
    expect(allowedMethods(app.router, "/v1/sessions/s-1", "DELETE")).toEqual(["GET", "HEAD"]);
    expect(allowedMethods(app.router, "/v1/sessions/s-1/start", "GET")).toEqual(["POST"]);
    expect(allowedMethods(app.router, "/v1/sessions", "PUT")).toEqual(["GET", "HEAD", "POST"]);
    expect(allowedMethods(app.router, "/rpc/crafting.v1.Svc/Watch", "GET")).toEqual(["POST"]);
  });

  it("is empty for a path only middleware takes, or none", () => {
    expect(allowedMethods(app.router, "/v1/sessions/s-1/explode", "POST")).toEqual([]);
    expect(allowedMethods(app.router, "/nowhere", "GET")).toEqual([]);
  });

  it("reads paths as the router does: strictly, a trailing slash is another path", () => {
    expect(allowedMethods(app.router, "/v1/sessions/", "DELETE")).toEqual([]);
    expect(allowedMethods(app.router, "/v1/sessions/s-1/start/", "GET")).toEqual([]);
  });

  it("is empty when a route of the method asked takes the path: it is not found, not refused", () => {
    expect(allowedMethods(app.router, "/v1/sessions/s-1", "GET")).toEqual([]);
    expect(allowedMethods(app.router, "/v1/sessions/s-1", "HEAD")).toEqual([]);
  });
});

describe("meantPath", () => {
  it("names the routed path a trailing or doubled slash missed", () => {
    expect(meantPath(app.router, "/v1/sessions/")).toBe("/v1/sessions");
    expect(meantPath(app.router, "/v1/sessions/s-1/start/")).toBe("/v1/sessions/s-1/start");
    expect(meantPath(app.router, "//v1//sessions/s-1")).toBe("/v1/sessions/s-1");
    expect(meantPath(app.router, "/v1/sessions///")).toBe("/v1/sessions");
  });

  it("names the routed path the case of a route's own word missed, never changing an id", () => {
    expect(meantPath(app.router, "/V1/Sessions/Demo-1", app.routes)).toBe("/v1/sessions/Demo-1");
    expect(meantPath(app.router, "/v1/SESSIONS/s-1/Start/", app.routes)).toBe(
      "/v1/sessions/s-1/start",
    );
    // The words come from the routes: without them, only slashes are tidied.
    expect(meantPath(app.router, "/V1/sessions")).toBeNull();
    // An id is never a route's word, so a wrong-case id is not "corrected" into one.
    expect(meantPath(app.router, "/v1/sessions/S-1/explode", app.routes)).toBeNull();
  });

  it("is null when the slashes are not what is wrong, or only middleware takes the tidy path", () => {
    expect(meantPath(app.router, "/v1/sessions")).toBeNull();
    expect(meantPath(app.router, "/nowhere/")).toBeNull();
    expect(meantPath(app.router, "/v1/sessions/s-1/explode/")).toBeNull();
    expect(meantPath(app.router, "/")).toBeNull();
    expect(meantPath(app.router, "//")).toBeNull();
  });
});
