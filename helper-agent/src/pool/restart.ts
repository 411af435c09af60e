// Restarting a group's processes (restart.txt, passenger-config restart-app):
// all at once, or rolling. Group.restart() runs one at a time.
import type { Group } from './group';
import { retire } from './leaving';

/**
 * All at once: each old process drains and leaves while new ones start.
 * Rolling: one at a time, each old process leaving only once its
 * replacement serves (or, with a full pool, right before it). Resolves when
 * no old process is left; rejects if a new process fails to start, or the
 * options cannot be read again (the old ones left keep serving).
 */
export async function restartGroup(g: Group, rolling: boolean): Promise<void> {
  // New processes start with the options as they are now; old ones keep serving if they cannot be read.
  if (g.pool.reloadOptions) g.options = g.pool.reloadOptions(g);
  const old = g.processes.filter((p) => p.life === 'alive');
  const failuresBefore = g.spawnFailures;
  const check = (): void => {
    if (g.spawnFailures > failuresBefore && g.lastSpawnError) throw g.lastSpawnError;
  };
  if (!rolling) {
    for (const p of old) retire(g, p, 'restart');
    await Promise.all(old.map((p) => p.exited));
    while (g.lastingCount() < Math.max(1, Math.min(g.options.minInstances, g.pool.maxPoolSize))) {
      check();
      await g.changed();
    }
    return;
  }
  for (const p of old) {
    if (p.life !== 'alive') continue;
    const spawnedBefore = g.spawnCount;
    retire(g, p, 'rolling_restart');
    while ((p.life as string) !== 'dead' || (g.spawnCount === spawnedBefore && g.lastingCount() < Math.min(old.length, g.options.minInstances))) {
      check();
      await g.changed();
    }
  }
}
