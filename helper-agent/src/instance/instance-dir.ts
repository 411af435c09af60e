// The instance directory: one per running server, under the registry dir
// ($TMPDIR or /tmp by default, as Passenger's). It holds the properties, the
// watchdog and core PIDs, the admin and channel sockets, the app sockets and
// one record per app process. The CLIs find servers through it.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ConfigError, PassengerError } from '../errors';
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
    return p !== null && Number.isInteger(p.watchdog_pid) && p.watchdog_pid > 1 && isAlive(p.watchdog_pid, p.watchdog_start_ticks);
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

  /** Removes the directory without following any link in it (apps may own subdirectories). */
  remove(): void {
    let st: fs.Stats;
    try { st = fs.lstatSync(this.dir); } catch { return; }
    if (!st.isDirectory()) return;
    removeTree(path.dirname(this.dir), path.basename(this.dir), st.uid);
  }
}

const euid = (): number => process.geteuid?.() ?? 0;

/**
 * Why a registry entry is not to be trusted, or null if it is: a real
 * directory (not a link), owned by whoever runs this or by root, that nobody
 * else can write into. Anything else may have been planted by another local
 * user, and acting on it (signalling the pids it names, removing it) would
 * let them steer us.
 */
export function distrustOf(dir: string): string | null {
  let st: fs.Stats;
  try { st = fs.lstatSync(dir); } catch { return 'it is gone'; }
  if (st.isSymbolicLink()) return 'it is a symbolic link';
  if (!st.isDirectory()) return 'it is not a directory';
  if (st.uid !== euid() && st.uid !== 0) return `it belongs to uid ${st.uid}, neither this user (${euid()}) nor root`;
  if ((st.mode & 0o022) !== 0) return `others may write into it (mode ${(st.mode & 0o777).toString(8)})`;
  return null;
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

/** Where `passenger agent` run by root (and the shipped systemd unit) keeps its instance: outside /tmp, so systemd's PrivateTmp hides nothing. */
export const SERVICE_REGISTRY_DIR = '/run/passenger-ts';

/**
 * Where a server puts its instance dir: --instance-registry-dir, else
 * $PASSENGER_INSTANCE_REGISTRY_DIR, else (as root) /run/passenger-ts, which
 * only root can write, else $TMPDIR, else /tmp.
 */
export function registryDir(flag?: string): string {
  if (!flag && !process.env.PASSENGER_INSTANCE_REGISTRY_DIR && euid() === 0) return SERVICE_REGISTRY_DIR;
  return path.resolve(flag || process.env.PASSENGER_INSTANCE_REGISTRY_DIR || process.env.TMPDIR || os.tmpdir() || '/tmp');
}

/**
 * The registry of a server about to start: registryDir(), except that a
 * standalone server root starts as another user (--user NAME) keeps its
 * instance where that user could keep it ($TMPDIR or /tmp), since the
 * instance directory becomes the user's.
 */
export function serverRegistryDir(o: { instanceRegistryDir?: string; user?: string; mode: string }): string {
  if (o.mode === 'standalone' && o.user !== undefined && !o.instanceRegistryDir && !process.env.PASSENGER_INSTANCE_REGISTRY_DIR) {
    return path.resolve(process.env.TMPDIR || os.tmpdir() || '/tmp');
  }
  return registryDir(o.instanceRegistryDir);
}

/** Where the tools look: the flag or $PASSENGER_INSTANCE_REGISTRY_DIR if given, else $TMPDIR (or /tmp) and the service's directory. */
export function registryDirs(flag?: string): string[] {
  if (flag || process.env.PASSENGER_INSTANCE_REGISTRY_DIR) return [registryDir(flag)];
  return [...new Set([path.resolve(process.env.TMPDIR || os.tmpdir() || '/tmp'), SERVICE_REGISTRY_DIR])];
}

/** A registry's instance directories: those we trust, and those we ignore with the reason. */
export interface RegistryScan {
  trusted: InstanceDir[];
  ignored: { dir: string; why: string }[];
}

export function scanRegistry(registry: string): RegistryScan {
  const scan: RegistryScan = { trusted: [], ignored: [] };
  let names: string[];
  try { names = fs.readdirSync(registry); } catch { return scan; }
  for (const n of names) {
    if (!n.startsWith(INSTANCE_PREFIX)) continue;
    const dir = path.join(registry, n);
    const why = distrustOf(dir);
    if (why === null) scan.trusted.push(new InstanceDir(dir));
    else scan.ignored.push({ dir, why });
  }
  return scan;
}

/** The live instances in a registry that we trust. */
export function listInstances(registry: string): InstanceDir[] {
  return scanRegistry(registry).trusted.filter((i) => i.isLive());
}

/** The untrusted entries of these registries, one line each, for a hint or the log. */
export function describeIgnored(registries: string[]): string[] {
  return registries.flatMap((r) => scanRegistry(r).ignored.map((e) => `ignored ${e.dir}: ${e.why}`));
}

/**
 * Removes the instance dirs we trust whose watchdog is gone (a server that
 * was killed), and stops the app processes they recorded. Young dirs without
 * properties yet are left alone: they may be starting. Entries we do not
 * trust are left alone and named through `warn`.
 */
export function cleanStale(registry: string, warn: (msg: string) => void = () => undefined): string[] {
  const removed: string[] = [];
  const scan = scanRegistry(registry);
  for (const e of scan.ignored) warn(`instance registry: ignored ${e.dir} (${e.why})`);
  for (const inst of scan.trusted) {
    const props = inst.readProperties();
    if (props === null) {
      let age = 0;
      try { age = Date.now() - fs.statSync(inst.dir).mtimeMs; } catch { continue; }
      if (age < 60_000) continue;
    } else if (isAlive(props.watchdog_pid, props.watchdog_start_ticks)) continue;
    // Kill app processes a dead instance left behind (pid-exact).
    if (distrustOf(inst.processesDir) === null) {
      for (const r of inst.processRecords()) {
        if (signalRecordedGroup(r, 'SIGKILL')) warn(`stopped app process ${r.pid} left behind by a dead server (${inst.dir})`);
      }
    }
    try {
      inst.remove();
      removed.push(inst.dir);
    } catch (e) {
      warn(`instance registry: could not remove ${inst.dir}: ${(e as Error).message}`);
    }
  }
  return removed;
}

/**
 * Makes the registry directory if needed (only its owner may write it) and
 * refuses one that others could plant entries in, unless it is sticky like
 * /tmp, where entries can be told apart by their owner.
 */
function ensureRegistry(registry: string, serverUid: number | undefined): void {
  fs.mkdirSync(registry, { recursive: true, mode: 0o755 });
  const st = fs.statSync(registry);
  if (!st.isDirectory()) throw new ConfigError(`the instance registry ${registry} is not a directory`);
  if (st.uid !== euid() && st.uid !== 0 && st.uid !== serverUid) {
    throw new ConfigError(`the instance registry ${registry} belongs to uid ${st.uid}, neither this user nor root`, 'choose another with --instance-registry-dir');
  }
  if ((st.mode & 0o022) !== 0 && (st.mode & 0o1000) === 0) {
    throw new ConfigError(`the instance registry ${registry} may be written by others (mode ${(st.mode & 0o7777).toString(8)}) and is not sticky`, 'choose another with --instance-registry-dir');
  }
}

/** `serverUid`: the user a server started by root will run as (--user), whose registry it may use. */
export function createInstanceDir(registry: string, warn?: (msg: string) => void, serverUid?: number): InstanceDir {
  ensureRegistry(registry, serverUid);
  cleanStale(registry, warn);
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
    const ignored = describeIgnored(dirs);
    throw new PassengerError('E_NO_INSTANCE', `no running server found in ${registry}`,
      `start one with \`passenger start\`, or pass --instance-registry-dir (or set PASSENGER_INSTANCE_REGISTRY_DIR) if it uses another directory${ignored.length ? `; ${ignored.join('; ')}` : ''}`);
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
