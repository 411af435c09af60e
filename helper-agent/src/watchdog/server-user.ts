// `passenger start --user NAME` as root: the server (watchdog, core) and its
// apps run as NAME, as Passenger Standalone's do. The watchdog binds the
// request socket as root (port 80 works), hands NAME the files it made, and
// then gives up root for good: real, effective and saved ids, and the groups.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Options } from '../config';
import { ConfigError } from '../errors';
import { groupEntry, userEntry } from '../platform/users';

export interface ServerUser {
  name: string;
  uid: number;
  gid: number;
  groups: number[];
}

/** Can `u` create and remove entries in `dir` (by its mode bits)? */
function canWrite(dir: string, u: ServerUser): boolean {
  let st: fs.Stats;
  try { st = fs.statSync(dir); } catch { return false; }
  if (st.uid === u.uid) return (st.mode & 0o300) === 0o300;
  if (u.groups.includes(st.gid) || u.gid === st.gid) return (st.mode & 0o030) === 0o030;
  return (st.mode & 0o003) === 0o003;
}

/**
 * The user a standalone server started by root runs as: null unless root
 * and `user` is set (Passenger ignores it otherwise), or it names root. A
 * missing user or group, or a directory the server must write in that NAME
 * cannot, is a ConfigError before anything starts.
 */
export function serverUserOf(o: Options, registry: string): ServerUser | null {
  if (o.mode !== 'standalone' || o.user === undefined || process.getuid?.() !== 0) return null;
  const entry = userEntry(o.user);
  if (entry === null) throw new ConfigError(`--user ${o.user}: no such user`);
  if (entry.uid === 0) return null;
  let gid = entry.gid;
  if (o.group !== undefined) {
    const g = groupEntry(o.group);
    if (g === null) throw new ConfigError(`--group ${o.group}: no such group`);
    gid = g.gid;
  }
  const groups = gid === entry.gid ? entry.groups : (userEntry(entry.uid, gid) ?? entry).groups;
  const u: ServerUser = { name: entry.name, uid: entry.uid, gid, groups };
  const dirs: [string, string][] = [[registry, 'the instance registry directory (--instance-registry-dir)']];
  if (o.pidFile) dirs.push([path.dirname(o.pidFile), 'the PID file\'s directory (--pid-file)']);
  if (o.socket) dirs.push([path.dirname(o.socket), 'the socket\'s directory (--socket)']);
  for (const [dir, what] of dirs) {
    if (fs.existsSync(dir) && !canWrite(dir, u)) {
      throw new ConfigError(`--user ${u.name}: ${u.name} cannot write in ${what} ${dir}`, `give ${u.name} that directory, or choose another`);
    }
  }
  return u;
}

/**
 * Gives `u` a file root made for it. Opened without following a symlink, so
 * nobody can have it chown another file; a symlink is left as it is.
 */
export function handOver(file: string, u: ServerUser): void {
  let fd: number;
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
  } catch {
    return;
  }
  try { fs.fchownSync(fd, u.uid, u.gid); } finally { fs.closeSync(fd); }
}

/** Gives up root for good; throws if root's uid is left anywhere afterwards. */
export function dropPrivileges(u: ServerUser): void {
  process.setgroups?.(u.groups.length > 0 ? u.groups : [u.gid]);
  process.setgid?.(u.gid);
  process.setuid?.(u.uid);
  if (process.getuid?.() === 0 || process.geteuid?.() === 0) {
    throw new Error(`could not switch to user ${u.name}`);
  }
}
