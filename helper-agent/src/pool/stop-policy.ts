// Every grace period of a process's end and of a server stop, in one place.
// README.md ("When a process leaves") has the same table in the users' words;
// the Node loader, which imports nothing of ours, is handed its share through
// its environment and the leave message (spawn/spawner.ts).

/**
 * At a server stop, how long requests in flight run before their processes
 * are told to leave anyway (the stop's drain window). Long enough for an
 * ordinary slow request; shorter than the interval at which long polls are
 * answered (socket.io: 25 s), which would otherwise hold every stop.
 */
export const STOP_DRAIN_MS = 10_000;

/** After SIGKILL, how long to wait for the exit to be seen. */
export const KILL_WAIT_MS = 5_000;

/** At a stop, once every process is gone: how long responses still being written get to go out. */
export const STOP_FLUSH_MS = 1_000;

/** The core's own last resort past the drain window and shutdown_timeout: covers KILL_WAIT_MS and the flush. */
const CORE_MARGIN_MS = KILL_WAIT_MS + STOP_FLUSH_MS + 2_000;

/** The watchdog waits longer than the core's own bound before it kills a stopping core (it never should). */
const WATCHDOG_MARGIN_MS = CORE_MARGIN_MS + 7_000;

/** A process told to leave, before SIGKILL: its group's shutdown_timeout, cut to `capMs` while the server stops. */
export function leaveTimeoutMs(shutdownTimeoutS: number, capMs = Infinity): number {
  return Math.min(shutdownTimeoutS * 1000, capMs);
}

/** A leaving process's requests in flight, before it is told to leave anyway: shutdown_timeout, or the stop's drain window. */
export function drainMs(shutdownTimeoutS: number, stopping: boolean): number {
  return stopping ? Math.min(STOP_DRAIN_MS, shutdownTimeoutS * 1000) : shutdownTimeoutS * 1000;
}

/** Direct mode: the process drains its own connections for half its time to leave (the rest is for the app's shutdown). */
export function directDrainMs(leaveMs: number): number {
  return leaveMs / 2;
}

/** How long the core lets a whole stop take before it kills what is left and exits. */
export function coreStopBoundMs(shutdownTimeoutS: number): number {
  return STOP_DRAIN_MS + shutdownTimeoutS * 1000 + CORE_MARGIN_MS;
}

/** How long the watchdog lets a stopping core take before it kills it: longer than the core's own bound. */
export function watchdogStopBoundMs(shutdownTimeoutS: number): number {
  return STOP_DRAIN_MS + shutdownTimeoutS * 1000 + WATCHDOG_MARGIN_MS;
}
