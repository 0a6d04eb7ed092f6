/**
 * The soak's service (bench/soak.ts): the real service on workerd, as the
 * bench runs it, that can be killed (SIGKILL) and started again on the same
 * state; and the one way the soak calls it as crafting-service, retried
 * while the runtime is down, counting every 5xx.
 */

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { freePort } from "../../test/support/dev-server.ts";
import { onExit } from "./procs.ts";
import type { SoakService } from "./soak-watcher.ts";
import { launchUs, token } from "./targets.ts";

/** A call to the service as crafting-service makes it (POST unless said). */
export type ServiceCall = (path: string, body?: unknown, method?: string) => Promise<Response>;

/** The service under soak, restartable on its state. */
export class SoakRuntime implements SoakService {
  restarts = 0;
  errors5xx = 0;
  /** The first few 5xx answers, as `METHOD path status body`. */
  readonly fiveXX: string[] = [];
  readonly baseUrl: string;
  readonly wsBase: string;
  #service: Awaited<ReturnType<typeof launchUs>>;
  #restarting: Promise<void> | null = null;
  readonly #place: { port: number; stateDir: string; vars: Record<string, string> };
  readonly #bearer: string;

  private constructor(
    service: Awaited<ReturnType<typeof launchUs>>,
    place: { port: number; stateDir: string; vars: Record<string, string> },
    bearer: string,
  ) {
    this.#service = service;
    this.#place = place;
    this.#bearer = bearer;
    this.baseUrl = `http://127.0.0.1:${place.port}`;
    this.wsBase = this.baseUrl.replace("http", "ws");
  }

  /** Starts the service on a fresh state directory (removed on exit) with `vars`. */
  static async launch(vars: Record<string, string>): Promise<SoakRuntime> {
    const stateDir = mkdtempSync(join(tmpdir(), "crafting-soak-"));
    onExit(() => rmSync(stateDir, { recursive: true, force: true }));
    const place = { port: await freePort(), stateDir, vars };
    const service = await launchUs(place);
    return new SoakRuntime(service, place, await token("crafting-service", "service"));
  }

  /** The runtime's processes now. */
  pids(): number[] {
    return this.#service.pids();
  }

  /** Resolves once the runtime is up (at once, unless it is being restarted). */
  ready(): Promise<void> {
    return this.#restarting ?? Promise.resolve();
  }

  /** SIGKILLs workerd (no chance to flush or close anything), then starts it again on the same state. */
  async killAndRestart(): Promise<void> {
    this.#restarting = (async () => {
      for (const pid of this.#service.pids()) {
        try {
          process.kill(pid, "SIGKILL");
        } catch {
          // Already gone.
        }
      }
      await this.#service.stop().catch(() => {});
      this.#service = await launchUs(this.#place);
      this.restarts++;
    })();
    try {
      await this.#restarting;
    } finally {
      this.#restarting = null;
    }
  }

  /** A service call, retried while the runtime is down or restarting; counts any 5xx. */
  readonly call: ServiceCall = async (path, body, method = "POST") => {
    for (let attempt = 0; ; attempt++) {
      await this.ready();
      try {
        const response = await fetch(`${this.baseUrl}${path}`, {
          method,
          headers: { Authorization: `Bearer ${this.#bearer}`, "Content-Type": "application/json" },
          body: body === undefined ? undefined : JSON.stringify(body),
          signal: AbortSignal.timeout(10_000),
        });
        if (response.status >= 500) {
          this.errors5xx++;
          this.fiveXX.push(`${method} ${path} ${response.status} ${await response.text()}`);
          await sleep(200);
          continue;
        }
        return response;
      } catch (error) {
        // Connection refused or reset: the runtime was killed. The caller's request is retried.
        if (attempt > 300) throw error;
        await sleep(100);
      }
    }
  };
}
