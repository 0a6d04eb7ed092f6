import type { TestProject } from "vitest/node";
import { DevServer } from "../support/dev-server";

declare module "vitest" {
  export interface ProvidedContext {
    baseUrl: string;
  }
}

/** One `wrangler dev` for the end-to-end project, stopped when the run ends. */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const server = new DevServer();
  await server.start();
  project.provide("baseUrl", server.baseUrl);
  return () => server.dispose();
}
