// An app group: the processes of one app root, its queue of waiting requests,
// its spawn state, and restarts. Invariants are listed in invariants.ts.
import type { GroupOptions } from '../config';
import { PassengerError } from '../errors';
import { AppProcess, type ProcessReport } from './process';
import { spawnDelay } from './restart-policy';
import { drainMs, leaveTimeoutMs } from './stop-policy';
import { leastBusy } from './routing';
import type { Pool } from './pool';

/** What a request gets that no process will serve any more: the server stops. */
export function shuttingDown(): PassengerError {
  return new PassengerError('E_SHUTTING_DOWN', 'the server is shutting down');
}

/** Called once with the process that took the request's session, or with why none will. */
export type Waiter = (err: Error | null, proc: AppProcess | null) => void;

/** A request's place in the group's queue: cancel() gives it up (the client left). Safe to call twice, or after it was served. */
export class QueueTicket {
  timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly group: Group,
    readonly fn: Waiter,
    readonly since: number,
  ) {}

  cancel(): void {
    this.group.cancelWait(this);
  }
}


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
    for (const p of this.processes) if (p.life === 'alive' && p.enabled === 'enabled') n++;
    return n;
  }

  /** Enabled processes that are not waiting for a replacement: what min_instances counts. */
  private lastingCount(): number {
    let n = 0;
    for (const p of this.processes) if (p.life === 'alive' && p.enabled === 'enabled' && !p.replacing) n++;
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

  /** The slow path: wait in the group's queue for the first process with room. */
  wait(fn: Waiter): QueueTicket | null {
    this.lastWanted = this.pool.now();
    // A request retried while the server stops (its process left under it): nothing will serve it.
    if (this.pool.closing) {
      fn(shuttingDown(), null);
      return null;
    }
    if (this.backingOff() && this.enabledCount() === 0 && this.spawning === 0 && this.lastSpawnError) {
      fn(this.lastSpawnError, null);
      return null;
    }
    const limit = this.options.maxRequestQueueSize;
    if (limit > 0 && this.queue.length >= limit) {
      fn(new PassengerError('E_QUEUE_FULL', `the request queue of ${this.name} is full (${limit} waiting)`), null);
      return null;
    }
    const entry = new QueueTicket(this, fn, this.pool.now());
    const maxWait = this.options.maxRequestQueueTime;
    if (maxWait > 0) {
      entry.timer = setTimeout(() => {
        entry.timer = null;
        if (this.removeFromQueue(entry)) {
          fn(new PassengerError('E_QUEUE_TIMEOUT', `the request waited ${maxWait} s for a process of ${this.name} (max_request_queue_time)`), null);
          this.notifyChange();
        }
      }, maxWait * 1000);
    }
    this.queue.push(entry);
    if (this.pool.selfCheck) this.pool.checkSoon();
    this.pump();
    this.pool.spawnIfNeeded(this);
    return entry;
  }

  /** The request left before it got a process (the client went away). */
  cancelWait(entry: QueueTicket): void {
    if (this.removeFromQueue(entry)) this.notifyChange();
  }

  private removeFromQueue(entry: QueueTicket): boolean {
    const i = this.queue.indexOf(entry);
    if (i === -1) return false;
    this.queue.splice(i, 1);
    if (entry.timer) clearTimeout(entry.timer);
    entry.timer = null;
    if (this.pool.selfCheck) this.pool.checkSoon();
    return true;
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
    if (max > 0 && p.processed + p.sessions >= max && !p.replacing && !this.options.directMode) {
      this.pool.log.info(`process ${p.pid} of ${this.name} took its last request (max_requests ${max}): replacing it`);
      this.replace(p, true);
    }
  }

  /** Nothing keeps a leaving process: no request in flight, no open WebSocket. */
  private drained(p: AppProcess): boolean {
    return p.sessions === 0 && p.websockets === 0;
  }

  /** Ends a session: the process is free for the next request. */
  release(p: AppProcess): void {
    p.sessions--;
    p.processed++;
    p.lastUsed = this.pool.now();
    if (this.pool.selfCheck) this.pool.checkSoon();
    if (p.life === 'shuttingDown') {
      if (this.drained(p)) this.stopProcess(p);
      return;
    }
    if (this.alwaysRestart && !p.replacing) {
      // Every request gets a process that started after it: no reuse at all.
      this.detach(p);
    }
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
    if (p.life === 'shuttingDown' && this.drained(p)) this.stopProcess(p);
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
   * Takes a process out of rotation at once: it takes no new request or
   * upgrade. Its WebSockets are closed now (abort_websockets_on_process_shutdown)
   * or left to end by themselves; once its requests and sockets are done, or
   * after `drainMs` at the latest, it is told to leave (see stopProcess).
   * Safe to call twice. Returns false if it was already leaving.
   */
  detach(p: AppProcess, drainMs = this.drainMs()): boolean {
    if (p.life !== 'alive') return false;
    p.life = 'shuttingDown';
    p.enabled = 'disabled';
    // It leaves: whatever replacement it waited for, it waits no more.
    p.replacing = false;
    if (this.pool.selfCheck) this.pool.checkSoon();
    this.pool.events.processLeaving(p);
    // In direct mode the process drains its own connections once told to leave.
    if (this.drained(p) || this.options.directMode) this.stopProcess(p);
    else {
      p.drainTimer = setTimeout(() => {
        p.drainTimer = null;
        this.pool.log.warn(`process ${p.pid} of ${this.name} still had ${p.sessions} request(s) and ${p.websockets} WebSocket(s) after ${drainMs / 1000} s; telling it to leave`);
        this.stopProcess(p);
      }, drainMs);
      p.drainTimer.unref();
    }
    this.pool.spawnIfNeeded(this);
    this.notifyChange();
    return true;
  }

  /** A process already leaving is told to leave within `drainMs` (the server stops). */
  hurry(p: AppProcess, drainMs: number): void {
    if (p.life !== 'shuttingDown' || p.drainTimer === null) return;
    clearTimeout(p.drainTimer);
    p.drainTimer = setTimeout(() => this.stopProcess(p), drainMs);
    p.drainTimer.unref();
    if (this.pool.selfCheck) this.pool.checkSoon();
  }

  /**
   * Replaces a process gracefully: when the pool has room a new process is
   * spawned first and this one keeps serving until it is up; otherwise this
   * one drains and stops now and the replacement follows.
   */
  replace(p: AppProcess, disableNow = false): void {
    if (p.life !== 'alive' || p.replacing) return;
    p.replacing = true;
    if (this.pool.selfCheck) this.pool.checkSoon();
    // It takes nothing new meanwhile (max_requests): requests wait for the replacement.
    if (disableNow) p.enabled = 'disabled';
    const before = this.spawning;
    this.pool.spawnIfNeeded(this);
    if (this.spawning === before) this.detach(p);
  }

  /** How long a process of this group gets to exit by itself once told to leave (shutdown_timeout), capped while the pool closes. */
  shutdownTimeoutMs(): number {
    return leaveTimeoutMs(this.options.shutdownTimeout, this.pool.shutdownCapMs);
  }

  /** How long a leaving process's requests run before it is told to leave anyway: shutdown_timeout, or the stop's drain window. */
  drainMs(): number {
    return Math.min(drainMs(this.options.shutdownTimeout, this.pool.closing), this.shutdownTimeoutMs());
  }

  /** Tells the process to leave: its app's own shutdown runs, KILL after shutdown_timeout. */
  private stopProcess(p: AppProcess): void {
    if (p.drainTimer) clearTimeout(p.drainTimer);
    p.drainTimer = null;
    if (this.pool.selfCheck) this.pool.checkSoon();
    // At a stop, a process in direct mode drains its own requests for the stop's drain window.
    p.handle.stop(this.shutdownTimeoutMs(), this.pool.closing ? this.drainMs() : undefined).catch((e: Error) => this.pool.log.warn(`stopping process ${p.pid}: ${e.message}`));
  }

  /**
   * A replacement failed to start: processes that stopped taking requests
   * for it (max_requests) serve again meanwhile, rather than leave the app
   * with none; they still leave once a replacement is up.
   */
  replacementFailed(): void {
    for (const p of this.processes) {
      if (p.life === 'alive' && p.replacing && p.enabled === 'disabled') {
        p.enabled = 'enabled';
        this.pool.log.warn(`process ${p.pid} of ${this.name} serves on until a replacement starts`);
      }
    }
    // A process that serves again takes the requests that waited for the replacement.
    if (this.queue.length > 0) this.pump();
    if (this.pool.selfCheck) this.pool.checkSoon();
  }

  /** The process has exited, expectedly or not. */
  onExit(p: AppProcess, code: number | null, signal: string | null): void {
    const wasAlive = p.life === 'alive';
    p.life = 'dead';
    p.enabled = 'disabled';
    p.replacing = false;
    if (p.drainTimer) clearTimeout(p.drainTimer);
    p.drainTimer = null;
    if (this.pool.selfCheck) this.pool.checkSoon();
    const i = this.processes.indexOf(p);
    if (i !== -1) this.processes.splice(i, 1);
    const how = signal ? `signal ${signal}` : `exit code ${code}`;
    if (wasAlive) {
      // A crash, not a failed start: it was up (only a process that passed its
      // readiness joins the group). It is replaced at once and waiting requests
      // go to the replacement; backoff is for apps that cannot start, and a
      // process killed soon after its start says nothing about that.
      const uptime = this.pool.now() - p.spawnedAt;
      this.pool.log.warn(`process ${p.pid} of ${this.name} exited unexpectedly (${how}) after ${Math.round(uptime / 1000)} s; replacing it`);
    } else {
      this.pool.log.info(`process ${p.pid} of ${this.name} stopped (${how})`);
    }
    p.resolveExited();
    this.pool.events.processRemoved(p);
    this.pool.spawnAll();
    this.notifyChange();
  }

  /** Direct mode: the process's own counters of the requests it accepted. */
  onReport(p: AppProcess, r: ProcessReport): void {
    p.sessions = r.sessions;
    p.processed = r.processed;
    p.lastUsed = Math.max(p.lastUsed, r.lastUsed);
    if (this.pool.selfCheck) this.pool.checkSoon();
    if (p.life !== 'alive') return;
    const max = this.options.maxRequests;
    if (max > 0 && p.processed >= max && !p.replacing) {
      this.pool.log.info(`process ${p.pid} of ${this.name} served ${p.processed} requests (max_requests ${max}): replacing it`);
      this.replace(p);
      return;
    }
    const at = this.options.scaleAtSessions;
    if (at > 0 && p.sessions >= at && this.spawning === 0) this.pool.spawnIfNeeded(this);
  }

  onSpawned(p: AppProcess): void {
    this.spawnCount++;
    this.processes.push(p);
    if (this.pool.selfCheck) this.pool.checkSoon();
    // A process waiting for its replacement can go now.
    const old = this.processes.find((x) => x.replacing && x.life === 'alive');
    if (old) this.detach(old);
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

  /** Rejects every waiting request (a spawn failed and nothing else will serve them soon). */
  failQueue(err: Error): void {
    const waiting = this.queue.splice(0);
    if (this.pool.selfCheck) this.pool.checkSoon();
    for (const e of waiting) {
      if (e.timer) clearTimeout(e.timer);
      e.fn(err, null);
    }
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
    for (const p of this.processes) if (p.replacing && p.life === 'alive') want = Math.max(want, 1 - this.spawning);
    return want;
  }

  private allBusierThan(n: number): boolean {
    for (const p of this.processes) if (p.life === 'alive' && p.enabled === 'enabled' && p.sessions < n) return false;
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

  /**
   * Restarts every process of the group. All at once: each old process drains
   * and stops while new ones start. Rolling: one at a time, each old process
   * leaving only once its replacement serves (or, with a full pool, right
   * before it). Resolves when no old process is left; rejects if a new
   * process fails to start, or the options cannot be read again (the old
   * ones left keep serving).
   */
  async restart(rolling: boolean): Promise<void> {
    // New processes start with the options as they are now; old ones keep serving if they cannot be read.
    if (this.pool.reloadOptions) this.options = this.pool.reloadOptions(this);
    const old = this.processes.filter((p) => p.life === 'alive');
    const failuresBefore = this.spawnFailures;
    const check = (): void => {
      if (this.spawnFailures > failuresBefore && this.lastSpawnError) throw this.lastSpawnError;
    };
    if (!rolling) {
      for (const p of old) this.detach(p);
      await Promise.all(old.map((p) => p.exited));
      while (this.lastingCount() < Math.max(1, Math.min(this.options.minInstances, this.pool.maxPoolSize))) {
        check();
        await this.changed();
      }
      return;
    }
    for (const p of old) {
      if (p.life !== 'alive') continue;
      const spawnedBefore = this.spawnCount;
      this.replace(p);
      while ((p.life as string) !== 'dead' || (this.spawnCount === spawnedBefore && this.lastingCount() < Math.min(old.length, this.options.minInstances))) {
        check();
        await this.changed();
      }
    }
  }
}
