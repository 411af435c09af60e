// The pool's rules as executable checks. Tests call verifyInvariants() after every step.
import type { Pool } from './pool';
import { leastBusy } from './routing';

export function verifyInvariants(pool: Pool): void {
  const fail = (msg: string): never => { throw new Error(`pool invariant violated: ${msg}`); };
  // The process limit holds across all groups.
  if (pool.capacityUsed() > pool.maxPoolSize) fail(`${pool.capacityUsed()} processes (incl. spawning) > max_pool_size ${pool.maxPoolSize}`);
  for (const g of pool.groups.values()) {
    if (g.spawning < 0) fail(`${g.name}: negative spawning count`);
    const max = g.options.maxConcurrency;
    for (const p of g.processes) {
      if (p.sessions < 0) fail(`${g.name}: process ${p.pid} has ${p.sessions} sessions`);
      if (p.websockets < 0) fail(`${g.name}: process ${p.pid} has ${p.websockets} WebSockets`);
      if (max > 0 && p.sessions > max) fail(`${g.name}: process ${p.pid} has ${p.sessions} sessions > limit ${max}`);
      if (p.life === 'dead') fail(`${g.name}: dead process ${p.pid} still listed`);
      if (p.life === 'shuttingDown' && p.enabled === 'enabled') fail(`${g.name}: process ${p.pid} shutting down but enabled`);
    }
    // Queue non-empty implies: nobody has room, and a spawn is under way, or the pool is full, or spawning backs off.
    if (g.queue.length > 0) {
      if (leastBusy(g.processes, max) !== null) fail(`${g.name}: ${g.queue.length} waiting while a process has room`);
      if (g.spawning === 0 && pool.capacityUsed() < pool.maxPoolSize && !g.backingOff()) fail(`${g.name}: requests wait but nothing is being spawned`);
    }
  }
}
