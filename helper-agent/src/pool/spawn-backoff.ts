// When to try spawning again after failures: a pure function of the history.
// Only spawns that fail before the process is up (listening) count: a process
// that was up and dies is a crash, replaced at once (group.ts onExit).

/** A process that lives this long clears its group's failed spawns (and so its backoff). */
export const MIN_UPTIME_MS = 10_000;
export const BACKOFF_BASE_MS = 500;
export const BACKOFF_CAP_MS = 30_000;

/**
 * Delay before the next spawn after `failures` consecutive failures. The first
 * failure is retried at once (a one-off crash should not cost a second of
 * capacity); from the second on the delay doubles up to the cap.
 */
export function spawnDelay(failures: number): number {
  if (failures <= 1) return 0;
  return Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** (failures - 2));
}

/** A process that lived this long resets the failure count. */
export function isStableUptime(uptimeMs: number): boolean {
  return uptimeMs >= MIN_UPTIME_MS;
}

/**
 * Failed spawns retried without a request asking for the app. Past this an
 * app that cannot start waits for the next request (in its group's queue)
 * instead of retrying forever for nobody.
 */
export const UNASKED_RETRIES = 2;

export function retriesUnasked(failures: number): boolean {
  return failures <= UNASKED_RETRIES;
}
