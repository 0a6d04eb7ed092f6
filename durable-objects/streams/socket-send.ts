/**
 * Sending on a hibernatable WebSocket: a socket may close between being
 * listed and being sent to; its close handler cleans up, so a failed send
 * is only counted as not sent.
 */

/** Sends unless the socket closed meanwhile; true when sent. */
export function trySend(ws: WebSocket, data: string | Uint8Array): boolean {
  try {
    ws.send(data);
    return true;
  } catch {
    // Closed between listing and sending.
    return false;
  }
}

/** Bytes of a text (UTF-8) or binary frame. */
export function byteLength(data: string | Uint8Array | ArrayBuffer): number {
  return typeof data === "string" ? new TextEncoder().encode(data).byteLength : data.byteLength;
}
