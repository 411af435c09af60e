// An app group: the processes of one app root, its queue of waiting requests,
// its spawn state, and restarts. How its processes leave is in leaving.ts,
// restarts in restart.ts; invariants are listed in invariants.ts.
import type { GroupOptions } from '../config';
import { drainedNow, exited, replacementUp, retire } from './leaving';
import { AppProcess, type LeaveReason, type ProcessReport } from './process';
import { dequeue, enqueue, failQueue, type QueueTicket, type Waiter } from './queue';
import { restartGroup } from './restart';
import { spawnDelay } from './spawn-backoff';
import { drainMs, leaveTimeoutMs } from './stop-policy';
import { leastBusy } from './choose-process';
import type { Pool } from './pool';

export { shuttingDown, type QueueTicket, type Waiter } from './queue';

/** Spawns at once for waiting requests, at most. */
export const MAX_PARALLEL_SPAWNS = 4;

export class Group {
  /** Alive and shutting-down processes, oldest first. */
  readonly processes: AppProcess[] = [];
  readonly queue: QueueTicket[] = [];
  spawning = 0;
  spawnFailures = 0;
  lastSpawnError: Error | null = null;
  /** Earliest time the next spawn may start (backoff after failures). */
  nextSpawnAt = 0;
  /** Processes ever spawned for this group. */
  spawnCount = 0;
  /** tmp/always_restart.txt exists: a process serves one request, then leaves. */
  alwaysRestart = false;
  /** When a request last had to wait for this group (or its creation): what forgetting an idle group goes by. */
  lastWanted: number;
  /** Dropped from the pool (Pool.forgetIdle): whoever still holds it must ask the pool again. */
  forgotten = false;
  private retryTimer: NodeJS.Timeout | null = null;
  private changeListeners: (() => void)[] = [];
  /** The restart under way (settles, never rejects): a restart asked meanwhile runs after it, never interleaved. */
  private restarting: Promise<void> | null = null;

  constructor(
    readonly pool: Pool,
    readonly name: string,
    public options: GroupOptions,
  ) {
    this.lastWanted = pool.now();
  }

  get appRoot(): string {
    return this.options.appRoot;
  }

  /** Processes that take new sessions. */
  enabledCount(): number {
    let n = 0;
    for (const p of this.processes) if (p.enabled) n++;
    return n;
  }

  /** Alive processes that are not waiting for a replacement: what min_instances counts. */
  lastingCount(): number {
    let n = 0;
    for (const p of this.processes) if (p.life === 'alive' && p.replacement === null) n++;
    return n;
  }

  /**
   * The fast path: a session on the least-busy process, or null when the
   * request must wait. A retried request avoids the process it just failed
   * on (a dead process looks idle until its exit is noticed) if another can take it.
   */
  checkout(avoid: AppProcess | null = null): AppProcess | null {
    if (this.queue.length > 0) return null; // first come, first served
    const p = (avoid !== null ? leastBusy(this.processes, this.options.maxConcurrency, avoid) : null) ?? leastBusy(this.processes, this.options.maxConcurrency);
    if (p === null) return null;
    this.took(p);
    // Every process busier than the threshold: one more process (Node apps
    // scale with load, not only with a forced concurrency).
    const at = this.options.scaleAtSessions;
    if (at > 0 && p.sessions === at && this.spawning === 0) this.pool.spawnIfNeeded(this);
    return p;
  }

  /** Takes a session on this particular process if it has room (sticky sessions). */
  checkoutOn(p: AppProcess): boolean {
    if (p.group !== this || this.queue.length > 0 || !p.hasCapacity(this.options.maxConcurrency)) return false;
    this.took(p);
    return true;
  }

  /** The slow path: wait in the group's queue for the first process with room (queue.ts). */
  wait(fn: Waiter): QueueTicket | null {
    return enqueue(this, fn);
  }

  /** The request left before it got a process (the client went away). */
  cancelWait(entry: QueueTicket): void {
    if (dequeue(this, entry)) this.notifyChange();
  }

  /**
   * A session starts on `p`. max_requests counts the requests a process took,
   * not those it finished: the one that reaches the limit is its last, and
   * the process takes nothing more while its replacement starts.
   */
  private took(p: AppProcess): void {
    p.sessions++;
    if (this.pool.selfCheck) this.pool.checkSoon();
    const max = this.options.maxRequests;
    if (max > 0 && p.processed + p.sessions >= max && p.replacement === null && !this.options.directMode) {
      retire(this, p, 'max_requests', `took its last request (max_requests ${max})`);
    }
  }

  /** Ends a session: the process is free for the next request. */
  release(p: AppProcess): void {
    p.sessions--;
    p.processed++;
    p.lastUsed = this.pool.now();
    if (this.pool.selfCheck) this.pool.checkSoon();
    if (p.life !== 'alive') {
      drainedNow(this, p);
      return;
    }
    // Every request gets a process that started after it: no reuse at all.
    if (this.alwaysRestart) retire(this, p, 'always_restart');
    if (this.queue.length > 0) this.pump();
  }

  /**
   * The app answered a session's request with 101: the request is over (as
   * release() counts it) and the connection lives on as a WebSocket.
   */
  upgraded(p: AppProcess): void {
    p.websockets++;
    this.release(p);
  }

  /** A WebSocket on the process closed. */
  websocketClosed(p: AppProcess): void {
    p.websockets--;
    p.lastUsed = this.pool.now();
    if (this.pool.selfCheck) this.pool.checkSoon();
    drainedNow(this, p);
  }

  /** Hands queued requests to processes with room, oldest request first. */
  pump(): void {
    while (this.queue.length > 0) {
      const p = leastBusy(this.processes, this.options.maxConcurrency);
      if (p === null) return;
      this.took(p);
      const entry = this.queue.shift() as QueueTicket;
      if (entry.timer) clearTimeout(entry.timer);
      entry.fn(null, p);
    }
  }

  /**
   * Takes a process out, for `reason`: replaced first or leaving now, as the
   * reason says (leaving.ts). Every such decision comes through here, so the
   * log and passenger-status can say why. Returns false if it already left.
   */
  retire(p: AppProcess, reason: LeaveReason, why?: string): boolean {
    return retire(this, p, reason, why);
  }

  /** How long a process of this group gets to exit by itself once told to leave (shutdown_timeout), capped while the pool closes. */
  shutdownTimeoutMs(): number {
    return leaveTimeoutMs(this.options.shutdownTimeout, this.pool.shutdownCapMs);
  }

  /** How long a leaving process's requests run before it is told to leave anyway: shutdown_timeout, or the stop's drain window. */
  drainMs(): number {
    return Math.min(drainMs(this.options.shutdownTimeout, this.pool.closing), this.shutdownTimeoutMs());
  }

  /** The process has exited, expectedly or not. */
  onExit(p: AppProcess, code: number | null, signal: string | null): void {
    exited(this, p, code, signal);
  }

  /** Direct mode: the process's own counters of the requests it accepted. */
  onReport(p: AppProcess, r: ProcessReport): void {
    p.sessions = r.sessions;
    p.processed = r.processed;
    p.lastUsed = Math.max(p.lastUsed, r.lastUsed);
    if (this.pool.selfCheck) this.pool.checkSoon();
    if (p.life !== 'alive') return;
    const max = this.options.maxRequests;
    // Direct mode: the process counts what it accepted itself, and serves on until its replacement is up.
    if (max > 0 && p.processed >= max && p.replacement === null) {
      retire(this, p, 'max_requests', `served ${p.processed} requests (max_requests ${max})`);
      return;
    }
    const at = this.options.scaleAtSessions;
    if (at > 0 && p.sessions >= at && this.spawning === 0) this.pool.spawnIfNeeded(this);
  }

  onSpawned(p: AppProcess): void {
    this.spawnCount++;
    this.processes.push(p);
    if (this.pool.selfCheck) this.pool.checkSoon();
    replacementUp(this);
    this.pump();
    this.notifyChange();
  }

  noteSpawnFailure(err: Error): void {
    this.spawnFailures++;
    this.lastSpawnError = err;
    this.nextSpawnAt = this.pool.now() + spawnDelay(this.spawnFailures);
    if (this.pool.selfCheck) this.pool.checkSoon();
    this.notifyChange();
  }

  noteStable(): void {
    this.spawnFailures = 0;
    this.nextSpawnAt = 0;
    if (this.pool.selfCheck) this.pool.checkSoon();
  }

  backingOff(): boolean {
    return this.pool.now() < this.nextSpawnAt;
  }

  /** Rejects every waiting request (a spawn failed, or the server stops, and nothing else will serve them soon). */
  failQueue(err: Error): void {
    failQueue(this, err);
  }

  /** Arms one timer for the end of the current backoff. */
  scheduleRetry(): void {
    if (this.retryTimer) return;
    const delay = Math.max(0, this.nextSpawnAt - this.pool.now());
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      if (this.pool.selfCheck) this.pool.checkSoon();
      this.pool.spawnIfNeeded(this);
    }, delay);
    this.retryTimer.unref();
  }

  /** A retry at the end of the backoff is armed. */
  retryPending(): boolean {
    return this.retryTimer !== null;
  }

  cancelTimers(): void {
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
  }

  /** How many more processes this group wants right now (before pool limits). */
  wanted(): number {
    const lasting = this.lastingCount();
    let want = Math.max(0, this.options.minInstances - lasting - this.spawning);
    const anyRoom = leastBusy(this.processes, this.options.maxConcurrency) !== null;
    if (this.queue.length > 0 && !anyRoom) {
      // Enough processes for the waiting requests, a few spawns at a time.
      const per = this.options.maxConcurrency > 0 ? this.options.maxConcurrency : this.queue.length;
      want = Math.max(want, Math.min(MAX_PARALLEL_SPAWNS, Math.ceil(this.queue.length / per)) - this.spawning);
    } else if (this.spawning === 0 && this.options.scaleAtSessions > 0 && lasting > 0 && this.allBusierThan(this.options.scaleAtSessions)) {
      want = Math.max(want, 1);
    }
    // Processes waiting for a replacement want one each.
    for (const p of this.processes) if (p.replacement !== null && p.life === 'alive') want = Math.max(want, 1 - this.spawning);
    return want;
  }

  private allBusierThan(n: number): boolean {
    for (const p of this.processes) if (p.enabled && p.sessions < n) return false;
    return true;
  }

  /** Resolves at the next change of processes, spawns or queue. */
  changed(): Promise<void> {
    return new Promise((resolve) => this.changeListeners.push(resolve));
  }

  notifyChange(): void {
    if (this.changeListeners.length === 0) return;
    for (const l of this.changeListeners.splice(0)) l();
  }

  /** A restart is under way (or waits for the one before it). */
  get isRestarting(): boolean {
    return this.restarting !== null;
  }

  /**
   * Restarts every process of the group (restart.ts): all at once, or
   * rolling. A restart asked while one runs (restart.txt touched during a
   * restart-app) waits for it to end, then runs: restarts never interleave.
   */
  restart(rolling: boolean): Promise<void> {
    const run = (this.restarting ?? Promise.resolve()).then(() => restartGroup(this, rolling));
    const settled: Promise<void> = run.then(() => undefined, () => undefined).then(() => {
      if (this.restarting === settled) this.restarting = null;
    });
    this.restarting = settled;
    return run;
  }
}
