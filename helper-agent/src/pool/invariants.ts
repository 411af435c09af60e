// The pool's rules as executable checks. Unit tests call verifyInvariants()
// after every step; with PASSENGER_SELF_CHECK=1 the agent runs it after every
// change of a group (Pool.checkSoon).
import type { Pool } from './pool';
import { leastBusy } from './choose-process';

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
      // In direct mode the process reports what it accepted itself: no limit of the agent's applies.
      if (max > 0 && p.sessions > max && !g.options.directMode) fail(`${g.name}: process ${p.pid} has ${p.sessions} sessions > limit ${max}`);
      if (p.life === 'dead') fail(`${g.name}: dead process ${p.pid} still listed`);
      // Only a process that serves waits for its replacement; one that leaves waits for nothing, and knows why it leaves.
      if (p.replacement !== null && p.life !== 'alive') fail(`${g.name}: process ${p.pid} waits for a replacement but is ${p.life}`);
      if (p.life !== 'alive' && p.leaveReason === null) fail(`${g.name}: process ${p.pid} is ${p.life} for no reason`);
      // A draining process still has requests or WebSockets, and a timer that bounds its drain; no other has a drain timer.
      if (p.life === 'draining' && (p.drainTimer === null || (p.sessions === 0 && p.websockets === 0))) {
        fail(`${g.name}: process ${p.pid} is draining with ${p.sessions} sessions and ${p.websockets} WebSockets, ${p.drainTimer === null ? 'without' : 'with'} a drain timer`);
      }
      if (p.life !== 'draining' && p.drainTimer !== null) fail(`${g.name}: process ${p.pid} has a drain timer but is ${p.life}`);
    }
    // Queue non-empty implies: nobody has room, and a spawn is under way, or the pool is full, or spawning backs off
    // (or its retry is due: the timer that ends the backoff may fire a little late).
    if (g.queue.length > 0) {
      if (leastBusy(g.processes, max) !== null) fail(`${g.name}: ${g.queue.length} waiting while a process has room`);
      if (g.spawning === 0 && pool.capacityUsed() < pool.maxPoolSize && !g.backingOff() && !g.retryPending()) fail(`${g.name}: requests wait but nothing is being spawned`);
    }
  }
}
