// The agent's log: one line per event, with level, time and pid/role, as
// Passenger's: `[ W 2026-11-23 19:40:00.123 1234/core ]: message`.
import * as fs from 'node:fs';
import { openOwnFile } from './platform/safe-files';

const LETTERS = ['C', 'E', 'W', 'N', 'I', 'D', 'D', 'D'];

export class Logger {
  private reopenPath: string | null;
  private fd: number;

  /**
   * `file` undefined = stdout. Writes are synchronous appends: a line is never
   * lost when we die. The file is opened without following a symlink and must
   * be our own regular file (it may sit in a directory another user owns).
   */
  constructor(file: string | undefined, public level: number, readonly role: string,
    private readonly open: (file: string) => number = (f) => openOwnFile(f, 'append')) {
    this.reopenPath = file ?? null;
    this.fd = file ? this.open(file) : 1;
  }

  /** For log rotation: reopen the file by name (on failure, keep writing where we were and say why). */
  reopen(): void {
    if (!this.reopenPath) return;
    let fd: number;
    try {
      fd = this.open(this.reopenPath);
    } catch (e) {
      this.error(`cannot reopen the log file: ${(e as Error).message}`);
      return;
    }
    const old = this.fd;
    this.fd = fd;
    try { fs.closeSync(old); } catch { /* gone */ }
  }

  write(level: number, msg: string): void {
    if (level > this.level) return;
    const d = new Date();
    const p = (n: number, w = 2): string => String(n).padStart(w, '0');
    const ts = `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
    const line = `[ ${LETTERS[level]} ${ts} ${process.pid}/${this.role} ]: ${msg}\n`;
    try { fs.writeSync(this.fd, line); } catch { /* nowhere left to say it */ }
  }

  /** Lines written by an app, passed through with their prefix only. */
  raw(line: string): void {
    try { fs.writeSync(this.fd, line.endsWith('\n') ? line : `${line}\n`); } catch { /* ignore */ }
  }

  crit(msg: string): void { this.write(0, msg); }
  error(msg: string): void { this.write(1, msg); }
  warn(msg: string): void { this.write(2, msg); }
  notice(msg: string): void { this.write(3, msg); }
  info(msg: string): void { this.write(4, msg); }
  debug(msg: string): void { this.write(5, msg); }
}
