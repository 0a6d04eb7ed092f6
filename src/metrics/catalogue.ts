/**
 * Every metric the service exports, in one place: name, type, help and
 * histogram buckets. Series are counted where they happen (Worker or
 * Durable Object) and summed by the aggregator (durable-objects/metrics).
 */

/** Upper bounds (seconds) of the delivery-latency histogram. */
export const LATENCY_BUCKETS = [
  0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5,
] as const;

/** The kind and help text of each metric. */
export const METRICS = {
  crafting_http_requests_total: {
    type: "counter",
    help: "HTTP requests answered, by route and status code.",
  },
  crafting_auth_failures_total: {
    type: "counter",
    help: "Requests refused for their credentials, by reason.",
  },
  crafting_throttles_total: {
    type: "counter",
    help: "Requests or frames refused by a limit, by limit.",
  },
  crafting_streams_opened_total: { type: "counter", help: "Streams accepted, by kind." },
  crafting_operator_watches_total: {
    type: "counter",
    help: "Streams an operator opened on what another player owns (audit-logged), by kind.",
  },
  crafting_streams_closed_total: {
    type: "counter",
    help: "Streams closed, by kind and close code.",
  },
  crafting_storage_rows_written_total: {
    type: "counter",
    help: "Storage rows written (SQL rows, KV puts and deletes, alarms set), by object: what the platform bills.",
  },
  crafting_storage_rows_read_total: {
    type: "counter",
    help: "Storage rows read (SQL rows scanned, KV gets), by object: what the platform bills.",
  },
  crafting_object_wakes_total: {
    type: "counter",
    help: "Events that reach a Durable Object with open streams and would wake it from hibernation (alarms, client frames, slot calls), by object and event.",
  },
  crafting_owed_work_total: {
    type: "counter",
    help: "Work one object owed another and could not do when it was due (a session's status notice, a workflow's step start), by object, work and outcome: retry_scheduled, done (by a retry), abandoned (after an hour of retries).",
  },
  crafting_object_activations_total: {
    type: "counter",
    help: "Durable Object activations (a start, or a wake from hibernation), by object.",
  },
  crafting_messages_in_total: { type: "counter", help: "Frames received from clients." },
  crafting_bytes_in_total: { type: "counter", help: "Bytes of frames received from clients." },
  crafting_messages_out_total: {
    type: "counter",
    help: "Frames sent to clients (one per socket).",
  },
  crafting_bytes_out_total: { type: "counter", help: "Bytes of frames sent to clients." },
  crafting_delivery_latency_seconds: {
    type: "histogram",
    help: "From the request (or queued event) reaching the edge to its update being handed to every subscriber's socket.",
  },
  crafting_sessions_created_total: { type: "counter", help: "Crafting sessions created." },
  crafting_sessions_ended_total: {
    type: "counter",
    help: "Crafting sessions that reached a final status, by status.",
  },
  crafting_ingest_events_total: {
    type: "counter",
    help: "Bridged events by outcome, applied at once or by a queue consumer (queued: handed to a Queue; retried: sent back by its consumer).",
  },
  crafting_ingest_stream_updates_total: {
    type: "counter",
    help: "Progress updates answered on ingest streams (GET /v1/progress/stream), by outcome (applied, refused, failed).",
  },
  crafting_metrics_pushes_total: {
    type: "counter",
    help: "Pushes of counted deltas to the metrics aggregator (at most one a second per isolate): what counting itself costs.",
  },
  crafting_dead_letters_total: {
    type: "counter",
    help: "Messages recorded in the dead-letter log.",
  },
} as const;

/** A metric name. */
export type MetricName = keyof typeof METRICS;

/** Gauges derived from counters when the metrics are rendered. */
export const DERIVED_GAUGES = {
  crafting_streams_open: {
    help: "Streams open now, by kind (opened minus closed).",
  },
  crafting_sessions_active: {
    help: "Sessions created and not yet ended.",
  },
} as const;
