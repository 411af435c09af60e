// The web server processes seen on the request socket (peer credentials of
// each connection): workers and their master. Kept in the instance directory
// for passenger-memory-stats; dead ones are dropped.
import * as fs from 'node:fs';
import type { InstanceDir } from '../instance/instance-dir';
import { getPeerCredentials } from '../platform/native';
import { isAlive, readStatSync } from '../platform/procfs';

/**
 * At most LOOKS connections in each WINDOW_MS are looked at: a web server
 * that opens a connection per request costs a few dozen syscalls a second,
 * not one per request, while the handful a server that keeps its
 * connections opens at start or after a reload are all seen.
 */
const WINDOW_MS = 100;
const LOOKS = 8;

interface Seen {
  pid: number;
  startTicks: number;
  uid: number;
  role: 'worker' | 'master';
}

export class FrontendRegistry {
  private readonly seen = new Map<number, Seen>();
  private dirty = false;
  private timer: NodeJS.Timeout;
  private windowEnd = 0;
  private looks = 0;

  constructor(private readonly inst: InstanceDir) {
    this.timer = setInterval(() => this.flush(), 2000);
    this.timer.unref();
  }

  /** Notes the process at the other end of a new connection (one syscall; known pids cost a Map lookup), LOOKS per WINDOW_MS. */
  noteConnection(fd: number): void {
    if (fd < 0) return;
    const now = Date.now();
    if (now >= this.windowEnd) {
      this.windowEnd = now + WINDOW_MS;
      this.looks = 0;
    }
    if (this.looks >= LOOKS) return;
    this.looks++;
    let cred;
    try { cred = getPeerCredentials(fd); } catch { return; }
    if (cred.pid <= 0 || this.seen.has(cred.pid)) return;
    const st = readStatSync(cred.pid);
    if (!st) return;
    this.seen.set(cred.pid, { pid: cred.pid, startTicks: st.startTicks, uid: cred.uid, role: 'worker' });
    // The worker's parent is the server's master when it runs the same program.
    const parent = readStatSync(st.ppid);
    if (parent && parent.pid > 1 && parent.comm === st.comm && !this.seen.has(parent.pid)) {
      this.seen.set(parent.pid, { pid: parent.pid, startTicks: parent.startTicks, uid: -1, role: 'master' });
    }
    this.dirty = true;
  }

  pids(): Seen[] {
    return [...this.seen.values()];
  }

  /** Drops processes that are gone and writes the file when something changed. */
  flush(): void {
    for (const [pid, s] of this.seen) {
      if (!isAlive(pid, s.startTicks)) {
        this.seen.delete(pid);
        this.dirty = true;
      }
    }
    if (!this.dirty) return;
    this.dirty = false;
    const file = this.inst.frontendsFile;
    fs.writeFile(`${file}.tmp`, JSON.stringify(this.pids()), (e) => { if (!e) fs.rename(`${file}.tmp`, file, () => undefined); });
  }

  stop(): void {
    clearInterval(this.timer);
  }
}
