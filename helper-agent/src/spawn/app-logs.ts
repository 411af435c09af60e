// Where each app's output goes: its own app_log_file, or the agent's log.
// Each file is opened once (as the agent's own regular file, never through a
// symlink) and shared by the app's processes; reopen-logs reopens them all.
import * as path from 'node:path';
import { Logger } from '../log';

export class AppLogs {
  private readonly files = new Map<string, Logger>();

  constructor(private readonly log: Logger) {}

  /** The log an app's lines go to: `file` (absolute) when it can be opened, else the agent's, which says why. */
  sinkFor(file: string | undefined): Logger {
    if (file === undefined) return this.log;
    const abs = path.resolve(file);
    let sink = this.files.get(abs);
    if (sink === undefined) {
      try {
        sink = new Logger(abs, this.log.level, 'app');
      } catch (e) {
        this.log.error(`cannot open the app log file ${abs}: ${(e as Error).message}; the app's output goes to this log instead`);
        return this.log;
      }
      this.files.set(abs, sink);
    }
    return sink;
  }

  /** For log rotation: reopens every app log file by name; returns their paths. */
  reopen(): string[] {
    for (const sink of this.files.values()) sink.reopen();
    return [...this.files.keys()];
  }
}
