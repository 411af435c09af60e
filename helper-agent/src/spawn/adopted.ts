// A live app process a previous agent core started: not our child, so its
// exit is seen by polling /proc (pid and start time). Its loader reconnects to
// our channel: in direct mode we hear its counters there, and ask it there to
// leave (its stdin belonged to the dead core); then signals to its group.
import type { ProcessRecord } from '../instance/instance-dir';
import { isAlive } from '../platform/procfs';
import type { ProcessHandle, ProcessReport } from '../pool/process';
import { reportOf, type Channel } from './channel';
import { removeAppSocket } from './spawner';

const POLL_MS = 250;

function signalGroup(pgid: number, sig: NodeJS.Signals): void {
  try { process.kill(-pgid, sig); } catch { /* gone */ }
}

export class AdoptedProcess implements ProcessHandle {
  readonly pid: number;
  readonly endpoint: ProcessRecord['endpoint'];
  readonly channelToken: string | undefined;
  readonly direct: boolean;
  readonly user: { uid: number; gid: number } | undefined;
  private exited = false;
  private reportCb: ((r: ProcessReport) => void) | null = null;
  private readonly exitCbs: ((code: number | null, signal: string | null) => void)[] = [];
  private readonly timer: NodeJS.Timeout;
  private stopping: Promise<void> | null = null;

  constructor(private readonly rec: ProcessRecord, private readonly channel: Channel) {
    this.pid = rec.pid;
    this.endpoint = rec.endpoint;
    this.channelToken = rec.token;
    this.direct = rec.direct === true;
    this.user = rec.uid !== undefined && rec.gid !== undefined ? { uid: rec.uid, gid: rec.gid } : undefined;
    this.timer = setInterval(() => this.poll(), POLL_MS);
    this.timer.unref();
    if (rec.token) {
      channel.on(rec.token, rec.pid, (msg) => {
        if (msg.type !== 'stats') return;
        this.reportCb?.(reportOf(msg));
      });
    }
  }

  onReport(cb: (r: ProcessReport) => void): void {
    this.reportCb = cb;
  }

  /** Still the process the record names? */
  static isLive(rec: ProcessRecord): boolean {
    return isAlive(rec.pid, rec.startTicks);
  }

  private poll(): void {
    if (this.exited || AdoptedProcess.isLive(this.rec)) return;
    this.exited = true;
    clearInterval(this.timer);
    if (this.channelToken) this.channel.forget(this.channelToken);
    signalGroup(this.pid, 'SIGKILL'); // what it left behind goes with it
    if ('socketPath' in this.endpoint) removeAppSocket(this.endpoint.socketPath);
    for (const cb of this.exitCbs.splice(0)) cb(null, null);
  }

  onExit(cb: (code: number | null, signal: string | null) => void): void {
    if (this.exited) queueMicrotask(() => cb(null, null));
    else this.exitCbs.push(cb);
  }

  private waitExit(ms: number): Promise<boolean> {
    if (this.exited) return Promise.resolve(true);
    return new Promise((resolve) => {
      const t = setTimeout(() => resolve(false), ms);
      this.onExit(() => { clearTimeout(t); resolve(true); });
    });
  }

  /**
   * Told over the channel to leave (its stdin belonged to the dead core), its
   * loader hands that to the app's own shutdown as for any process (after
   * draining, in direct mode); if the channel cannot carry it, TERM to its
   * process group. KILL after `timeoutMs` (shutdown_timeout). Safe to call twice.
   */
  stop(timeoutMs: number): Promise<void> {
    if (this.stopping) return this.stopping;
    this.stopping = (async () => {
      if (this.exited) return;
      if (!this.channelToken || !this.channel.send(this.channelToken, { type: 'leave' })) signalGroup(this.pid, 'SIGTERM');
      if (await this.waitExit(timeoutMs)) return;
      signalGroup(this.pid, 'SIGKILL');
      await this.waitExit(5000);
    })();
    return this.stopping;
  }
}
