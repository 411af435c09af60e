// The pool: every app group, the process limit across them, and spawning.
// It is driven only through its methods (no HTTP here), so it can be unit
// tested with a fake spawner and re-adopt processes after an agent restart.
import type { GroupOptions } from '../config';
import { Group } from './group';
import { shuttingDown } from './queue';
import { verifyInvariants } from './invariants';
import { hurry, leave, replacementFailed } from './leaving';
import { AppProcess, type LeaveReason, type ProcessHandle } from './process';
import { isStableUptime, retriesUnasked } from './spawn-backoff';

export interface Spawner {
  spawn(options: GroupOptions, processId: number): Promise<ProcessHandle>;
  /** Stops the processes still starting, at shutdown. */
  abortStarting?(): void;
}

export interface PoolLog {
  info(msg: string): void;
  warn(msg: string): void;
  error(msg: string): void;
}

/** What the rest of the agent wants to hear about (transports, instance records). */
export interface PoolEvents {
  processAdded(p: AppProcess): void;
  processRemoved(p: AppProcess): void;
  /** A process stopped taking requests for good (detached): its WebSockets may be closed now. */
  processLeaving(p: AppProcess): void;
}

export interface PoolConfig {
  maxPoolSize: number;
  spawner: Spawner;
  log: PoolLog;
  events?: Partial<PoolEvents>;
  now?: () => number;
  /**
   * Groups made on demand (behind a web server, one per app root a request
   * named) are dropped once they have had no process and no request for
   * their pool_idle_time, so requests naming many roots leave nothing behind.
   */
  forgetIdleGroups?: boolean;
  /**
   * A group's options read afresh when it restarts (its Passengerfile.json,
   * the web server's settings); throws to refuse the restart.
   */
  reloadOptions?: (g: Group) => GroupOptions;
  /** Runs verifyInvariants() once every change of a group is over (PASSENGER_SELF_CHECK=1; the tests set it). */
  selfCheck?: boolean;
}

const noop = (): void => {};

export class Pool {
  readonly groups = new Map<string, Group>();
  readonly log: PoolLog;
  readonly events: PoolEvents;
  readonly now: () => number;
  /** No process gets longer than this to exit once told to leave: set by close(), so a stop ends in bounded time. */
  shutdownCapMs = Infinity;
  readonly forgetIdleGroups: boolean;
  readonly reloadOptions: ((g: Group) => GroupOptions) | undefined;
  maxPoolSize: number;
  private readonly spawner: Spawner;
  private nextProcessId = 1;
  /** close() was called: nothing is spawned, and no request waits any more. */
  closing = false;
  private idleTimer: NodeJS.Timeout | null = null;
  /** Groups call checkSoon() after each change when this is set; off, that is one boolean test. */
  readonly selfCheck: boolean;
  private checkQueued = false;

  constructor(cfg: PoolConfig) {
    this.maxPoolSize = cfg.maxPoolSize;
    this.spawner = cfg.spawner;
    this.log = cfg.log;
    this.events = { processAdded: cfg.events?.processAdded ?? noop, processRemoved: cfg.events?.processRemoved ?? noop, processLeaving: cfg.events?.processLeaving ?? noop };
    this.now = cfg.now ?? Date.now;
    this.forgetIdleGroups = cfg.forgetIdleGroups ?? false;
    this.reloadOptions = cfg.reloadOptions;
    this.selfCheck = cfg.selfCheck ?? false;
  }

  /** The group for an app root, created (and brought to min_instances) on first use. */
  group(options: GroupOptions, spawnNow = true): Group {
    let g = this.groups.get(options.appRoot);
    if (g === undefined) {
      g = new Group(this, options.appRoot, options);
      this.groups.set(options.appRoot, g);
      if (spawnNow) this.spawnIfNeeded(g);
    }
    return g;
  }

  /**
   * Takes over a live process a previous agent core started (it survived that
   * core's crash). Call before the group is first used, so it counts toward
   * min_instances instead of being spawned anew.
   */
  adopt(options: GroupOptions, handle: ProcessHandle, id: number, spawnedAt: number, leaving?: LeaveReason): AppProcess {
    const g = this.group(options, false);
    this.nextProcessId = Math.max(this.nextProcessId, id + 1);
    const p = new AppProcess(id, g, handle, spawnedAt);
    // When the dead core last used it is not known: its idle time starts now, not at its spawn.
    p.lastUsed = this.now();
    this.track(g, p);
    this.log.info(`adopted process ${handle.pid} of ${g.name}${leaving ? ', which was leaving' : ''}`);
    // It was leaving: it leaves again, with the timers its old core took with it.
    if (leaving !== undefined) leave(g, p, leaving);
    return p;
  }

  /** A process joins its group: exits are reported, the transport opened, waiting requests served. */
  private track(g: Group, p: AppProcess): void {
    p.handle.onReport?.((r) => g.onReport(p, r));
    let exited = false;
    p.handle.onExit((code, signal) => {
      if (exited) return;
      exited = true;
      g.onExit(p, code, signal);
    });
    this.events.processAdded(p);
    g.onSpawned(p);
  }

  /** Processes alive, shutting down, or being spawned, across all groups. */
  capacityUsed(): number {
    let n = 0;
    for (const g of this.groups.values()) n += g.processes.length + g.spawning;
    return n;
  }

  processCount(): number {
    let n = 0;
    for (const g of this.groups.values()) n += g.processes.length;
    return n;
  }

  spawnIfNeeded(g: Group): void {
    if (this.closing) return;
    let want = g.wanted();
    if (want <= 0) return;
    // An app that keeps failing to start is retried while requests wait for
    // it, not for its own sake (in direct mode requests wait in the socket, unseen).
    if (!retriesUnasked(g.spawnFailures) && g.enabledCount() === 0 && g.queue.length === 0 && !g.options.directMode) return;
    if (g.backingOff()) {
      g.scheduleRetry();
      return;
    }
    // A group without a live process, or one whose spawns failed, spawns one
    // process at a time: the first response comes sooner when the first
    // process does not share the CPU with its siblings while it boots, and a
    // broken app fails once instead of min_instances times.
    if (g.enabledCount() === 0 || g.spawnFailures > 0) want = g.spawning === 0 ? 1 : 0;
    while (want-- > 0 && this.capacityUsed() < this.maxPoolSize) this.spawnOne(g);
    if (want >= 0 && g.queue.length > 0 && g.enabledCount() === 0 && g.spawning === 0) this.evictFor(g);
  }

  /**
   * The pool is full and `g` has requests but no process: the least recently
   * used idle process of another group gives way.
   */
  private evictFor(g: Group): void {
    let victim: AppProcess | null = null;
    for (const other of this.groups.values()) {
      if (other === g) continue;
      for (const p of other.processes) {
        if (p.life === 'alive' && p.sessions === 0 && p.websockets === 0 && (victim === null || p.lastUsed < victim.lastUsed)) victim = p;
      }
    }
    if (victim === null) return;
    victim.group.retire(victim, 'evicted', `gives way to ${g.name} (the pool is full)`);
  }

  /** Gives every group a chance at capacity that was just freed, groups with waiting requests first. */
  spawnAll(): void {
    const groups = [...this.groups.values()];
    for (const g of groups) if (g.queue.length > 0) this.spawnIfNeeded(g);
    for (const g of groups) if (g.queue.length === 0) this.spawnIfNeeded(g);
  }

  private spawnOne(g: Group): void {
    const id = this.nextProcessId++;
    g.spawning++;
    if (this.selfCheck) this.checkSoon();
    const started = this.now();
    this.spawner.spawn(g.options, id).then(
      (handle) => {
        g.spawning--;
        if (this.selfCheck) this.checkSoon();
        if (this.closing) {
          void handle.stop(0);
          return;
        }
        const p = new AppProcess(id, g, handle, this.now());
        this.log.info(`spawned process ${handle.pid} of ${g.name} in ${this.now() - started} ms`);
        this.track(g, p);
        this.spawnIfNeeded(g);
      },
      (err: Error) => {
        g.spawning--;
        if (this.selfCheck) this.checkSoon();
        if (this.closing) return;
        g.noteSpawnFailure(err);
        replacementFailed(g);
        this.log.error(`could not start a process of ${g.name}: ${err.message}${(err as { output?: string }).output ? `\n--- app output ---\n${(err as { output?: string }).output}\n---` : ''}`);
        if (g.enabledCount() === 0 && g.spawning === 0) g.failQueue(err);
        this.spawnIfNeeded(g);
        this.spawnAll();
      },
    );
  }

  /** Starts the idle-process reaper (pool_idle_time) and the backoff reset. */
  startIdleSweep(intervalMs = 1000): void {
    if (this.idleTimer) return;
    this.idleTimer = setInterval(() => { this.reapIdle(); this.forgiveStable(); if (this.forgetIdleGroups) this.forgetIdle(); }, intervalMs);
    this.idleTimer.unref();
  }

  /** Forgets a group's spawn failures (and so its backoff) once one of its processes has lived through MIN_UPTIME_MS. */
  forgiveStable(): void {
    const now = this.now();
    for (const g of this.groups.values()) {
      if (g.spawnFailures > 0 && g.processes.some((p) => p.life === 'alive' && isStableUptime(now - p.spawnedAt))) g.noteStable();
    }
  }

  /** Shuts down processes idle longer than their group's pool_idle_time, never below min_instances. */
  reapIdle(): void {
    const now = this.now();
    for (const g of this.groups.values()) {
      const idleMs = g.options.poolIdleTime * 1000;
      if (idleMs <= 0) continue;
      let spare = g.enabledCount() - g.options.minInstances;
      for (const p of [...g.processes]) {
        if (spare <= 0) break;
        // An open WebSocket is a client still being served, however quiet.
        if (p.life === 'alive' && p.sessions === 0 && p.websockets === 0 && now - p.lastUsed >= idleMs) {
          g.retire(p, 'idle', `was idle for ${Math.round((now - p.lastUsed) / 1000)} s`);
          spare--;
        }
      }
    }
  }

  /** Drops groups that have had no process, spawn or request for their pool_idle_time. */
  forgetIdle(): void {
    const now = this.now();
    for (const g of [...this.groups.values()]) {
      const idleMs = g.options.poolIdleTime * 1000;
      if (idleMs <= 0 || g.processes.length > 0 || g.spawning > 0 || g.queue.length > 0 || now - g.lastWanted < idleMs) continue;
      g.cancelTimers();
      g.forgotten = true;
      this.groups.delete(g.name);
      if (this.selfCheck) this.checkSoon();
      this.log.info(`app group ${g.name} had no process and no request for ${Math.round((now - g.lastWanted) / 1000)} s: forgotten`);
    }
  }

  /**
   * Self-check: verifies the invariants once the current change is over. A
   * change may nest others (a release that detaches, then serves the queue),
   * so the check waits for the stack to unwind, once however many changes
   * asked. A broken invariant is logged, then thrown.
   */
  checkSoon(): void {
    if (this.checkQueued) return;
    this.checkQueued = true;
    queueMicrotask(() => {
      this.checkQueued = false;
      try {
        verifyInvariants(this);
      } catch (e) {
        this.log.error((e as Error).message);
        throw e;
      }
    });
  }

  /**
   * Refuses further work and stops every process: each is told to leave once
   * its requests are done, or after the stop's drain window at the latest
   * (stop-policy.ts), and then gets at most `shutdownCapMs` (or its
   * shutdown_timeout, if shorter) to exit before KILL. Processes already
   * leaving are held to the same bounds. Resolves when all have exited.
   * Safe to call twice.
   */
  async close(shutdownCapMs = Infinity): Promise<void> {
    if (!this.closing) {
      this.closing = true;
      this.shutdownCapMs = shutdownCapMs;
      if (this.idleTimer) clearInterval(this.idleTimer);
      this.spawner.abortStarting?.();
      for (const g of this.groups.values()) {
        g.cancelTimers();
        g.failQueue(shuttingDown());
        const drain = g.drainMs();
        for (const p of [...g.processes]) {
          if (p.life === 'alive') leave(g, p, 'stop');
          else hurry(g, p, drain);
        }
      }
    }
    await Promise.all([...this.groups.values()].flatMap((g) => g.processes.map((p) => p.exited)));
  }

}
