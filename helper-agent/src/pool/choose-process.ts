// Choosing the process for a request: a pure function, processes in, choice out.
import type { AppProcess } from './process';

/**
 * The enabled process with the fewest active sessions that still has room.
 * Open WebSockets only break ties (so new sockets spread over the processes
 * instead of piling onto the oldest): an idle socket costs next to nothing,
 * so a process holding many still takes requests first when it has fewer in
 * flight. Remaining ties go to the oldest process: light traffic stays on few
 * processes, so the ones spawned for a burst go idle afterwards and
 * pool_idle_time reaps them.
 * Returns null when every process is at its limit (or there is none).
 * `exclude`: a process a retried request just failed on, if others can take it.
 */
export function leastBusy(processes: readonly AppProcess[], maxConcurrency: number, exclude: AppProcess | null = null): AppProcess | null {
  let best: AppProcess | null = null;
  for (let i = 0; i < processes.length; i++) {
    const p = processes[i];
    if (p === exclude || !p.hasCapacity(maxConcurrency)) continue;
    if (best === null || p.sessions < best.sessions || (p.sessions === best.sessions && p.websockets < best.websockets)) best = p;
  }
  return best;
}
