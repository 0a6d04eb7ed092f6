/**
 * Where a session's object is placed. A Durable Object starts near the first
 * request that reaches it — for a session, crafting-service's create call —
 * while the players watching it may be on another continent. So the create
 * call asks for a location hint: the `region` it names, else the region the
 * player's object last saw the player connect from, else none (near the
 * caller). Pure: the rule and the mapping from where a request came from.
 */

/** The platform's location hints (Durable Objects › data location). */
export const LOCATION_HINTS = [
  "wnam",
  "enam",
  "sam",
  "weur",
  "eeur",
  "apac",
  "oc",
  "afr",
  "me",
] as const;

export type LocationHint = (typeof LOCATION_HINTS)[number];

/** Where a request came from, as the platform says (`request.cf`). */
export interface SeenFrom {
  continent?: string;
  country?: string;
  longitude?: string | number;
}

/** Countries the platform's `me` (Middle East) hint serves, by ISO 3166 code. */
const MIDDLE_EAST = new Set([
  "AE",
  "BH",
  "IL",
  "IQ",
  "IR",
  "JO",
  "KW",
  "LB",
  "OM",
  "PS",
  "QA",
  "SA",
  "SY",
  "YE",
]);

/** The location hint nearest to where a request came from, or null when unknown. */
export function hintFrom(seen: SeenFrom | null | undefined): LocationHint | null {
  if (!seen?.continent) return null;
  const longitude = Number(seen.longitude);
  const known = Number.isFinite(longitude);
  switch (seen.continent) {
    case "NA":
      // West of the Great Plains is western North America.
      return known && longitude < -100 ? "wnam" : "enam";
    case "SA":
      return "sam";
    case "EU":
      return known && longitude > 20 ? "eeur" : "weur";
    case "AF":
      return "afr";
    case "OC":
      return "oc";
    case "AS":
      return seen.country && MIDDLE_EAST.has(seen.country) ? "me" : "apac";
    default:
      return null;
  }
}

/** Why a session was placed where it was. */
export type PlacementSource = "region" | "player" | "none";

/** The location hint a new object is given, and why. */
export interface Placement {
  hint: LocationHint | null;
  source: PlacementSource;
}

/** The rule: the region named at create, else the player's last seen region, else none. */
export function placementFor(
  region: LocationHint | null | undefined,
  playerLastSeen: LocationHint | null | undefined,
): Placement {
  if (region) return { hint: region, source: "region" };
  if (playerLastSeen) return { hint: playerLastSeen, source: "player" };
  return { hint: null, source: "none" };
}
