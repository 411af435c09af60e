// An app group: the processes of one app root, its queue of waiting requests,
// and its spawn state. Invariants are listed in invariants.ts.
import type { GroupOptions } from '../config';
import { PassengerError } from '../errors';
import { AppProcess } from './process';
import { isStableUptime, spawnDelay } from './restart-policy';
import { leastBusy } from './routing';
import type { Pool } from './pool';

/** Called once with the process that took the request's session, or with why none will. */
export type Waiter = (err: Error | null, proc: AppProcess | null) => void;

export class Group {
  /** Alive and shutting-down processes, oldest first. */
  readonly processes: AppProcess[] = [];
  readonly queue: Waiter[] = [];
  spawning = 0;
  spawnFailures = 0;
  lastSpawnError: Error | null = null;
  /** Earliest time the next spawn may start (backoff after failures). */
  nextSpawnAt = 0;
  private retryTimer: NodeJS.Timeout | null = null;

  constructor(
    readonly pool: Pool,
    readonly name: string,
    public options: GroupOptions,
  ) {}

  get appRoot(): string {
    return this.options.appRoot;
  }

  /** Processes that take new sessions. */
  enabledCount(): number {
    let n = 0;
    for (const p of this.processes) if (p.life === 'alive' && p.enabled === 'enabled') n++;
    return n;
  }

  /** The fast path: a session on the least-busy process, or null when the request must wait. */
  checkout(): AppProcess | null {
    if (this.queue.length > 0) return null; // first come, first served
    const p = leastBusy(this.processes, this.options.maxConcurrency);
    if (p !== null) p.sessions++;
    return p;
  }

  /** The slow path: wait in the group's queue for the first process with room. */
  wait(waiter: Waiter): void {
    if (this.backingOff() && this.enabledCount() === 0 && this.spawning === 0 && this.lastSpawnError) {
      waiter(this.lastSpawnError, null);
      return;
    }
    const limit = this.options.maxRequestQueueSize;
    if (limit > 0 && this.queue.length >= limit) {
      waiter(new PassengerError('E_QUEUE_FULL', `the request queue of ${this.name} is full (${limit} waiting)`), null);
      return;
    }
    this.queue.push(waiter);
    this.pump();
    this.pool.spawnIfNeeded(this);
  }

  /** Ends a session: the process is free for the next request. */
  release(p: AppProcess): void {
    p.sessions--;
    p.processed++;
    p.lastUsed = this.pool.now();
    if (p.life === 'shuttingDown') {
      if (p.sessions === 0) this.stopProcess(p);
      return;
    }
    const max = this.options.maxRequests;
    if (max > 0 && p.processed >= max) {
      this.pool.log.info(`process ${p.pid} of ${this.name} served ${p.processed} requests (max_requests ${max}): replacing it`);
      this.detach(p);
      return;
    }
    if (this.queue.length > 0) this.pump();
  }

  /** Hands queued requests to processes with room, oldest request first. */
  pump(): void {
    while (this.queue.length > 0) {
      const p = leastBusy(this.processes, this.options.maxConcurrency);
      if (p === null) return;
      p.sessions++;
      const w = this.queue.shift() as Waiter;
      w(null, p);
    }
  }

  /**
   * Takes a process out of rotation; it is stopped once its sessions end.
   * Safe to call twice. Returns false if it was already leaving.
   */
  detach(p: AppProcess): boolean {
    if (p.life !== 'alive') return false;
    p.life = 'shuttingDown';
    p.enabled = 'disabled';
    if (p.sessions === 0) this.stopProcess(p);
    this.pool.spawnIfNeeded(this);
    return true;
  }

  private stopProcess(p: AppProcess): void {
    p.handle.stop(this.pool.stopGraceMs).catch((e: Error) => this.pool.log.warn(`stopping process ${p.pid}: ${e.message}`));
  }

  /** The process has exited, expectedly or not. */
  onExit(p: AppProcess, code: number | null, signal: string | null): void {
    const wasAlive = p.life === 'alive';
    p.life = 'dead';
    p.enabled = 'disabled';
    const i = this.processes.indexOf(p);
    if (i !== -1) this.processes.splice(i, 1);
    if (wasAlive) {
      const uptime = this.pool.now() - p.spawnedAt;
      this.pool.log.warn(`process ${p.pid} of ${this.name} exited unexpectedly (${signal ? `signal ${signal}` : `exit code ${code}`}) after ${Math.round(uptime / 1000)} s; replacing it`);
      if (!isStableUptime(uptime)) this.noteSpawnFailure(new PassengerError('E_SPAWN', `the app exited ${Math.round(uptime / 1000)} s after it started`));
    } else {
      this.pool.log.info(`process ${p.pid} of ${this.name} stopped (${signal ? `signal ${signal}` : `exit code ${code}`})`);
    }
    this.pool.events.processRemoved(p);
    this.pool.spawnAll();
  }

  onSpawned(p: AppProcess): void {
    this.processes.push(p);
    this.pump();
  }

  noteSpawnFailure(err: Error): void {
    this.spawnFailures++;
    this.lastSpawnError = err;
    this.nextSpawnAt = this.pool.now() + spawnDelay(this.spawnFailures);
  }

  noteStable(): void {
    this.spawnFailures = 0;
    this.nextSpawnAt = 0;
  }

  backingOff(): boolean {
    return this.pool.now() < this.nextSpawnAt;
  }

  /** Rejects every waiting request (a spawn failed and nothing else will serve them soon). */
  failQueue(err: Error): void {
    const waiting = this.queue.splice(0);
    for (const w of waiting) w(err, null);
  }

  /** Arms one timer for the end of the current backoff. */
  scheduleRetry(): void {
    if (this.retryTimer) return;
    const delay = Math.max(0, this.nextSpawnAt - this.pool.now());
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.pool.spawnIfNeeded(this);
    }, delay);
    this.retryTimer.unref();
  }

  cancelTimers(): void {
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
  }

  /** How many more processes this group wants right now (before pool limits). */
  wanted(): number {
    const live = this.enabledCount() + this.spawning;
    let want = Math.max(0, this.options.minInstances - live);
    // Requests wait and no process has room: one more process, unless one is on its way.
    if (this.queue.length > 0 && this.spawning === 0 && leastBusy(this.processes, this.options.maxConcurrency) === null) want = Math.max(want, 1);
    return want;
  }
}
