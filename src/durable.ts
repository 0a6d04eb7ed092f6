/** Typed access to the Durable Object namespaces. */

/** The stub type of a Durable Object binding of Env. */
export type DurableObjectStubOf<K extends "CRAFTING_SESSION"> =
  Env[K] extends DurableObjectNamespace<infer T> ? DurableObjectStub<T> : never;

/** The session object for an id; one object per session id, the world over. */
export function sessionStub(env: Env, sessionId: string): DurableObjectStubOf<"CRAFTING_SESSION"> {
  return env.CRAFTING_SESSION.getByName(sessionId);
}
