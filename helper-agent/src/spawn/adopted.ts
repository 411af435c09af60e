// A live app process a previous agent core started: not our child, so its
// exit is seen by polling /proc (pid and start time), and it is stopped with
// signals to its process group (its stdin belonged to the dead core).
import type { ProcessRecord } from '../instance/instance-dir';
import { isAlive } from '../platform/procfs';
import type { ProcessHandle } from '../pool/process';

const POLL_MS = 250;

function signalGroup(pgid: number, sig: NodeJS.Signals): void {
  try { process.kill(-pgid, sig); } catch { /* gone */ }
}

export class AdoptedProcess implements ProcessHandle {
  readonly pid: number;
  readonly endpoint: ProcessRecord['endpoint'];
  readonly adoptable = true;
  private exited = false;
  private readonly exitCbs: ((code: number | null, signal: string | null) => void)[] = [];
  private readonly timer: NodeJS.Timeout;
  private stopping: Promise<void> | null = null;

  constructor(private readonly rec: ProcessRecord) {
    this.pid = rec.pid;
    this.endpoint = rec.endpoint;
    this.timer = setInterval(() => this.poll(), POLL_MS);
    this.timer.unref();
  }

  /** Still the process the record names? */
  static isLive(rec: ProcessRecord): boolean {
    return isAlive(rec.pid, rec.startTicks);
  }

  private poll(): void {
    if (this.exited || AdoptedProcess.isLive(this.rec)) return;
    this.exited = true;
    clearInterval(this.timer);
    signalGroup(this.pid, 'SIGKILL'); // what it left behind goes with it
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

  /** TERM to the group, KILL after the grace period. Safe to call twice. */
  stop(graceMs: number): Promise<void> {
    if (this.stopping) return this.stopping;
    this.stopping = (async () => {
      if (this.exited) return;
      signalGroup(this.pid, 'SIGTERM');
      if (await this.waitExit(Math.max(graceMs, 1000))) return;
      signalGroup(this.pid, 'SIGKILL');
      await this.waitExit(5000);
    })();
    return this.stopping;
  }
}
