// The instance directory: one per running server, under the registry dir
// ($TMPDIR or /tmp by default, as Passenger's). It holds the properties, the
// watchdog and core PIDs, the admin and channel sockets, the app sockets and
// one record per app process. The CLIs find servers through it.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PassengerError } from '../errors';
import { isAlive, readStatSync } from '../platform/procfs';
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
}

export class InstanceDir {
  constructor(readonly dir: string) {}
  get name(): string { return path.basename(this.dir).slice(INSTANCE_PREFIX.length); }
  get propertiesFile(): string { return path.join(this.dir, 'properties.json'); }
  get adminSocket(): string { return path.join(this.dir, 'admin.sock'); }
  get channelSocket(): string { return path.join(this.dir, 'channel.sock'); }
  get appsDir(): string { return path.join(this.dir, 'apps'); }
  get processesDir(): string { return path.join(this.dir, 'processes'); }
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
    return p !== null && isAlive(p.watchdog_pid, p.watchdog_start_ticks);
  }

  /** Records of app processes, written by the core: what a new core needs to adopt them. */
  processRecords(): ProcessRecord[] {
    let names: string[];
    try { names = fs.readdirSync(this.processesDir); } catch { return []; }
    const out: ProcessRecord[] = [];
    for (const n of names) {
      try {
        out.push(JSON.parse(fs.readFileSync(path.join(this.processesDir, n), 'utf8')));
      } catch { /* half-written or gone */ }
    }
    return out;
  }

  remove(): void {
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Where `passenger agent` run by root (and the shipped systemd unit) keeps its instance: outside /tmp, so systemd's PrivateTmp hides nothing. */
export const SERVICE_REGISTRY_DIR = '/run/passenger-ts';

/** Where a server puts its instance dir: --instance-registry-dir, else $PASSENGER_INSTANCE_REGISTRY_DIR, else $TMPDIR, else /tmp. */
export function registryDir(flag?: string): string {
  return path.resolve(flag || process.env.PASSENGER_INSTANCE_REGISTRY_DIR || process.env.TMPDIR || os.tmpdir() || '/tmp');
}

/** Where the tools look: the flag or $PASSENGER_INSTANCE_REGISTRY_DIR if given, else $TMPDIR (or /tmp) and the service's directory. */
export function registryDirs(flag?: string): string[] {
  if (flag || process.env.PASSENGER_INSTANCE_REGISTRY_DIR) return [registryDir(flag)];
  return [...new Set([registryDir(), SERVICE_REGISTRY_DIR])];
}

/** Every instance directory of ours in the registry, live or not. */
function allInstances(registry: string): InstanceDir[] {
  let names: string[];
  try { names = fs.readdirSync(registry); } catch { return []; }
  return names.filter((n) => n.startsWith(INSTANCE_PREFIX)).map((n) => new InstanceDir(path.join(registry, n)));
}

export function listInstances(registry: string): InstanceDir[] {
  return allInstances(registry).filter((i) => i.isLive());
}

/**
 * Removes instance dirs whose watchdog is gone (a server that was killed).
 * Young dirs without properties yet are left alone: they may be starting.
 */
export function cleanStale(registry: string): string[] {
  const removed: string[] = [];
  for (const inst of allInstances(registry)) {
    const props = inst.readProperties();
    if (props === null) {
      let age = 0;
      try { age = Date.now() - fs.statSync(inst.dir).mtimeMs; } catch { continue; }
      if (age < 60_000) continue;
    } else if (isAlive(props.watchdog_pid, props.watchdog_start_ticks)) continue;
    // Kill app processes a dead instance left behind (pid-exact).
    for (const r of inst.processRecords()) {
      if (isAlive(r.pid, r.startTicks)) { try { process.kill(-r.pid, 'SIGKILL'); } catch { /* gone */ } }
    }
    inst.remove();
    removed.push(inst.dir);
  }
  return removed;
}

export function createInstanceDir(registry: string): InstanceDir {
  fs.mkdirSync(registry, { recursive: true });
  cleanStale(registry);
  const dir = fs.mkdtempSync(path.join(registry, INSTANCE_PREFIX));
  fs.chmodSync(dir, 0o755);
  const inst = new InstanceDir(dir);
  // Apps running as other users pass through apps/ to their own socket
  // directories (0700 each) but may not list or write it.
  fs.mkdirSync(inst.appsDir, { mode: 0o711 });
  fs.chmodSync(inst.appsDir, 0o711);
  fs.mkdirSync(inst.processesDir, { mode: 0o700 });
  return inst;
}

/**
 * Picks the instance a tool talks to: by name if given, the only live one
 * otherwise. Errors say where it looked, or list the candidates.
 */
export function selectInstance(registries: string | string[], name?: string): InstanceDir {
  const dirs = Array.isArray(registries) ? registries : [registries];
  const registry = dirs.join(' and ');
  const live = dirs.flatMap((d) => listInstances(d));
  if (name) {
    const found = live.find((i) => i.name === name || i.dir === name);
    if (!found) {
      throw new PassengerError('E_NO_INSTANCE', `no running instance named ${name} in ${registry}`,
        live.length ? `running: ${live.map((i) => i.name).join(', ')}` : undefined);
    }
    return found;
  }
  if (live.length === 0) {
    throw new PassengerError('E_NO_INSTANCE', `no running server found in ${registry}`,
      'start one with `passenger start`, or pass --instance-registry-dir (or set PASSENGER_INSTANCE_REGISTRY_DIR) if it uses another directory');
  }
  if (live.length > 1) {
    const rows = live.map((i) => {
      const p = i.readProperties();
      return `  ${i.name}  pid ${p?.watchdog_pid}  ${p?.server ?? ''}  ${p?.app_root ?? ''}`;
    });
    throw new PassengerError('E_MANY_INSTANCES', `several servers are running; name one:\n${rows.join('\n')}`,
      'pass the instance name as an argument');
  }
  return live[0];
}

export function startTicksOf(pid: number): number {
  return readStatSync(pid)?.startTicks ?? 0;
}
