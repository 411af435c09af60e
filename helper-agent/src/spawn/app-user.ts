// Who an app process runs as when the agent runs as root (Passenger's rules):
// the app's `user`, else the owner of its startup file; root means the default
// user. The group is the app's `group`, else that user's primary group; group
// 0 means the default group. With user switching off, every app runs as the
// default user. Never root: an app is code the agent does not trust.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PASSENGERFILE, type GroupOptions, type Options } from '../config';
import { ConfigError, SpawnError } from '../errors';
import { groupEntry, userEntry, type GroupEntry, type UserEntry } from '../platform/users';

export interface UserPolicy {
  switching: boolean;
  defaultUser: string;
  /** Default: the default user's primary group. */
  defaultGroup: string | undefined;
}

/** Everything a spawn needs to become the app's user. */
export interface AppUser {
  name: string;
  uid: number;
  gid: number;
  /** Supplementary groups, as initgroups(name, gid) sets them. */
  groups: number[];
  home: string;
  shell: string;
}

/** The user and group databases and file owners; the real ones by default, fakes in unit tests. */
export interface UserDb {
  user(nameOrUid: string | number, gid?: number): UserEntry | null;
  group(nameOrGid: string | number): GroupEntry | null;
  /** The owner of a file (following symlinks, as the file that runs), or null if it cannot be read. */
  ownerOf(file: string): { uid: number; gid: number } | null;
}

export const SYSTEM_USER_DB: UserDb = {
  user: userEntry,
  group: groupEntry,
  ownerOf(file) {
    try {
      const st = fs.statSync(file);
      return { uid: st.uid, gid: st.gid };
    } catch {
      return null;
    }
  },
};

type AppIdentity = Pick<GroupOptions, 'appRoot' | 'startupFile' | 'appStartCommand' | 'user' | 'group'>;

/**
 * The file whose owner an app runs as: its startup file; for an
 * app_start_command app, its Passengerfile.json, else its root.
 */
export function ownerFileOf(o: AppIdentity, db: UserDb = SYSTEM_USER_DB): string {
  if (!o.appStartCommand) return path.resolve(o.appRoot, o.startupFile);
  const file = path.join(o.appRoot, PASSENGERFILE);
  return db.ownerOf(file) !== null ? file : o.appRoot;
}

/**
 * The default user and group, checked: both exist and the user is not root.
 * Throws ConfigError (the agent checks this at start, so a typo stops it at once).
 */
export function defaultIdentity(policy: UserPolicy, db: UserDb = SYSTEM_USER_DB): { user: UserEntry; gid: number } {
  const user = db.user(policy.defaultUser);
  if (user === null) throw new ConfigError(`the default user "${policy.defaultUser}" does not exist`, 'name an existing user with --default-user');
  if (user.uid === 0) throw new ConfigError('the default user must not be root: apps never run as root', 'name an unprivileged user with --default-user (default nobody)');
  let gid = user.gid;
  if (policy.defaultGroup !== undefined) {
    const g = db.group(policy.defaultGroup);
    if (g === null) throw new ConfigError(`the default group "${policy.defaultGroup}" does not exist`, 'name an existing group with --default-group');
    gid = g.gid;
  }
  if (gid === 0) throw new ConfigError('the default group must not be root\'s group', 'name another group with --default-group');
  return { user, gid };
}

/**
 * As root, at start: the default user and group must exist and not be root,
 * and the user the app will run as must be able to reach it (a checkout
 * under /root cannot be): ConfigError otherwise, before anything starts.
 */
export function checkAppUsers(o: Options): void {
  if (process.getuid?.() !== 0) return;
  const policy: UserPolicy = { switching: o.userSwitching, defaultUser: o.defaultUser, defaultGroup: o.defaultGroup };
  defaultIdentity(policy);
  let who: AppUser;
  try {
    who = appUserFor(o, policy);
  } catch {
    return; // reported by the spawn, on the error page and in the log
  }
  const why = accessProblem(o.appRoot, o.appStartCommand ? null : path.resolve(o.appRoot, o.startupFile), who);
  if (why !== null) {
    throw new ConfigError(`the app would run as ${who.name} (apps never run as root; see "Who apps run as" in the README), and ${who.name} cannot start it: ${why}`,
      `let ${who.name} through (chmod o+x on that directory), move the app where others can read it, run as its owner, or name its user with "user" in Passengerfile.json`);
  }
}

/** Who the app runs as; throws SpawnError (step "user") for a user or group that does not exist. */
export function appUserFor(o: AppIdentity, policy: UserPolicy, db: UserDb = SYSTEM_USER_DB): AppUser {
  let def: { user: UserEntry; gid: number };
  try {
    def = defaultIdentity(policy, db);
  } catch (e) {
    throw new SpawnError('user', (e as ConfigError).message, '', (e as ConfigError).hint);
  }
  let user: UserEntry;
  let gid: number;
  if (!policy.switching) {
    ({ user, gid } = def);
  } else {
    let entry: UserEntry | null;
    const file = ownerFileOf(o, db);
    const ownerOf = (): { uid: number } => {
      const owner = db.ownerOf(file);
      if (owner === null) throw new SpawnError('user', `cannot read the owner of ${file}`, '', 'check that the app root and its startup file exist');
      return owner;
    };
    if (o.user !== undefined) {
      entry = db.user(o.user);
      if (entry === null) {
        throw new SpawnError('user', `the user "${o.user}" the app is to run as (Passengerfile.json "user") does not exist`, '',
          'create that user, or name an existing one in "user"');
      }
      // Whoever owns the app's files could otherwise run their code as
      // anyone: a named user counts only for root's apps, or if it is the owner.
      const owner = entry.uid === 0 ? null : ownerOf();
      if (owner !== null && owner.uid !== 0 && entry.uid !== owner.uid) {
        throw new SpawnError('user', `${file} belongs to uid ${owner.uid}, so the app may run only as that user, not as "${o.user}" ("user")`, '',
          'drop "user", or give the app\'s files to that user (chown)');
      }
    } else {
      const owner = ownerOf();
      entry = db.user(owner.uid);
      if (entry === null) {
        throw new SpawnError('user', `${file} belongs to uid ${owner.uid}, which has no user entry`, '',
          'give the file to an existing user (chown), or name one in Passengerfile.json "user"');
      }
    }
    if (entry.uid === 0) ({ user, gid } = def);
    else {
      user = entry;
      gid = entry.gid;
    }
  }
  if (policy.switching && o.group !== undefined) {
    const g = db.group(o.group);
    if (g === null) {
      throw new SpawnError('user', `the group "${o.group}" the app is to run as (Passengerfile.json "group") does not exist`, '',
        'create that group, or name an existing one in "group"');
    }
    // Likewise a named group: one of the user's own, unless the app is root's.
    const ownerUid = db.ownerOf(ownerFileOf(o, db))?.uid;
    if (ownerUid !== 0 && g.gid !== user.gid && !user.groups.includes(g.gid)) {
      throw new SpawnError('user', `the app's user ${user.name} is not in the group "${o.group}" ("group"), and the app is not root's`, '',
        'name one of the user\'s own groups, or add the user to that group');
    }
    gid = g.gid;
  }
  if (gid === 0) gid = def.gid;
  // The supplementary groups initgroups(name, gid) would set.
  const groups = gid === user.gid ? user.groups : (db.user(user.uid, gid) ?? user).groups;
  return { name: user.name, uid: user.uid, gid, groups, home: user.home, shell: user.shell };
}

/** The environment an app gets from its user's entry, as a login would set it. */
export function userEnv(u: AppUser): NodeJS.ProcessEnv {
  return { HOME: u.home, USER: u.name, LOGNAME: u.name, SHELL: u.shell };
}

/** What a user may do to one file, by its mode bits (owner, then group, then others). */
function allows(st: fs.Stats, u: Pick<AppUser, 'uid' | 'gid' | 'groups'>, bit: 4 | 1): boolean {
  if (st.uid === u.uid) return ((st.mode >> 6) & bit) !== 0;
  if (st.gid === u.gid || u.groups.includes(st.gid)) return ((st.mode >> 3) & bit) !== 0;
  return (st.mode & bit) !== 0;
}

/**
 * Why `u` could not start the app, or null: it must pass through every
 * directory down to the app root (its working directory) and, for a Node
 * app, read the startup file. Checked before spawning as that user, so the
 * error names the directory to open up instead of the app's own "cannot
 * find module". (Mode bits only: an ACL that grants more is not seen.)
 */
export function accessProblem(appRoot: string, startup: string | null, u: Pick<AppUser, 'uid' | 'gid' | 'groups'>): string | null {
  let real: string;
  try {
    real = fs.realpathSync(startup ?? appRoot);
  } catch {
    return null; // a missing file is reported on its own
  }
  const dirs: string[] = [];
  for (let d = startup === null ? real : path.dirname(real); ; d = path.dirname(d)) {
    dirs.unshift(d);
    if (d === path.dirname(d)) break;
  }
  for (const d of dirs) {
    let st: fs.Stats;
    try { st = fs.statSync(d); } catch { return null; }
    if (!allows(st, u, 1)) return `${d} (mode ${(st.mode & 0o777).toString(8)}, owner uid ${st.uid}) cannot be passed through`;
  }
  if (startup !== null) {
    let st: fs.Stats;
    try { st = fs.statSync(real); } catch { return null; }
    if (!allows(st, u, 4)) return `${real} (mode ${(st.mode & 0o777).toString(8)}, owner uid ${st.uid}) cannot be read`;
  }
  return null;
}
