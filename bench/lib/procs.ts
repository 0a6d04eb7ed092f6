/**
 * Process accounting for the benchmark on Linux: CPU and RSS of the
 * workerd processes a target runs in, and cleanup of everything started.
 */
import { readdirSync, readFileSync } from "node:fs";

const TICKS_PER_SECOND = 100;

/** Pids of every descendant of `root`. */
export function descendants(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      const list = children.get(ppid) ?? [];
      list.push(Number(entry));
      children.set(ppid, list);
    } catch {
      // Gone meanwhile.
    }
  }
  const found: number[] = [];
  const queue = [root];
  while (queue.length > 0) {
    for (const child of children.get(queue.shift() as number) ?? []) {
      found.push(child);
      queue.push(child);
    }
  }
  return found;
}

/** The workerd processes among our descendants. */
export function workerdPids(): number[] {
  return descendants(process.pid).filter((pid) => {
    try {
      return readFileSync(`/proc/${pid}/comm`, "utf8").trim().startsWith("workerd");
    } catch {
      return false;
    }
  });
}

/** CPU seconds (user + system) used so far by `pids`. */
export function cpuSeconds(pids: readonly number[]): number {
  let ticks = 0;
  for (const pid of pids) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      ticks += Number(fields[11]) + Number(fields[12]);
    } catch {
      // Gone.
    }
  }
  return ticks / TICKS_PER_SECOND;
}

/** Resident memory of `pids`, in bytes. */
export function rssBytes(pids: readonly number[]): number {
  let kb = 0;
  for (const pid of pids) {
    try {
      const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
      kb += Number(match?.[1] ?? 0);
    } catch {
      // Gone.
    }
  }
  return kb * 1024;
}

/** File descriptors `pids` hold open now. */
export function openFds(pids: readonly number[]): number {
  let count = 0;
  for (const pid of pids) {
    try {
      count += readdirSync(`/proc/${pid}/fd`).length;
    } catch {
      // Gone.
    }
  }
  return count;
}

/** The lowest open-file limit (soft) among `pids`; Infinity when none can be read. */
export function fdLimit(pids: readonly number[]): number {
  let limit = Number.POSITIVE_INFINITY;
  for (const pid of pids) {
    try {
      const line = readFileSync(`/proc/${pid}/limits`, "utf8")
        .split("\n")
        .find((l) => l.startsWith("Max open files"));
      const soft = Number(line?.slice("Max open files".length).trim().split(/\s+/)[0]);
      if (Number.isFinite(soft)) limit = Math.min(limit, soft);
    } catch {
      // Gone.
    }
  }
  return limit;
}

/** CPU used by this process and by the server while `work` ran, as shares of one core. */
export async function measureCpu<T>(
  serverPids: () => number[],
  work: () => Promise<T>,
): Promise<{ result: T; clientCpu: number; serverCpu: number; seconds: number }> {
  const pids = serverPids();
  const serverBefore = cpuSeconds(pids);
  const clientBefore = process.cpuUsage();
  const started = performance.now();
  const result = await work();
  const seconds = (performance.now() - started) / 1000;
  const client = process.cpuUsage(clientBefore);
  return {
    result,
    seconds,
    clientCpu: (client.user + client.system) / 1e6 / seconds,
    serverCpu: (cpuSeconds(pids) - serverBefore) / seconds,
  };
}

/** Things to stop however the run ends, Ctrl-C included. */
const cleanups = new Set<() => Promise<void> | void>();
let installed = false;

/** Registers a cleanup; returns a function that runs and forgets it. */
export function onExit(cleanup: () => Promise<void> | void): () => Promise<void> {
  if (!installed) {
    installed = true;
    for (const signal of ["SIGINT", "SIGTERM"] as const) {
      process.once(signal, () => {
        void runCleanups().finally(() => process.exit(130));
      });
    }
  }
  cleanups.add(cleanup);
  return async () => {
    if (cleanups.delete(cleanup)) await cleanup();
  };
}

/** Runs every registered cleanup once. */
export async function runCleanups(): Promise<void> {
  const pending = [...cleanups];
  cleanups.clear();
  await Promise.allSettled(pending.map(async (cleanup) => cleanup()));
}
