// The one handle on an app process, whether this core spawned it (its child:
// exit seen by the 'exit' event) or adopted it from a core that died (exit
// seen by polling /proc for its pid and start time). Either way: the loader
// channel for reports and the request to leave, signals to its process group,
// and the stop's escalation to SIGKILL.
import type { ChildProcess } from 'node:child_process';
import type { Writable } from 'node:stream';
import type { ProcessRecord } from '../instance/instance-dir';
import { isAlive } from '../platform/procfs';
import type { ProcessHandle, ProcessReport } from '../pool/process';
import { KILL_WAIT_MS } from '../pool/stop-policy';
import { reportOf, type LoaderChannel } from './loader-channel';
import { removeAppSocket } from './app-socket';

const POLL_MS = 250;
/** How often a stopped process's group is looked at until what it left behind has exited. */
const LEFTOVER_POLL_MS = 50;

type ExitCb = (code: number | null, signal: string | null) => void;

/**
 * Whether a PID is in use. The kernel hands a number out again only once
 * nothing uses it, as a process or as a process group: so after our process
 * is gone, a PID in use again means its group is gone too and the number is
 * somebody else's.
 */
function pidInUse(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** After a process exited: SIGKILL to what it left in its group, unless its PID (and so the group) is somebody else's by now. */
export function killLeftovers(pid: number): void {
  if (!pidInUse(pid)) signalGroup(pid, 'SIGKILL');
}

/** SIGKILL to a child's process group: the child's too while it runs, else what it left behind. */
export function killChildGroup(child: ChildProcess): void {
  if (child.pid === undefined) return;
  if (child.exitCode === null && child.signalCode === null) signalGroup(child.pid, 'SIGKILL');
  else killLeftovers(child.pid);
}

/** Signals a process group; false if it is gone. */
export function signalGroup(pgid: number, sig: NodeJS.Signals | 0): boolean {
  try {
    process.kill(-pgid, sig);
    return true;
  } catch {
    return false;
  }
}

export interface HandleInit {
  pid: number;
  endpoint: ProcessHandle['endpoint'];
  channel: LoaderChannel;
  /** Node apps under the loader: the token they speak on the channel with. */
  channelToken?: string;
  direct: boolean;
  user?: { uid: number; gid: number };
  /** Its stdin, when it is our child: closing it tells the loader to leave too. */
  stdin?: Writable | null;
  /** Where a warning about a process that had to be killed goes. */
  warn?: (msg: string) => void;
  /** An adopted process: its record, whose start time tells it from a later process with its PID. */
  record?: ProcessRecord;
}

export class AppHandle implements ProcessHandle {
  readonly pid: number;
  readonly endpoint: ProcessHandle['endpoint'];
  readonly channelToken: string | undefined;
  readonly direct: boolean;
  readonly user: { uid: number; gid: number } | undefined;
  /** The Node version the process reported when it was ready (not known for adopted processes). */
  nodeVersion: string | undefined;
  /** It has exited, and, for an app_start_command process being stopped, what it left in its group too. */
  exited = false;
  /** The process itself has exited. */
  private leaderGone = false;
  /** While it is being stopped: when shutdown_timeout is up. */
  private stopDeadline = 0;
  private exitInfo: [number | null, string | null] = [null, null];
  private readonly exitCbs: ExitCb[] = [];
  private reportCb: ((r: ProcessReport) => void) | null = null;
  private stopping: Promise<void> | null = null;

  private constructor(private readonly init: HandleInit) {
    this.pid = init.pid;
    this.endpoint = init.endpoint;
    this.channelToken = init.channelToken;
    this.direct = init.direct;
    this.user = init.user;
  }

  /** A process we started: its exit is the child's 'exit' event. */
  static ofChild(child: ChildProcess, init: Omit<HandleInit, 'pid' | 'stdin'>): AppHandle {
    const h = new AppHandle({ ...init, pid: child.pid as number, stdin: child.stdin });
    child.once('exit', (code, signal) => h.gone(code, signal));
    return h;
  }

  /** A live process a previous core started: its exit is seen by polling /proc; its counters come over the channel. */
  static adopt(rec: ProcessRecord, channel: LoaderChannel, warn?: (msg: string) => void): AppHandle {
    const h = new AppHandle({
      pid: rec.pid, endpoint: rec.endpoint, channel, channelToken: rec.token, direct: rec.direct === true, warn, record: rec,
      user: rec.uid !== undefined && rec.gid !== undefined ? { uid: rec.uid, gid: rec.gid } : undefined,
    });
    const timer = setInterval(() => {
      if (h.exited || AppHandle.isLive(rec)) return;
      clearInterval(timer);
      h.gone(null, null);
    }, POLL_MS);
    timer.unref();
    h.onExit(() => clearInterval(timer));
    if (rec.token) channel.on(rec.token, rec.pid, (msg) => { if (msg.type === 'stats') h.report(reportOf(msg)); });
    return h;
  }

  /** Still the process the record names? */
  static isLive(rec: ProcessRecord): boolean {
    return isAlive(rec.pid, rec.startTicks);
  }

  /**
   * The process exited: what it left behind in its group goes with it, its
   * socket and channel token too. Not at once for an app_start_command
   * process being stopped: it may be a shell that did not exec the app, and
   * the app, left in its group, gets the rest of shutdown_timeout to finish.
   * The process counts as exited once its group is empty.
   */
  private gone(code: number | null, signal: string | null): void {
    if (this.leaderGone) return;
    this.leaderGone = true;
    if (this.stopping !== null && this.channelToken === undefined && this.stopDeadline > 0) {
      void this.leftoversGone(this.stopDeadline).then(() => this.ended(code, signal));
      return;
    }
    killLeftovers(this.pid);
    this.ended(code, signal);
  }

  private ended(code: number | null, signal: string | null): void {
    this.exited = true;
    this.exitInfo = [code, signal];
    if ('socketPath' in this.endpoint) removeAppSocket(this.endpoint.socketPath);
    if (this.channelToken !== undefined) this.init.channel.forget(this.channelToken);
    for (const cb of this.exitCbs.splice(0)) cb(code, signal);
  }

  onReport(cb: (r: ProcessReport) => void): void {
    this.reportCb = cb;
  }

  report(r: ProcessReport): void {
    this.reportCb?.(r);
  }

  onExit(cb: ExitCb): void {
    if (this.exited) queueMicrotask(() => cb(...this.exitInfo));
    else this.exitCbs.push(cb);
  }

  private waitExit(ms: number): Promise<boolean> {
    if (this.exited) return Promise.resolve(true);
    return new Promise((resolve) => {
      const t = setTimeout(() => resolve(false), ms);
      this.onExit(() => {
        clearTimeout(t);
        resolve(true);
      });
    });
  }

  /**
   * Tells the process to leave and gives it `timeoutMs` (shutdown_timeout)
   * to exit by itself, then SIGKILL to its process group. A Node app hears it
   * from its loader (over the channel, with `drainMs` bounding its own drain
   * in direct mode, and by its stdin closing), which hands it to the app's
   * own shutdown. Anything else, or a loader the channel cannot reach and
   * whose stdin is not ours, gets SIGTERM to its process group. Safe to call twice.
   */
  stop(timeoutMs: number, drainMs?: number): Promise<void> {
    if (this.stopping) return this.stopping;
    this.stopping = (async () => {
      if (this.exited) return;
      this.stopDeadline = Date.now() + timeoutMs;
      const token = this.channelToken;
      const told = token !== undefined && this.init.channel.send(token, drainMs === undefined ? { type: 'leave' } : { type: 'leave', drainMs });
      const stdin = this.init.stdin ?? null;
      stdin?.end();
      const termed = !told && (token === undefined || stdin === null) && this.signalOwn('SIGTERM');
      if (await this.waitExit(timeoutMs)) return;
      this.init.warn?.(`app process ${this.pid} was still running ${Math.round(timeoutMs / 100) / 10} s after ${termed ? 'SIGTERM' : 'it was told to leave'}: sending SIGKILL to its process group (shutdown_timeout)`);
      this.signalOwn('SIGKILL');
      await this.waitExit(KILL_WAIT_MS);
    })();
    return this.stopping;
  }

  /** After the process exited: waits until its group is empty or `deadline` is past, then SIGKILLs what is left. */
  private async leftoversGone(deadline: number): Promise<void> {
    while (Date.now() < deadline && !pidInUse(this.pid) && signalGroup(this.pid, 0)) {
      await new Promise((r) => setTimeout(r, LEFTOVER_POLL_MS));
    }
    killLeftovers(this.pid);
  }

  /** Kills the process group at once (a spawn that failed or was aborted). */
  kill(): void {
    this.signalOwn('SIGKILL');
  }

  /**
   * Signals the process's group while the process is still ours: a child
   * not yet reaped, or an adopted process with its recorded start time (its
   * exit is only polled for, so its PID may have gone to another process
   * meanwhile; then it has exited, and nothing is signalled).
   */
  private signalOwn(sig: NodeJS.Signals): boolean {
    // Once the process itself is gone its PID may be somebody else's: leftoversGone() sees to its group.
    if (this.leaderGone) return false;
    const rec = this.init.record;
    if (rec !== undefined && !AppHandle.isLive(rec)) {
      this.gone(null, null);
      return false;
    }
    return signalGroup(this.pid, sig);
  }
}
