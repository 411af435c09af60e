// When to try spawning again after failures: a pure function of the history.

/** Spawn attempts that fail (or processes that die within MIN_UPTIME_MS) count as failures. */
export const MIN_UPTIME_MS = 10_000;
export const BACKOFF_BASE_MS = 500;
export const BACKOFF_CAP_MS = 30_000;

/** Delay before the next spawn after `failures` consecutive failures (0 = none: spawn now). */
export function spawnDelay(failures: number): number {
  if (failures <= 0) return 0;
  return Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** (failures - 1));
}

/** A process that lived this long resets the failure count. */
export function isStableUptime(uptimeMs: number): boolean {
  return uptimeMs >= MIN_UPTIME_MS;
}
