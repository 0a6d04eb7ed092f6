/** Session placement: the location hint for where a request came from, and the rule that picks one. */
import { describe, expect, it } from "vitest";
import { hintFrom, placementFor } from "../../../src/domain/placement/placement";

describe("the location hint of where a player connects from", () => {
  it.each([
    [{ continent: "NA", longitude: "-122.4" }, "wnam"],
    [{ continent: "NA", longitude: "-74.0" }, "enam"],
    [{ continent: "NA" }, "enam"],
    [{ continent: "SA", longitude: -46.6 }, "sam"],
    [{ continent: "EU", longitude: "2.35" }, "weur"],
    [{ continent: "EU", longitude: "37.6" }, "eeur"],
    [{ continent: "AF" }, "afr"],
    [{ continent: "OC" }, "oc"],
    [{ continent: "AS", country: "JP" }, "apac"],
    [{ continent: "AS", country: "AE" }, "me"],
  ] as const)("%j → %s", (seen, hint) => {
    expect(hintFrom(seen)).toBe(hint);
  });

  it("knows nothing of Antarctica, an unknown continent, or no request data", () => {
    expect(hintFrom({ continent: "AN" })).toBeNull();
    expect(hintFrom({ continent: "XX" })).toBeNull();
    expect(hintFrom({})).toBeNull();
    expect(hintFrom(undefined)).toBeNull();
  });
});

describe("the placement rule", () => {
  it("takes the region named at create, else the player's last seen region, else none", () => {
    expect(placementFor("weur", "apac")).toEqual({ hint: "weur", source: "region" });
    expect(placementFor(null, "apac")).toEqual({ hint: "apac", source: "player" });
    expect(placementFor(undefined, null)).toEqual({ hint: null, source: "none" });
  });
});
