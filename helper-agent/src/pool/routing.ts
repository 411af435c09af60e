// Choosing the process for a request: a pure function, processes in, choice out.
import type { AppProcess } from './process';

/**
 * The enabled process with the fewest active sessions that still has room.
 * Ties go to the process used least recently, so idle processes take turns
 * instead of the first one taking all light traffic and the others going cold
 * (and being shut down as idle while the first one is busy).
 * Returns null when every process is at its limit (or there is none).
 */
export function leastBusy(processes: readonly AppProcess[], maxConcurrency: number): AppProcess | null {
  let best: AppProcess | null = null;
  for (let i = 0; i < processes.length; i++) {
    const p = processes[i];
    if (!p.hasCapacity(maxConcurrency)) continue;
    if (best === null || p.sessions < best.sessions || (p.sessions === best.sessions && p.lastUsed < best.lastUsed)) best = p;
  }
  return best;
}
