// Where each app's output goes: its own app_log_file, or the agent's log.
// Each file is opened once and shared by the app's processes; reopen-logs
// reopens them all. The file is never opened through a symlink, and when the
// app runs as another user (the agent is root) it is opened with that user's
// file-system identity: the app names the file in its Passengerfile.json, so
// root must write only where the app's user could.
import * as path from 'node:path';
import { Logger } from '../log';
import { openAppendAs } from '../platform/native';

export class AppLogs {
  private readonly files = new Map<string, Logger>();

  constructor(private readonly log: Logger) {}

  /** The log an app's lines go to: `file` (absolute) when it can be opened (as `who`, if given), else the agent's, which says why. */
  sinkFor(file: string | undefined, who?: { uid: number; gid: number }): Logger {
    if (file === undefined) return this.log;
    const abs = path.resolve(file);
    const key = who ? `${who.uid}:${who.gid}:${abs}` : abs;
    let sink = this.files.get(key);
    if (sink === undefined) {
      try {
        sink = new Logger(abs, this.log.level, 'app', who ? (f) => openAppendAs(f, who.uid, who.gid) : undefined);
      } catch (e) {
        this.log.error(`cannot open the app log file ${abs}: ${(e as Error).message}; the app's output goes to this log instead`);
        return this.log;
      }
      this.files.set(key, sink);
    }
    return sink;
  }

  /** For log rotation: reopens every app log file by name; returns their paths. */
  reopen(): string[] {
    for (const sink of this.files.values()) sink.reopen();
    return [...new Set([...this.files.keys()].map((k) => k.replace(/^\d+:\d+:/, '')))];
  }
}
