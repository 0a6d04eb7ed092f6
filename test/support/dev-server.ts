/**
 * Runs the real service under `wrangler dev` on loopback for end-to-end
 * tests: its own ports, its own persisted state, a test secret, and a
 * process group that is always stopped.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { TEST_JWT_SECRET } from "./secret";

/** A free TCP port on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() =>
        typeof address === "object" && address
          ? resolve(address.port)
          : reject(new Error("no port")),
      );
    });
  });
}

/** How a DevServer runs: `vars` override wrangler.toml's; `openFiles` lowers the open-file limit of wrangler and its workerd. */
export interface DevServerOptions {
  vars?: Record<string, string>;
  openFiles?: number;
}

/** One `wrangler dev` process; `stop()` then `start()` again keeps its persisted state. */
export class DevServer {
  readonly stateDir = mkdtempSync(join(tmpdir(), "crafting-e2e-"));
  #process: ChildProcess | null = null;
  #output = "";
  port = 0;

  constructor(private readonly options: DevServerOptions = {}) {}

  get baseUrl(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Starts wrangler dev and waits until /health answers. */
  async start(timeoutMs = 90_000): Promise<void> {
    const envFile = join(this.stateDir, "test.env");
    writeFileSync(envFile, `JWT_SECRET="${TEST_JWT_SECRET}"\n`);
    this.port = this.port || (await freePort());
    const inspectorPort = await freePort();
    this.#output = "";
    const { vars = {}, openFiles } = this.options;
    // prlimit execs its command with the limit set: the process group stays one.
    const limit = openFiles ? [`--nofile=${openFiles}:${openFiles}`, "npx"] : [];
    this.#process = spawn(
      openFiles ? "prlimit" : "npx",
      [
        ...limit,
        "wrangler",
        "dev",
        "--ip",
        "127.0.0.1",
        "--port",
        String(this.port),
        "--inspector-port",
        String(inspectorPort),
        "--persist-to",
        join(this.stateDir, "state"),
        "--env-file",
        envFile,
        "--show-interactive-dev-session=false",
        "--log-level",
        "log",
        ...Object.entries(vars).flatMap(([name, value]) => ["--var", `${name}:${value}`]),
      ],
      {
        detached: true,
        stdio: ["ignore", "pipe", "pipe"],
        env: { ...process.env, WRANGLER_SEND_METRICS: "false" },
      },
    );
    this.#process.stdout?.on("data", (chunk: Buffer) => {
      this.#output += chunk.toString();
    });
    this.#process.stderr?.on("data", (chunk: Buffer) => {
      this.#output += chunk.toString();
    });
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (this.#process.exitCode !== null) throw new Error(`wrangler dev exited:\n${this.#output}`);
      try {
        const response = await fetch(`${this.baseUrl}/health`);
        if (response.ok) return;
      } catch {
        // Not listening yet.
      }
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    await this.stop();
    throw new Error(`wrangler dev did not become healthy in ${timeoutMs} ms:\n${this.#output}`);
  }

  /** Everything wrangler dev printed since the last start. */
  get output(): string {
    return this.#output;
  }

  /** Stops the whole process group (wrangler, its workerd). */
  async stop(signal: NodeJS.Signals = "SIGTERM"): Promise<void> {
    const child = this.#process;
    this.#process = null;
    if (!child?.pid || child.exitCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    try {
      process.kill(-child.pid, signal);
    } catch {
      return;
    }
    const timer = setTimeout(() => {
      try {
        process.kill(-(child.pid as number), "SIGKILL");
      } catch {
        // Already gone.
      }
    }, 5_000);
    await exited;
    clearTimeout(timer);
  }

  /** Stops the server and deletes its state. */
  async dispose(): Promise<void> {
    await this.stop();
    // workerd may still be flushing SQLite files for a moment after exiting;
    // a temporary directory left behind must not fail the run.
    try {
      rmSync(this.stateDir, { recursive: true, force: true, maxRetries: 10, retryDelay: 300 });
    } catch (error) {
      console.warn(`could not remove ${this.stateDir}: ${String(error)}`);
    }
  }
}
