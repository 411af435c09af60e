// Users and groups as the C library sees them (getpwnam(3) and friends, through
// the native addon), so users from LDAP or another directory service count too.
// A name made of digits stands for that id, as chown(1) takes it.
import { lookupGroup, lookupUser, type GroupEntry, type UserEntry } from './native';

export type { GroupEntry, UserEntry };

function keyOf(nameOrId: string | number): string | number {
  return typeof nameOrId === 'string' && /^\d+$/.test(nameOrId) ? Number(nameOrId) : nameOrId;
}

/** The user's entry: uid, primary gid, home, shell, supplementary groups (from `gid` if given); null if there is no such user. */
export function userEntry(nameOrUid: string | number, gid?: number): UserEntry | null {
  return lookupUser(keyOf(nameOrUid), gid);
}

export function groupEntry(nameOrGid: string | number): GroupEntry | null {
  return lookupGroup(keyOf(nameOrGid));
}

/** The uid of a user name (or a uid written as digits, even without an entry); null if unknown. */
export function uidOf(user: string): number | null {
  if (/^\d+$/.test(user)) return Number(user);
  return userEntry(user)?.uid ?? null;
}

/** The gid of a group name (or a gid written as digits, even without an entry); null if unknown. */
export function gidOf(group: string): number | null {
  if (/^\d+$/.test(group)) return Number(group);
  return groupEntry(group)?.gid ?? null;
}
