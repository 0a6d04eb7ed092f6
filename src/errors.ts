/**
 * The service's one closed set of error codes, modelled on Connect's `Code`
 * enum, and the one place they map to HTTP statuses and WebSocket close codes.
 */

/** Every error the service reports carries exactly one of these codes. */
export type ErrorCode =
  | "invalid_argument"
  | "unauthenticated"
  | "permission_denied"
  | "not_found"
  | "method_not_allowed"
  | "already_exists"
  | "failed_precondition"
  | "payload_too_large"
  | "unsupported_media_type"
  | "resource_exhausted"
  | "unavailable"
  | "internal";

/** An error as plain data: returned in tagged unions, sent in error frames. */
export interface ServiceError {
  code: ErrorCode;
  message: string;
  /** Sent as Retry-After when the error is answered over HTTP. */
  retryAfterSeconds?: number;
}

const httpStatusByCode: Record<
  ErrorCode,
  400 | 401 | 403 | 404 | 405 | 409 | 413 | 415 | 429 | 500 | 503
> = {
  invalid_argument: 400,
  unauthenticated: 401,
  permission_denied: 403,
  not_found: 404,
  method_not_allowed: 405,
  already_exists: 409,
  failed_precondition: 409,
  payload_too_large: 413,
  unsupported_media_type: 415,
  resource_exhausted: 429,
  unavailable: 503,
  internal: 500,
};

/** HTTP status for an error code. */
export function httpStatus(code: ErrorCode): (typeof httpStatusByCode)[ErrorCode] {
  return httpStatusByCode[code];
}

/** Thrown inside the Worker; `app.onError` turns it into `{ error: { code, message } }`. */
export class AppError extends Error {
  readonly code: ErrorCode;
  /** Sent as Retry-After (seconds) on 429 and 503. */
  readonly retryAfterSeconds?: number;
  /** Headers the answer carries besides (e.g. `Accept-Encoding` on a 415). */
  readonly headers?: Readonly<Record<string, string>>;

  // Fields declared, not parameter properties: Node's type stripping loads
  // this module as it is (scripts/watch.mjs reads the close codes from it).
  constructor(
    code: ErrorCode,
    message: string,
    retryAfterSeconds?: number,
    headers?: Readonly<Record<string, string>>,
  ) {
    super(message);
    this.name = "AppError";
    this.code = code;
    this.retryAfterSeconds = retryAfterSeconds;
    this.headers = headers;
  }

  /** Wraps a ServiceError returned by a Durable Object. */
  static from(error: ServiceError): AppError {
    return new AppError(error.code, error.message, error.retryAfterSeconds);
  }
}

/** A result that is either a value or an expected error: never thrown. */
export type Result<T> = { ok: true; value: T } | { ok: false; error: ServiceError };

/** Shorthand constructors for Result. */
export const ok = <T>(value: T): Result<T> => ({ ok: true, value });
export const fail = <T = never>(code: ErrorCode, message: string): Result<T> => ({
  ok: false,
  error: { code, message },
});

/** The value of a Result from a Durable Object, or its error thrown (answered in the one error shape). */
export function unwrap<T>(result: Result<T>): T {
  if (!result.ok) throw AppError.from(result.error);
  return result.value;
}

/**
 * WebSocket close codes, grouped by what a client should do next
 * (after centrifuge-js's codes.ts). 4000-4999 are private-use (RFC 6455 §7.4.2).
 */
export const CloseCode = {
  // Do not reconnect: the stream ended for good.
  NORMAL: 1000,
  FORBIDDEN: 4003,
  NOT_FOUND: 4004,
  POLICY_VIOLATION: 1008,
  MESSAGE_TOO_BIG: 1009,
  // Reconnect with a new token.
  TOKEN_EXPIRED: 4001,
  // Reconnect (with backoff, resuming from the last seq).
  GOING_AWAY: 1001,
  INTERNAL_ERROR: 1011,
  SERVICE_RESTART: 1012,
  TRY_AGAIN_LATER: 1013,
  IDLE_TIMEOUT: 4008,
  // Never sent (RFC 6455 §7.4.1): a stream that ended without a close frame, reconnected.
  ABNORMAL: 1006,
} as const;

/**
 * A subprotocol a client offers (beside its format and token) to have a
 * refused upgrade told as a close code and reason, as a browser always
 * has it (`src/middleware/refusals.ts`): for WebSocket clients that, like a
 * browser's, cannot read a refused handshake's HTTP status (Node's and
 * the Workers runtime's global `WebSocket`). Never selected.
 */
export const READABLE_REFUSALS_PROTOCOL = "crafting.refusals";

/** The close code that says what an HTTP refusal said (a refused upgrade, a refused sync negotiation). */
export const REFUSAL_CLOSE_CODES: Record<ErrorCode, number> = {
  unauthenticated: CloseCode.TOKEN_EXPIRED,
  permission_denied: CloseCode.FORBIDDEN,
  not_found: CloseCode.NOT_FOUND,
  // The first refusal of a close code is what it stands for (`refusalOfClose`).
  invalid_argument: CloseCode.POLICY_VIOLATION,
  method_not_allowed: CloseCode.POLICY_VIOLATION,
  already_exists: CloseCode.POLICY_VIOLATION,
  failed_precondition: CloseCode.POLICY_VIOLATION,
  payload_too_large: CloseCode.MESSAGE_TOO_BIG,
  unsupported_media_type: CloseCode.POLICY_VIOLATION,
  resource_exhausted: CloseCode.TRY_AGAIN_LATER,
  unavailable: CloseCode.TRY_AGAIN_LATER,
  internal: CloseCode.INTERNAL_ERROR,
};

/** The refusal a close code says (the first that `REFUSAL_CLOSE_CODES` closes with it), or null. */
export function refusalOfClose(code: number): ErrorCode | null {
  const codes = Object.keys(REFUSAL_CLOSE_CODES) as ErrorCode[];
  return codes.find((refusal) => REFUSAL_CLOSE_CODES[refusal] === code) ?? null;
}

/** Why a stream ended with `TOKEN_EXPIRED`, whichever end of it noticed. */
export const TOKEN_EXPIRED_REASON = "token expired: reconnect with a new token";

/** What a client should do after a close code. */
export type CloseAdvice = "reconnect" | "reconnect_with_new_token" | "do_not_reconnect";

/** Groups a close code by the client's next move. */
export function closeAdvice(code: number): CloseAdvice {
  switch (code) {
    case CloseCode.TOKEN_EXPIRED:
      return "reconnect_with_new_token";
    case CloseCode.NORMAL:
    case CloseCode.FORBIDDEN:
    case CloseCode.NOT_FOUND:
    case CloseCode.POLICY_VIOLATION:
    case CloseCode.MESSAGE_TOO_BIG:
      return "do_not_reconnect";
    default:
      return "reconnect";
  }
}

/**
 * Whether a per-item failure in a multi-item answer makes the whole request
 * worth sending again (`503` with `Retry-After`): the item's object could not
 * be reached or failed, rather than refused it.
 */
export function retryable(code: ErrorCode): boolean {
  return code === "unavailable" || code === "internal";
}

/**
 * A Durable Object error the caller may retry: the object is overloaded
 * (too many requests queued) or was reset mid-call (deploy, restart).
 * https://developers.cloudflare.com/durable-objects/best-practices/error-handling/
 */
export function transientObjectError(err: unknown): AppError | null {
  if (!(err instanceof Error)) return null;
  const flags = err as Error & { overloaded?: boolean; retryable?: boolean };
  if (flags.overloaded)
    return new AppError("unavailable", "the session is overloaded: retry shortly", 1);
  if (flags.retryable) return new AppError("unavailable", "the session restarted: retry", 1);
  return null;
}

/** An error with a code of ours: one we threw, or a Durable Object's transient one (null otherwise). */
export function knownError(err: unknown): AppError | null {
  return err instanceof AppError ? err : transientObjectError(err);
}
