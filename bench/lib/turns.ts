/**
 * Compared scenarios take turns: every target is up, and run by run each is
 * measured in turn (floor, peer, us; us, peer, floor; ...), so a slow minute
 * on a shared machine falls on each of them alike.
 */

/**
 * `runs` rounds of `measure`, each round visiting every target in turn; the
 * results by target. Every other round goes the other way (floor, peer, us;
 * then us, peer, floor): whatever a place in the order costs or gains (the
 * machine's drift within a round, what the runs before leave behind) falls
 * on each target alike, where a fixed order always gave it to the last one
 * (since session 20). Before each measured run, `quiet` waits until every
 * target is idle: the previous run's leftover work (our metrics push, a
 * collection in the last target measured) must not fall into the next
 * target's run.
 */
export async function inTurns<K, T, R>(
  targets: ReadonlyMap<K, T>,
  runs: number,
  measure: (target: T) => Promise<R>,
  quiet: (targets: readonly T[]) => Promise<void>,
): Promise<Map<K, R[]>> {
  const results = new Map<K, R[]>([...targets.keys()].map((name) => [name, []]));
  const order = [...targets];
  for (let run = 0; run < runs; run++)
    for (const [name, target] of run % 2 === 0 ? order : [...order].reverse()) {
      await quiet([...targets.values()]);
      results.get(name)?.push(await measure(target));
    }
  return results;
}

/** The result with the median `key` (the lower middle of an even count). */
export function median<T>(results: readonly T[], key: (result: T) => number): T {
  if (results.length === 0) throw new Error("median of no results");
  const sorted = [...results].sort((a, b) => key(a) - key(b));
  return sorted[Math.floor((sorted.length - 1) / 2)] as T;
}
