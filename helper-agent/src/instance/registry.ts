// The instance registry: the directory where servers keep their instance
// directories ($TMPDIR or /tmp, /run/passenger-ts as root). Since /tmp is
// anyone's, nothing in it is taken on trust: entries that are links, belong to
// another user, or that others can write are ignored and named; stale ones we
// trust are removed without following links, and only the processes their
// records prove ours are killed.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ConfigError, PassengerError } from '../errors';
import { isAlive } from '../platform/procfs';
import { INSTANCE_PREFIX, InstanceDir, signalRecordedGroup } from './instance-dir';

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

