/**
 * Validation with valibot (a maintained schema library, tree-shaken to the
 * few actions used here: see docs/architecture.md for the choice). Schemas
 * carry only the rule ("must be a whole number …"); `parse` names the
 * field from the issue's path, so every refusal reads "changes[2].quantity
 * must be a whole number from 0 to 4294967295" and a caller can fix it.
 */
import * as v from "valibot";
import { AppError } from "../errors";

/** The most faults said in one refusal; the rest are counted. */
const FAULTS_SAID = 5;

/** Every field's first broken rule (not only the first field's). */
export const EVERY_FIELD = { abortPipeEarly: true } as const;

/**
 * `input` validated, or every field at fault in it, in order, each named
 * as the caller wrote it (`field`: the input's own name): a caller fixes a
 * body in one try, not one field per request. A field's first broken rule
 * is its only one said.
 */
export function check<S extends v.GenericSchema>(
  schema: S,
  input: unknown,
  field?: string,
): { ok: true; value: v.InferOutput<S> } | { ok: false; faults: string[] } {
  const result = v.safeParse(schema, input, EVERY_FIELD);
  if (result.success) return { ok: true, value: result.output };
  return { ok: false, faults: faultsOf(result.issues, input, field) };
}

/** Validates `input` or throws `invalid_argument` naming every field at fault (`check`). */
export function parse<S extends v.GenericSchema>(
  schema: S,
  input: unknown,
  field?: string,
): v.InferOutput<S> {
  const result = v.safeParse(schema, input, EVERY_FIELD);
  if (result.success) return result.output;
  throw refusal(faultsOf(result.issues, input, field));
}

/** What each issue says, once each. */
function faultsOf(
  issues: readonly v.BaseIssue<unknown>[],
  input: unknown,
  field?: string,
): string[] {
  // A field the body does not take first (it explains a field then
  // missing), the outermost first: valibot finds nested ones before the root's.
  const depth = (issue: v.BaseIssue<unknown>) => issue.path?.length ?? 0;
  const unknownFirst = [
    ...issues.filter((issue) => issue.type === "never").sort((a, b) => depth(a) - depth(b)),
    ...issues.filter((issue) => issue.type !== "never"),
  ];
  return [...new Set(unknownFirst.map((issue) => describe(issue, input, field)))];
}

/** An `invalid_argument` that keeps the faults it says, to be said again within a larger refusal. */
export class Refusal extends AppError {
  constructor(readonly faults: readonly string[]) {
    const more = faults.length - FAULTS_SAID;
    super(
      "invalid_argument",
      faults.slice(0, FAULTS_SAID).join("; ") + (more > 0 ? `; and ${more} more` : ""),
    );
  }
}

/** One `invalid_argument` saying `faults`: the first few, then how many more. */
export function refusal(faults: readonly string[]): Refusal {
  return new Refusal(faults);
}

/** The faults an error says: each of a `Refusal`'s, or its one message. */
export function faultsIn(error: AppError): readonly string[] {
  return error instanceof Refusal ? error.faults : [error.message];
}

/**
 * "steps[0].name must be …" from an issue's path and message, each field
 * named as the client wrote it (`steps[0].durationMs` for a camelCase body;
 * a field left out, as the body writes the others: `spelled`).
 */
function describe(issue: v.BaseIssue<unknown>, body: unknown, field?: string): string {
  let path = field ?? "";
  for (const { key, input } of issue.path ?? []) {
    if (typeof key === "number") {
      path += `[${key}]`;
      continue;
    }
    const name = isObject(input) ? spelled(input, String(key), body) : String(key);
    path += path ? `.${name}` : name;
  }
  return path ? `${path} ${issue.message}` : issue.message;
}

/**
 * A JSON object with these fields: a missing field is checked like an
 * absent one (`undefined`), so it gets its own rule's message rather than
 * the object's. A field it does not have is refused, naming it and the
 * fields there are (a misspelt optional field would otherwise vanish
 * unnoticed, as `{"sessionid": …}` would create a session under a random
 * id); `unknownFields: "drop"` ignores them instead, for records whose
 * producers add their own (bridged events). `message` refuses anything
 * but an object. Every field is also taken under its proto3 JSON name
 * (lowerCamelCase, as a client generated from `proto/` writes it), one
 * rule for every body; the snake_case name wins when both are sent.
 */
export function fields<E extends v.ObjectEntries>(
  entries: E,
  message: string,
  { unknownFields = "refuse" }: { unknownFields?: "refuse" | "drop" } = {},
) {
  const names = Object.keys(entries);
  // Every field the object does not have is refused beside the faults of
  // those it has (valibot's rest schema), told the names its client writes.
  const snake = v.objectWithRest(entries, v.never(unknownFieldRule(names, false)));
  const proto = v.objectWithRest(entries, v.never(unknownFieldRule(names, true)));
  return v.pipe(
    v.custom<Record<string, unknown>>(isObject, message),
    v.transform((input) => {
      const out = snakeKeys(input) as Record<string, unknown>;
      for (const key of names) if (!(key in out)) out[key] = undefined;
      return out;
    }),
    // The keys valibot's rest schema passes over (they name a prototype),
    // refused before the fields are read.
    v.rawCheck<Record<string, unknown>>(({ dataset, addIssue }) => {
      if (!dataset.typed || unknownFields === "drop") return;
      const input = dataset.value;
      const key = PROTOTYPE_KEYS.find(
        (name) => Object.hasOwn(input, name) && !names.includes(name),
      );
      if (key === undefined) return;
      addIssue({
        message: unknownFieldRule(names, spellings.has(input)),
        path: [{ type: "object", origin: "value", input, key, value: input[key] }],
      });
    }),
    unknownFields === "drop"
      ? v.object(entries)
      : // Typed as the plain object: the rest schema only ever refuses.
        v.lazy(
          (input) =>
            (spellings.has(input as object) ? proto : snake) as unknown as v.ObjectSchema<
              E,
              undefined
            >,
        ),
  );
}

/** Keys that name a prototype, which valibot's object schemas never read. */
const PROTOTYPE_KEYS = ["__proto__", "constructor", "prototype"];

/**
 * What an unknown field is told (its name is the issue's path): the fields
 * there are, under their proto3 JSON names to a client that wrote those.
 */
function unknownFieldRule(names: readonly string[], proto: boolean): string {
  return `is not a field here (the fields are ${(proto ? names.map(protoName) : names).join(", ")})`;
}

/**
 * A route's query parameters, held to its body's rules: every fault in one
 * answer, and a parameter it does not take refused, naming the ones it
 * does — a misspelt `?befor=` would otherwise be ignored unnoticed. A
 * parameter sent twice is read by its last value.
 */
export function parseQuery<E extends v.ObjectEntries>(url: string, entries: E) {
  const names = Object.keys(entries);
  const rule = `is not a query parameter here (the parameters are ${names.join(", ")})`;
  const query = v.objectWithRest(entries, v.never(rule)) as unknown as v.ObjectSchema<E, undefined>;
  return parse(query, Object.fromEntries(new URL(url).searchParams));
}

/** A query parameter that is a whole number within [min, max] (`wholeNumber`, written in digits). */
export function queryWholeNumber(min: number, max: number) {
  const rule = `must be a whole number from ${min} to ${max}`;
  return v.pipe(
    v.string(rule),
    v.regex(/^\d{1,16}$/, rule),
    v.transform(Number),
    wholeNumber(min, max, rule),
  );
}

/** Whether a value is a JSON object (not null, not an array). */
export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** The names a client wrote for the keys `snakeKeys` renamed, by the object it made. */
const spellings = new WeakMap<object, Map<string, string>>();

/**
 * The same object with each lowerCamelCase key under its snake_case name
 * instead (proto3 JSON sends `materialId`, our JSON `material_id`); the
 * snake_case one wins when both are sent. `spelled` still knows the names
 * the client wrote, so a refusal names the field as it was sent.
 */
export function snakeKeys(value: unknown): unknown {
  if (!isObject(value)) return value;
  const renamed: [string, unknown][] = [];
  const asSent = new Map<string, string>();
  for (const [key, item] of Object.entries(value)) {
    const snake = key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
    if (snake !== key && Object.hasOwn(value, snake)) continue;
    renamed.push([snake, item]);
    if (snake !== key) asSent.set(snake, key);
  }
  // fromEntries defines each key as its own (a "__proto__" key stays data).
  const out = Object.fromEntries(renamed);
  if (asSent.size > 0) spellings.set(out, asSent);
  return out;
}

/**
 * The name the client sent `key` of `input` under: its camelCase spelling
 * when `snakeKeys` renamed it. A field left out is named as the client
 * writes the others: in camelCase when `input` (or the whole `body` it is
 * part of) has a camelCase key.
 */
function spelled(input: object, key: string, body?: unknown): string {
  const sent = spellings.get(input)?.get(key);
  if (sent !== undefined) return sent;
  if ((input as Record<string, unknown>)[key] !== undefined) return key;
  return spellings.has(input) || (body !== undefined && protoNamed(body)) ? protoName(key) : key;
}

/**
 * Whether a JSON body was written under proto3 JSON names: a key in
 * lowerCamelCase anywhere in it. Read only to word a refusal; walked
 * without recursion, so a hostile body nested thousands deep is read like
 * any other.
 */
export function protoNamed(body: unknown): boolean {
  const waiting: unknown[] = [body];
  while (waiting.length > 0) {
    const value = waiting.pop();
    if (Array.isArray(value)) {
      for (const item of value) waiting.push(item);
    } else if (isObject(value)) {
      for (const [key, item] of Object.entries(value)) {
        if (/[a-z0-9][A-Z]/.test(key)) return true;
        waiting.push(item);
      }
    }
  }
  return false;
}

/**
 * A refusal worded for the client that sent `body`: the fields among
 * `names` (snake_case) that a message names — rules checked after parsing,
 * against the session's state or the clock, are worded in snake_case —
 * under their proto3 JSON names when the client wrote those
 * (`elapsedMs must be between 0 and 60000`).
 */
export function saidFor(body: unknown, message: string, names: readonly string[]): string {
  if (!names.some((name) => message.includes(name)) || !protoNamed(body)) return message;
  return names.reduce(
    (said, name) => said.replace(new RegExp(`\\b${name}\\b`, "g"), protoName(name)),
    message,
  );
}

/** Runs `work`; a refusal it throws is worded for the client that sent `body` (`saidFor`). */
export async function refusalsSaidFor<T>(
  body: unknown,
  names: readonly string[],
  work: () => Promise<T>,
): Promise<T> {
  try {
    return await work();
  } catch (e: unknown) {
    if (!(e instanceof AppError)) throw e;
    const message = saidFor(body, e.message, names);
    if (message === e.message) throw e;
    throw new AppError(e.code, message, e.retryAfterSeconds, e.headers);
  }
}

/** `elapsed_ms` → `elapsedMs`: a field's proto3 JSON name. */
export function protoName(name: string): string {
  return name.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
}

/**
 * A positive whole number (a time in ms, a version) that may also come as
 * the decimal string proto3 JSON writes for a 64-bit integer (`"1796408233874"`).
 */
export function int64Number(message: string) {
  return v.pipe(
    v.union([v.number(), v.pipe(v.string(), v.regex(/^\d{1,16}$/), v.transform(Number))], message),
    v.safeInteger(message),
    v.minValue(1, message),
  );
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
