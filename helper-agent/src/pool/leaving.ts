// How a process leaves its group, whatever the reason: the one decision
// (retire, with its reason: replaced first, or leaving now), then its drain,
// the request to leave, and its exit. A process's life moves only here.
import type { Group } from './group';
import type { AppProcess, LeaveReason } from './process';

interface ReasonRule {
  /** A replacement is started first, and this process leaves once it is up (when the pool has room). */
  replaceFirst: boolean;
  /** While it waits for its replacement, it still takes requests. */
  serveMeanwhile: boolean;
  /** What the log says, when the caller gives no detail; null: the caller logs it, or it is too common to log. */
  says: string | null;
}

const RULES: Readonly<Record<LeaveReason, ReasonRule>> = {
  max_requests: { replaceFirst: true, serveMeanwhile: false, says: 'reached max_requests' },
  memory_limit: { replaceFirst: true, serveMeanwhile: true, says: 'passed memory_limit' },
  max_request_time: { replaceFirst: true, serveMeanwhile: true, says: null },
  rolling_restart: { replaceFirst: true, serveMeanwhile: true, says: 'is restarted (rolling)' },
  restart: { replaceFirst: false, serveMeanwhile: false, says: 'is restarted' },
  always_restart: { replaceFirst: false, serveMeanwhile: false, says: null },
  idle: { replaceFirst: false, serveMeanwhile: false, says: 'was idle' },
  detached: { replaceFirst: false, serveMeanwhile: false, says: 'was detached' },
  unreachable: { replaceFirst: false, serveMeanwhile: false, says: null },
  evicted: { replaceFirst: false, serveMeanwhile: false, says: 'gives way to another app (the pool is full)' },
  stop: { replaceFirst: false, serveMeanwhile: false, says: null },
};

/** Nothing keeps a leaving process: no request in flight, no open WebSocket. */
export function drained(p: AppProcess): boolean {
  return p.sessions === 0 && p.websockets === 0;
}

/**
 * The one way a process is taken out, for `reason` (`why`: the log's detail).
 * Reasons that replace first (max_requests, memory_limit, ...) spawn the
 * replacement while this process waits, serving or not as the reason says,
 * and it leaves once the new one is up; with a full pool it leaves now and
 * the replacement follows. Other reasons make it leave now, waiting for a
 * replacement or not. Returns false if it was already leaving (or, for a
 * reason that replaces first, already waiting for its replacement).
 */
export function retire(g: Group, p: AppProcess, reason: LeaveReason, why?: string): boolean {
  if (p.life !== 'alive') return false;
  const rule = RULES[reason];
  const says = why ?? rule.says;
  if (rule.replaceFirst) {
    if (p.replacement !== null) return false;
    p.replacement = { reason, serving: rule.serveMeanwhile };
    if (g.pool.selfCheck) g.pool.checkSoon();
    const before = g.spawning;
    g.pool.spawnIfNeeded(g);
    if (g.spawning !== before) {
      if (says !== null) g.pool.log.info(`process ${p.pid} of ${g.name} ${says}: replacing it`);
      g.notifyChange();
      return true;
    }
    if (says !== null) g.pool.log.info(`process ${p.pid} of ${g.name} ${says}: replacing it (it leaves first: the pool is full)`);
  } else if (says !== null) {
    g.pool.log.info(`process ${p.pid} of ${g.name} ${says}: shutting it down`);
  }
  leave(g, p, reason);
  return true;
}

/**
 * Takes a process out of rotation at once: it takes no new request or
 * upgrade. Its WebSockets are closed now (abort_websockets_on_process_shutdown)
 * or left to end by themselves; once its requests and sockets are done, or
 * when its drain time is up (Group.drainMs), it is told to leave.
 */
export function leave(g: Group, p: AppProcess, reason: LeaveReason): void {
  if (p.life !== 'alive') return;
  p.life = 'draining';
  p.leaveReason = reason;
  p.replacement = null;
  if (g.pool.selfCheck) g.pool.checkSoon();
  g.pool.events.processLeaving(p);
  // In direct mode the process drains its own connections once told to leave.
  if (drained(p) || g.options.directMode) tellToLeave(g, p);
  else armDrain(g, p, g.drainMs());
  g.pool.spawnIfNeeded(g);
  g.notifyChange();
}

function armDrain(g: Group, p: AppProcess, ms: number): void {
  if (p.drainTimer) clearTimeout(p.drainTimer);
  p.drainTimer = setTimeout(() => {
    p.drainTimer = null;
    g.pool.log.warn(`process ${p.pid} of ${g.name} still had ${p.sessions} request(s) and ${p.websockets} WebSocket(s) after ${ms / 1000} s; telling it to leave`);
    tellToLeave(g, p);
  }, ms);
  p.drainTimer.unref();
}

/** A draining process is told to leave within `ms` at most (the server stops). */
export function hurry(g: Group, p: AppProcess, ms: number): void {
  if (p.life !== 'draining') return;
  armDrain(g, p, ms);
  if (g.pool.selfCheck) g.pool.checkSoon();
}

/** A draining process's last request or WebSocket ended: it is told to leave now. */
export function drainedNow(g: Group, p: AppProcess): void {
  if (p.life === 'draining' && drained(p)) tellToLeave(g, p);
}

/** Tells the process to leave: the app's own shutdown runs, KILL after shutdown_timeout (stop-policy.ts). */
function tellToLeave(g: Group, p: AppProcess): void {
  if (p.drainTimer) clearTimeout(p.drainTimer);
  p.drainTimer = null;
  p.life = 'stopping';
  if (g.pool.selfCheck) g.pool.checkSoon();
  // At a stop, a process in direct mode drains its own requests for the stop's drain window.
  p.handle.stop(g.shutdownTimeoutMs(), g.pool.closing ? g.drainMs() : undefined)
    .catch((e: Error) => g.pool.log.warn(`stopping process ${p.pid}: ${e.message}`));
}

/**
 * The process has exited, expectedly or not. One that was alive crashed (it
 * was up: only a process that passed its readiness joins the group): it is
 * replaced at once and waiting requests go to the replacement; backoff is
 * for apps that cannot start, and a process killed soon after its start
 * says nothing about that (spawn-backoff.ts).
 */
export function exited(g: Group, p: AppProcess, code: number | null, signal: string | null): void {
  const crashed = p.life === 'alive';
  p.life = 'dead';
  p.replacement = null;
  if (p.drainTimer) clearTimeout(p.drainTimer);
  p.drainTimer = null;
  const i = g.processes.indexOf(p);
  if (i !== -1) g.processes.splice(i, 1);
  if (g.pool.selfCheck) g.pool.checkSoon();
  const how = signal ? `signal ${signal}` : `exit code ${code}`;
  if (crashed) {
    const uptime = g.pool.now() - p.spawnedAt;
    g.pool.log.warn(`process ${p.pid} of ${g.name} exited unexpectedly (${how}) after ${Math.round(uptime / 1000)} s; replacing it`);
  } else {
    g.pool.log.info(`process ${p.pid} of ${g.name} stopped (${how})${p.leaveReason ? ` (${p.leaveReason})` : ''}`);
  }
  p.resolveExited();
  g.pool.events.processRemoved(p);
  g.pool.spawnAll();
  g.notifyChange();
}

/** A new process is up: a process waiting for its replacement leaves now. */
export function replacementUp(g: Group): void {
  const old = g.processes.find((x) => x.life === 'alive' && x.replacement !== null);
  if (old) leave(g, old, (old.replacement as { reason: LeaveReason }).reason);
}

/**
 * A replacement failed to start: processes that stopped taking requests
 * for it (max_requests) serve again meanwhile, rather than leave the app
 * with none; they still leave once a replacement is up.
 */
export function replacementFailed(g: Group): void {
  for (const p of g.processes) {
    if (p.life === 'alive' && p.replacement !== null && !p.replacement.serving) {
      p.replacement.serving = true;
      g.pool.log.warn(`process ${p.pid} of ${g.name} serves on until a replacement starts`);
    }
  }
  // A process that serves again takes the requests that waited for the replacement.
  if (g.queue.length > 0) g.pump();
  if (g.pool.selfCheck) g.pool.checkSoon();
}
