/**
 * Where a create call places its new object (`POST /v1/sessions`,
 * `POST /v1/workflows`): the `region` field a body may name, and the
 * answer's header saying which hint was given and why (the rule:
 * domain/placement/placement.ts; the player's part: durable.ts).
 */
import * as v from "valibot";
import { LOCATION_HINTS, type Placement } from "../domain/placement/placement";

/** A create answer's placement: `<hint or none>; source=region|player|none`. */
export const PLACEMENT_HEADER = "Crafting-Location-Hint";

/** The placement header of a create answer (sessions, workflows). */
export function placementHeader(placement: Placement): Record<string, string> {
  return { [PLACEMENT_HEADER]: `${placement.hint ?? "none"}; source=${placement.source}` };
}

/** Where to place a new session or workflow: a location hint, optional. */
export const regionField = v.nullish(
  v.picklist(LOCATION_HINTS, `must be one of ${LOCATION_HINTS.join(", ")} (a location hint)`),
);
