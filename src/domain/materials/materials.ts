/**
 * A session's materials as pure data: what the recipe requires, how much of
 * each the player has, and how availability changes apply. Changes carry
 * the time crafting-service observed the inventory (`asOfMs`): per
 * material, an observation older than the one held changes nothing, so
 * changes may arrive in any order and retries change nothing twice.
 */

/** One material a session needs, and the player's usable quantity of it. */
export interface MaterialState {
  materialId: string;
  required: number;
  /** Usable quantity: 0 while the material is unavailable. */
  available: number;
  /** When crafting-service observed `available` (0: as declared at creation). */
  asOfMs: number;
}

/** A material the session needs, as crafting-service declares it at creation. */
export interface MaterialRequirementInput {
  materialId: string;
  required: number;
  /** Usable quantity at creation; defaults to `required` (reserved when queued). */
  available?: number;
}

/** One availability change, as crafting-service reports it. */
export interface MaterialChange {
  materialId: string;
  /** The player's quantity of the material now. */
  quantity: number;
  /** False when the material cannot be used (locked, in trade, ...): counts as 0. */
  available: boolean;
}

/**
 * What became of one change: `applied` changed the session; `unchanged`
 * restated what it held (a retry); `stale` was older than what it held;
 * `not_required` names a material this session does not use.
 */
export type MaterialOutcome = "applied" | "unchanged" | "stale" | "not_required";

/** The materials a new session starts with. */
export function initialMaterials(
  requirements: readonly MaterialRequirementInput[],
): MaterialState[] {
  return requirements.map((r) => ({
    materialId: r.materialId,
    required: r.required,
    available: r.available ?? r.required,
    asOfMs: 0,
  }));
}

/** Usable quantity a change reports (an unavailable material counts as none). */
export function usableQuantity(change: MaterialChange): number {
  return change.available ? change.quantity : 0;
}

/**
 * Applies availability changes observed at `asOfMs`. Returns the new list
 * (the same array when nothing changed), each change's outcome in the order
 * given, and the changes a client must hear of; the last of several changes
 * to one material wins. A restated quantity still moves the material's
 * observation time forward, so an older observation arriving later cannot
 * undo it.
 */
export function applyMaterialChanges(
  materials: readonly MaterialState[],
  changes: readonly MaterialChange[],
  asOfMs: number,
): { materials: readonly MaterialState[]; outcomes: MaterialOutcome[]; applied: MaterialChange[] } {
  let next: MaterialState[] | null = null;
  const outcomes: MaterialOutcome[] = [];
  const applied: MaterialChange[] = [];
  for (const change of changes) {
    const current = next ?? materials;
    const index = current.findIndex((m) => m.materialId === change.materialId);
    const held = current[index];
    if (!held) {
      outcomes.push("not_required");
    } else if (asOfMs < held.asOfMs) {
      outcomes.push("stale");
    } else {
      const same = usableQuantity(change) === held.available;
      if (!same || asOfMs > held.asOfMs) {
        next ??= [...materials];
        next[index] = { ...held, available: usableQuantity(change), asOfMs };
      }
      outcomes.push(same ? "unchanged" : "applied");
      if (!same) applied.push(change);
    }
  }
  return { materials: next ?? materials, outcomes, applied };
}

/** Materials the session lacks: available below required. */
export function missingMaterials(materials: readonly MaterialState[]): MaterialState[] {
  return materials.filter((m) => m.available < m.required);
}

/** True when the player has every material the session requires. */
export function allAvailable(materials: readonly MaterialState[]): boolean {
  return missingMaterials(materials).length === 0;
}

/** Whether two requirement lists declare the same materials and amounts. */
export function sameRequirements(
  held: readonly MaterialState[],
  declared: readonly MaterialRequirementInput[],
): boolean {
  return (
    held.length === declared.length &&
    held.every(
      (m, i) => m.materialId === declared[i]?.materialId && m.required === declared[i]?.required,
    )
  );
}
