/**
 * Validation with valibot (a maintained schema library, tree-shaken to the
 * few actions used here: see docs/architecture.md for the choice). Schemas
 * carry only the rule ("must be a whole number …"); `parse` names the
 * field from the issue's path, so every refusal reads "changes[2].quantity
 * must be a whole number from 0 to 4294967295" and a caller can fix it.
 */
import * as v from "valibot";
import { AppError } from "../errors";

/** Validates `input` or throws `invalid_argument` naming the first field at fault (`field`: the input's own name). */
export function parse<S extends v.GenericSchema>(
  schema: S,
  input: unknown,
  field?: string,
): v.InferOutput<S> {
  const result = v.safeParse(schema, input, { abortEarly: true });
  if (result.success) return result.output;
  throw new AppError("invalid_argument", describe(result.issues[0], field));
}

/** "steps[0].name must be …" from an issue's path and message. */
function describe(issue: v.BaseIssue<unknown>, field?: string): string {
  let path = field ?? "";
  for (const item of issue.path ?? []) {
    const key = item.key;
    path += typeof key === "number" ? `[${key}]` : `${path ? "." : ""}${String(key)}`;
  }
  return path ? `${path} ${issue.message}` : issue.message;
}

/**
 * A JSON object with these fields: a missing field is checked like an
 * absent one (`undefined`), so it gets its own rule's message rather than
 * the object's; unknown fields are dropped. `message` refuses anything but an object.
 */
export function fields<E extends v.ObjectEntries>(entries: E, message: string) {
  return v.pipe(
    v.custom<Record<string, unknown>>(isObject, message),
    v.transform((input) => {
      const out: Record<string, unknown> = { ...input };
      for (const key of Object.keys(entries)) if (!(key in out)) out[key] = undefined;
      return out;
    }),
    v.object(entries),
  );
}

/** Whether a value is a JSON object (not null, not an array). */
export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * The same object with each lowerCamelCase key also under its snake_case
 * name (proto3 JSON sends `materialId`, our JSON `material_id`); the
 * snake_case one wins when both are sent.
 */
export function snakeKeys(value: unknown): unknown {
  if (!isObject(value)) return value;
  const out: Record<string, unknown> = { ...value };
  for (const [key, item] of Object.entries(value)) {
    const snake = key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
    if (snake !== key && !(snake in value)) out[snake] = item;
  }
  return out;
}

/** A finite number (JSON numbers, binary bodies' doubles). */
export function finiteNumber(message: string) {
  return v.pipe(v.number(message), v.finite(message));
}

/** A whole number within [min, max]. */
export function wholeNumber(min: number, max: number, message: string) {
  return v.pipe(
    v.number(message),
    v.integer(message),
    v.minValue(min, message),
    v.maxValue(max, message),
  );
}
