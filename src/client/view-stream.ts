/**
 * What a view's stream is, shared by the full SDK's views (streams.ts), the
 * light SDK's (lite.ts) and the sync channel's (sync.ts): the service's
 * addresses, the watched id's path, the resume point in each attempt's URL,
 * and a few clock pings after each connect.
 */

import { serviceBases } from "./base-url";
import { CLOCK_PINGS_PER_CONNECT } from "./clock";
import { Connection, type ConnectionTuning, type StateChange, tuningOf } from "./connection";
import type { TokenProvider } from "./token";

/** Where a view's stream goes and with which token, and its connection's settings. */
export interface ViewStreamOptions extends ConnectionTuning {
  /** The service's http(s) URL (a path prefix is kept). */
  baseUrl: string;
  token: TokenProvider;
}

/** What a view's stream asks of the view. */
export interface ViewStreamHooks {
  /** The subprotocol of its frames (`crafting.v1.json`, `crafting.v1.bin`). */
  protocol: string;
  /** The (epoch, seq) of the last change the view has: each attempt resumes from it. */
  position: () => { epoch: number; seq: number };
  /** A clock-sync ping frame, the view's codec. */
  clockPing: () => string | Uint8Array;
  onMessage: (data: string | ArrayBuffer) => void;
  /** Why the server closes the stream, once what it watches ended; null before. */
  endedReason: () => string | null;
  onState: (change: StateChange) => void;
}

/**
 * Opens the stream of the view watching `path`: every attempt resumes from
 * where the view stands (none before its first change); each connect sends
 * `CLOCK_PINGS_PER_CONNECT` clock pings, then the text `ping` the runtime
 * answers without waking the server's object.
 */
export function viewConnection(
  path: string,
  options: ViewStreamOptions,
  view: ViewStreamHooks,
): Connection {
  const wsBase = serviceBases(options.baseUrl).ws;
  let clockPings = 0;
  return new Connection({
    url: () => {
      const { epoch, seq } = view.position();
      return `${wsBase}${path}${seq > 0 ? `?resume_epoch=${epoch}&resume_seq=${seq}` : ""}`;
    },
    token: options.token,
    protocols: [view.protocol],
    ...tuningOf(options),
    ping: () => (clockPings++ < CLOCK_PINGS_PER_CONNECT ? view.clockPing() : "ping"),
    onMessage: view.onMessage,
    endedReason: view.endedReason,
    onState: (state, detail) => {
      if (state === "open") clockPings = 0;
      view.onState({ state, ...detail });
    },
  }).start();
}

/**
 * An id as a path segment (encoded). One that is not a non-empty string is
 * said at once, as a `TypeError`: `null` (a missing `?session=`) would
 * otherwise be watched as the session "null", and refused as not found.
 */
export function idSegment(name: string, id: unknown): string {
  if (typeof id !== "string" || id === "")
    throw new TypeError(
      `${name} must be a non-empty string, such as "s-1001" (got ${typeof id === "string" ? '""' : String(id)})`,
    );
  return encodeURIComponent(id);
}
