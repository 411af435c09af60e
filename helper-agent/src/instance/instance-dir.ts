// The instance directory: one per running server, in the instance registry
// (registry.ts). It holds the properties, the watchdog and core PIDs, the
// admin and channel sockets, the app sockets and one record per app process.
// The CLIs find servers through it.
import * as fs from 'node:fs';
import type { LeaveReason } from '../pool/process';
import * as path from 'node:path';
import { removeTree } from '../platform/native';
import { isAlive, isLiveStat, readStatSync } from '../platform/procfs';
import { SOFTWARE } from '../version';

export const INSTANCE_PREFIX = 'passenger-ts.';

export interface InstanceProperties {
  software: string;
  version: string;
  name: string;
  instance_dir: string;
  created_at: string;
  watchdog_pid: number;
  /** /proc start time of the watchdog, so a reused pid is never taken for it */
  watchdog_start_ticks: number;
  mode: 'standalone' | 'agent';
  /** Where requests arrive: "http://127.0.0.1:3000" or "unix:/path". */
  server: string;
  app_root: string | null;
  log_file: string | null;
  pid_file: string | null;
}

/** One app process, as the core records it in `processes/<pid>`. */
export interface ProcessRecord {
  pid: number;
  startTicks: number;
  /** The app root of its group. */
  group: string;
  /** The pool's process id (sticky session cookies name it). */
  id: number;
  spawnedAt: number;
  /** Where it listens. */
  endpoint: { socketPath: string } | { host: string; port: number };
  /** Its loader's channel token. Only Node apps under the loader have one: they outlive a crash of the core and the next one adopts them. */
  token?: string;
  /** Direct mode: told to leave over the channel, it drains its own connections. */
  direct?: boolean;
  /** The user and group it runs as when the agent switched users (root); an adopted process keeps them. */
  uid?: number;
  gid?: number;
  /** Behind a web server: the settings it sent for the app (base URI, options), so a new core starts replacements alike. */
  web?: { baseUri?: string; options?: string };
  /**
   * Still starting: recorded the moment it exists, so that a core dying
   * before it is ready leaves it to be stopped, never adopted (nobody knows
   * whether it would ever be ready). Its full record replaces this one.
   */
  starting?: true;
  /**
   * It was leaving, for this reason: a new core adopts it as leaving, tells
   * it to leave again and stops it after shutdown_timeout, never takes it for
   * a live process (its predecessor's timers died with it).
   */
  leaving?: LeaveReason;
}

export class InstanceDir {
  constructor(readonly dir: string) {}
  get name(): string { return path.basename(this.dir).slice(INSTANCE_PREFIX.length); }
  get propertiesFile(): string { return path.join(this.dir, 'properties.json'); }
  get adminSocket(): string { return path.join(this.dir, 'admin.sock'); }
  get channelSocket(): string { return path.join(this.dir, 'channel.sock'); }
  get appsDir(): string { return path.join(this.dir, 'apps'); }
  get processesDir(): string { return path.join(this.dir, 'processes'); }
  /** The record of app process `pid` (see ProcessRecord). */
  processRecordFile(pid: number): string { return path.join(this.processesDir, String(pid)); }
  get watchdogPidFile(): string { return path.join(this.dir, 'watchdog.pid'); }
  get corePidFile(): string { return path.join(this.dir, 'core.pid'); }
  /** The web server processes the core saw on its socket (written by core/frontends.ts). */
  get frontendsFile(): string { return path.join(this.dir, 'frontends.json'); }

  frontendRecords(): { pid: number; startTicks: number; role: string }[] {
    try {
      return JSON.parse(fs.readFileSync(this.frontendsFile, 'utf8'));
    } catch {
      return [];
    }
  }

  readProperties(): InstanceProperties | null {
    try {
      const p = JSON.parse(fs.readFileSync(this.propertiesFile, 'utf8')) as InstanceProperties;
      return p.software === SOFTWARE ? p : null;
    } catch {
      return null;
    }
  }

  writeProperties(p: InstanceProperties): void {
    const tmp = `${this.propertiesFile}.tmp`;
    fs.writeFileSync(tmp, `${JSON.stringify(p, null, 2)}\n`);
    fs.renameSync(tmp, this.propertiesFile);
  }

  /** Alive = its watchdog still runs (same pid, same start time). */
  isLive(): boolean {
    const p = this.readProperties();
    return p !== null && Number.isInteger(p.watchdog_pid) && p.watchdog_pid > 1 && isAlive(p.watchdog_pid, p.watchdog_start_ticks);
  }

  /** Records of app processes, written by the core: what a new core needs to adopt them. */
  processRecords(): ProcessRecord[] {
    let names: string[];
    try { names = fs.readdirSync(this.processesDir); } catch { return []; }
    const out: ProcessRecord[] = [];
    for (const n of names) {
      // `<pid>` alone: `<pid>.new` is a record still being written.
      if (!/^\d+$/.test(n)) continue;
      try {
        out.push(JSON.parse(fs.readFileSync(this.processRecordFile(Number(n)), 'utf8')));
      } catch { /* half-written or gone */ }
    }
    return out;
  }

  /** Removes the directory without following any link in it (apps may own subdirectories). */
  remove(): void {
    let st: fs.Stats;
    try { st = fs.lstatSync(this.dir); } catch { return; }
    if (!st.isDirectory()) return;
    removeTree(path.dirname(this.dir), path.basename(this.dir), st.uid);
  }
}

/**
 * Sends `sig` to the process group of a recorded app process, only when the
 * process is provably the one recorded: pid above 1, alive with the recorded
 * start time, and still the leader of its own process group (every app
 * process is spawned as one). Returns whether it was signalled.
 */
export function signalRecordedGroup(r: Pick<ProcessRecord, 'pid' | 'startTicks'>, sig: NodeJS.Signals): boolean {
  if (!Number.isInteger(r.pid) || r.pid <= 1 || !Number.isInteger(r.startTicks)) return false;
  const st = readStatSync(r.pid);
  if (!isLiveStat(st) || st.startTicks !== r.startTicks || st.pgid !== r.pid) return false;
  try {
    process.kill(-r.pid, sig);
    return true;
  } catch {
    return false;
  }
}

export function startTicksOf(pid: number): number {
  return readStatSync(pid)?.startTicks ?? 0;
}
