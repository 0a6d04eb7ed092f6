/**
 * npm run bench:profile-workerd — where workerd's CPU goes while our service
 * takes progress posts into one session (the bench's `ingest` scenario, 8
 * callers, 8 s), or with `-- --events` bridged progress events (the `--full`
 * events scenario: 10,000 over 100 sessions), `-- --lifecycle` bridged
 * pauses and resumes (the lifecycle scenario, as fast as they are seen),
 * from the DevTools profiler of
 * the real runtime: self and inclusive shares per function of the bundle
 * (bench/.build/us.js). With `-- --fanout N`: N subscribers watch the
 * session while it takes 15 posts/s (within the live budget, so every post
 * is a broadcast to all of them). With `-- --heap`: what the isolate holds after
 * warm-up instead, from a heap snapshot (totals by kind, the largest
 * objects and what holds them). With `-- --tree [PCT]`: the call tree as
 * well (every node above PCT % of the samples, 0.5 by default), with the
 * wall time each node took per post; `-- --save FILE` writes the raw
 * profile (open it in Chrome's DevTools, Performance panel).
 */
import { writeFileSync } from "node:fs";
import WebSocket from "ws";
import { commandLine } from "../scripts/command-line.mjs";
import { eventsIngest } from "./lib/events-scenario.ts";
import { lifecycleIngest } from "./lib/lifecycle-scenario.ts";
import { startUs } from "./lib/targets.ts";

const PORT = 9555;
process.env.BENCH_INSPECTOR_PORT = String(PORT);
const SECONDS = 8;
const USAGE =
  "npm run bench:profile-workerd [-- --events | --lifecycle | --fanout N | --heap] [--tree [PCT]] [--save FILE]";
const { values, positionals } = commandLine(
  {
    allowPositionals: true,
    options: {
      events: {
        type: "boolean",
        default: false,
        about: "bridged progress events instead of posts",
      },
      lifecycle: {
        type: "boolean",
        default: false,
        about: "bridged pauses and resumes instead (200 sessions × 20, as fast as they are seen)",
      },
      fanout: { type: "string", default: "0", about: "subscribers watching the session" },
      heap: { type: "boolean", default: false, about: "a heap snapshot instead of a CPU profile" },
      tree: {
        type: "boolean",
        default: false,
        about: "the call tree too, above PCT % [default 0.5]",
      },
      save: { type: "string", about: "write the raw profile to this file" },
    },
  },
  USAGE,
  "Where workerd's CPU goes while the service takes progress posts into one session,\nfrom the real runtime's DevTools profiler.",
);
const fanoutTo = Number(values.fanout);
// `--tree` may be followed by its percentage; nothing else stands alone.
const [percent, ...extra] = positionals;
if (
  !(Number.isInteger(fanoutTo) && fanoutTo >= 0) ||
  extra.length > 0 ||
  (percent !== undefined && !(values.tree && Number(percent) > 0))
) {
  console.error(
    `--fanout takes a whole number, and --tree a percentage above 0 (got ${process.argv.slice(2).join(" ")})\nusage: ${USAGE}`,
  );
  process.exit(2);
}
const treeAbove = values.tree ? Number(percent ?? 0.5) : null;
const saveTo = values.save;
/** Posts before the profile starts, so the isolate is warm. */
const WARM_UP_POSTS = 300;

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
  children?: number[];
}

const target = await startUs();
try {
  const pages = (await (await fetch(`http://127.0.0.1:${PORT}/json`)).json()) as {
    id: string;
    webSocketDebuggerUrl: string;
  }[];
  // The service is the only user worker (Miniflare names it "core:user:<name>").
  const page = pages.find((p) => p.id.startsWith("core:user:"));
  if (!page)
    throw new Error(
      `no inspector target for the service among ${pages.map((p) => p.id).join(", ")}`,
    );
  const socket = new WebSocket(page.webSocketDebuggerUrl);
  await new Promise((resolve) => socket.once("open", resolve));
  let lastId = 0;
  const waiting = new Map<number, (result: unknown) => void>();
  const chunks: string[] = [];
  socket.on("message", (data) => {
    const message = JSON.parse(String(data)) as {
      id?: number;
      result?: unknown;
      method?: string;
      params?: { chunk: string };
    };
    if (message.method === "HeapProfiler.addHeapSnapshotChunk" && message.params)
      chunks.push(message.params.chunk);
    if (message.id !== undefined) waiting.get(message.id)?.(message.result);
  });
  const send = <T>(method: string, params = {}) =>
    new Promise<T>((resolve) => {
      waiting.set(++lastId, resolve as (result: unknown) => void);
      socket.send(JSON.stringify({ id: lastId, method, params }));
    });

  const room = await target.room(`profile-${crypto.randomUUID().slice(0, 8)}`);
  let n = 1;
  for (; n < WARM_UP_POSTS; n++) await room.post(n);
  if (values.heap) {
    await send("HeapProfiler.enable");
    await send("HeapProfiler.collectGarbage");
    await send("HeapProfiler.takeHeapSnapshot", { reportProgress: false });
    printHeap(JSON.parse(chunks.join("")) as HeapSnapshot);
    process.exit(0);
  }
  await send("Profiler.enable");
  await send("Profiler.setSamplingInterval", { interval: 100 });
  await send("Profiler.start");
  if (values.events) {
    const result = await eventsIngest(target, 100, 100);
    console.log(`events/s ${result.events_per_s}, seen ${result.seen} of ${result.events}`);
  } else if (values.lifecycle) {
    const result = await lifecycleIngest(target, 200, 20);
    console.log(`events/s ${result.events_per_s}, seen ${result.seen} of ${result.events}`);
  } else if (fanoutTo > 0) {
    const watchers = await Promise.all(
      Array.from(
        { length: fanoutTo },
        () =>
          new Promise<WebSocket>((resolve, reject) => {
            const ws = new WebSocket(room.wsUrl, {
              headers: room.wsHeaders,
              perMessageDeflate: false,
            });
            ws.once("open", () => resolve(ws));
            ws.once("error", reject);
          }),
      ),
    );
    for (const end = n + SECONDS * 15; n < end; n++) {
      await room.post(n);
      await new Promise((resolve) => setTimeout(resolve, 1000 / 15));
    }
    for (const ws of watchers) ws.close();
  } else {
    const deadline = performance.now() + SECONDS * 1000;
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (performance.now() < deadline) await room.post(n++);
      }),
    );
  }
  const { profile } = await send<{ profile: CpuProfile }>("Profiler.stop");
  socket.close();
  if (saveTo) writeFileSync(saveTo, JSON.stringify(profile));

  const nodes = new Map(profile.nodes.map((node) => [node.id, node]));
  const parents = new Map<number, number>();
  for (const node of profile.nodes)
    for (const child of node.children ?? []) parents.set(child, node.id);
  const name = (id: number) => {
    const { functionName, url, lineNumber, columnNumber } = (nodes.get(id) as ProfileNode)
      .callFrame;
    return `${functionName || "(anonymous)"} ${url.split("/").at(-1)}:${lineNumber + 1}:${columnNumber + 1}`;
  };
  const self = new Map<string, number>();
  const inclusive = new Map<string, number>();
  for (const sample of profile.samples) {
    self.set(name(sample), (self.get(name(sample)) ?? 0) + 1);
    const seen = new Set<string>();
    for (let id: number | undefined = sample; id !== undefined; id = parents.get(id)) {
      const key = name(id);
      if (!seen.has(key)) inclusive.set(key, (inclusive.get(key) ?? 0) + 1);
      seen.add(key);
    }
  }
  const total = profile.samples.length;
  const show = (title: string, shares: Map<string, number>) => {
    console.log(`\n${title} (% of ${total} samples)`);
    for (const [key, count] of [...shares].sort((a, b) => b[1] - a[1]).slice(0, 30))
      console.log(`${((100 * count) / total).toFixed(1).padStart(6)}  ${key}`);
  };
  show("self", self);
  show("inclusive", inclusive);
  if (treeAbove !== null) printTree(profile, name, treeAbove, n - WARM_UP_POSTS);
} finally {
  await target.stop();
}
process.exit(0);

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  /** µs between samples: the first from the start, each next from the one before. */
  timeDeltas: number[];
}

/**
 * The call tree, each node above `abovePct` % of the samples: inclusive and
 * self shares, and (when posts were made) the wall time it took per post.
 */
function printTree(
  profile: CpuProfile,
  name: (id: number) => string,
  abovePct: number,
  posts: number,
): void {
  const nodes = new Map(profile.nodes.map((node) => [node.id, node]));
  const self = new Map<number, number>();
  for (const id of profile.samples) self.set(id, (self.get(id) ?? 0) + 1);
  const inclusive = new Map<number, number>();
  const count = (id: number): number => {
    const children = nodes.get(id)?.children ?? [];
    const total = (self.get(id) ?? 0) + children.reduce((sum, child) => sum + count(child), 0);
    inclusive.set(id, total);
    return total;
  };
  const root = profile.nodes[0]?.id ?? 0;
  const total = count(root);
  const usPerSample = profile.timeDeltas.reduce((sum, d) => sum + d, 0) / Math.max(1, total);
  const perPost = posts > 0 ? (samples: number) => (samples * usPerSample) / posts : null;
  console.log(
    `\ncall tree (inclusive %, self %${perPost ? ", µs per post" : ""}; ${total} samples, ${usPerSample.toFixed(0)} µs apart${perPost ? `, ${posts} posts` : ""})`,
  );
  const walk = (id: number, depth: number) => {
    const samples = inclusive.get(id) ?? 0;
    if ((100 * samples) / total < abovePct) return;
    const cells = [(100 * samples) / total, (100 * (self.get(id) ?? 0)) / total].map((pct) =>
      pct.toFixed(1).padStart(5),
    );
    if (perPost) cells.push(perPost(samples).toFixed(0).padStart(6));
    console.log(`${cells.join(" ")} ${"  ".repeat(depth)}${name(id)}`);
    const children = [...(nodes.get(id)?.children ?? [])];
    children.sort((a, b) => (inclusive.get(b) ?? 0) - (inclusive.get(a) ?? 0));
    for (const child of children) walk(child, depth + 1);
  };
  walk(root, 0);
}

interface HeapSnapshot {
  snapshot: {
    meta: {
      node_fields: string[];
      node_types: [string[]];
      edge_fields: string[];
    };
  };
  nodes: number[];
  edges: number[];
  strings: string[];
}

/** Self sizes by kind, and the largest objects with what holds each. */
function printHeap(heap: HeapSnapshot): void {
  const { meta } = heap.snapshot;
  const width = meta.node_fields.length;
  const field = (name: string) => meta.node_fields.indexOf(name);
  const [TYPE, NAME, SIZE, EDGES] = ["type", "name", "self_size", "edge_count"].map(field) as [
    number,
    number,
    number,
    number,
  ];
  const edgeWidth = meta.edge_fields.length;
  const count = heap.nodes.length / width;
  const kind = (node: number) => meta.node_types[0][heap.nodes[node * width + TYPE] as number];
  const label = (node: number) =>
    `${kind(node)} ${String(heap.strings[heap.nodes[node * width + NAME] as number])
      .slice(0, 50)
      .replace(/\s+/g, " ")}`;
  const size = (node: number) => heap.nodes[node * width + SIZE] as number;
  const holder = new Map<number, number>();
  for (let node = 0, edge = 0; node < count; node++) {
    for (let e = 0; e < (heap.nodes[node * width + EDGES] as number); e++, edge += edgeWidth) {
      const to = (heap.edges[edge + 2] as number) / width;
      if (!holder.has(to)) holder.set(to, node);
    }
  }
  const byKind = new Map<string, number>();
  let total = 0;
  for (let node = 0; node < count; node++) {
    const key = kind(node) === "native" ? label(node) : (kind(node) ?? "?");
    byKind.set(key, (byKind.get(key) ?? 0) + size(node));
    total += size(node);
  }
  const kb = (bytes: number) => `${(bytes / 1024).toFixed(0).padStart(6)} KB`;
  console.log(`heap after warm-up: ${kb(total)} (self sizes, array buffer contents included)`);
  for (const [key, bytes] of [...byKind].sort((a, b) => b[1] - a[1]).slice(0, 12))
    console.log(`${kb(bytes)}  ${key}`);
  console.log("\nlargest objects, and what holds each");
  const largest = Array.from({ length: count }, (_, node) => node)
    .sort((a, b) => size(b) - size(a))
    .slice(0, 10);
  for (const node of largest) {
    const parent = holder.get(node);
    console.log(
      `${kb(size(node))}  ${label(node)}  <-  ${parent === undefined ? "?" : label(parent)}`,
    );
  }
}
