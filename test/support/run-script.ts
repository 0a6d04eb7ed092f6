/** Runs a Node script (an example, one of `scripts/`) as a user would, collecting what it prints. */
import { spawn } from "node:child_process";

/** What the script printed (stdout and stderr) so far, and its exit code. */
export interface ScriptRun {
  output: string;
  exited: Promise<number | null>;
  /** Stops it (SIGTERM), for a script that runs until stopped. */
  stop: () => void;
}

export function runScript(
  file: string,
  env: Record<string, string>,
  args: string[] = [],
): ScriptRun {
  const child = spawn(process.execPath, [file, ...args], {
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const run: ScriptRun = {
    output: "",
    exited: new Promise((resolve) => child.on("exit", resolve)),
    stop: () => child.kill(),
  };
  const collect = (chunk: Buffer) => {
    run.output += chunk.toString();
  };
  child.stdout.on("data", collect);
  child.stderr.on("data", collect);
  return run;
}
