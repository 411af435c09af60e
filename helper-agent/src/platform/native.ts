// The only file that loads the native addon (native/, built by `npm install`).
import * as path from 'node:path';

export interface PeerCredentials {
  pid: number;
  uid: number;
  gid: number;
}

/** A user's entry, as getpwnam(3) gives it, with the groups initgroups(3) would set. */
export interface UserEntry {
  name: string;
  uid: number;
  gid: number;
  home: string;
  shell: string;
  /** Supplementary groups (getgrouplist(3)): the user's own group and every group listing it. */
  groups: number[];
}

export interface GroupEntry {
  name: string;
  gid: number;
}

interface Addon {
  getPeerCredentials(fd: number): PeerCredentials;
  listenTcp(host: string, port: number, backlog: number): number;
  listenUnix(path: string, backlog: number, mode: number): number;
  openAppendAs(path: string, uid: number, gid: number): number;
  removeTree(parent: string, name: string, ownerUid: number): void;
  setCloexec(fd: number): void;
  trimMemory(): boolean;
  setThreadNice(nice: number): void;
  lookupUser(key: string | number, gid?: number): UserEntry | null;
  lookupGroup(key: string | number): GroupEntry | null;
}

const ADDON_PATH = path.resolve(__dirname, '..', '..', '..', '..', 'native', 'build', 'Release', 'passenger_native.node');

let addon: Addon | null = null;

function load(): Addon {
  if (addon === null) {
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      addon = require(ADDON_PATH) as Addon;
    } catch (e) {
      throw new Error(`the native addon is not built (${ADDON_PATH}): run \`npm install\` (it needs python3, make and g++): ${(e as Error).message}`);
    }
  }
  return addon;
}

/** The pid, uid and gid of the process at the other end of a connected Unix socket. */
export function getPeerCredentials(fd: number): PeerCredentials {
  return load().getPeerCredentials(fd);
}

/**
 * A listening socket's fd (close-on-exec), bound and listening but never
 * accepted from here: whoever it is handed to accepts.
 */
export function listenTcp(host: string, port: number, backlog = 511): number {
  return load().listenTcp(host, port, backlog);
}

/** `mode`: the socket file's permissions, set as it is created (null: as the umask has them). */
export function listenUnix(path: string, mode: number | null, backlog = 511): number {
  return load().listenUnix(path, backlog, mode ?? -1);
}

/** Marks an inherited fd close-on-exec, so processes we start do not inherit it too. */
export function setCloexec(fd: number): void {
  load().setCloexec(fd);
}

/** Returns the C heap's free pages to the system (malloc_trim(3)); true if any went. */
export function trimMemory(): boolean {
  return load().trimMemory();
}

/**
 * Gives the calling thread alone the nice value `nice`; the processes and
 * threads it starts from then on begin at 0. Throws an errno error.
 */
export function setThreadNice(nice: number): void {
  load().setThreadNice(nice);
}

/**
 * Removes the directory `parent/name` (which must belong to `ownerUid`) and
 * everything in it, without following any symlink, even one swapped in while
 * it runs. A missing directory is not an error.
 */
export function removeTree(parent: string, name: string, ownerUid: number): void {
  load().removeTree(parent, name, ownerUid);
}

/**
 * A user by name or uid through the C library (so directory-service users
 * count); null if there is none. Its groups start from `gid` when given (as
 * initgroups(name, gid) would set them), else from its own group.
 */
export function lookupUser(key: string | number, gid?: number): UserEntry | null {
  return load().lookupUser(key, gid);
}

/** A group by name or gid through the C library; null if there is none. */
export function lookupGroup(key: string | number): GroupEntry | null {
  return load().lookupGroup(key);
}

/**
 * Opens `path` for appending (created 0644 if missing, the last component
 * never followed) with the file-system identity of `uid`/`gid`: root then
 * writes only where that user could. Returns the fd; throws an errno error.
 */
export function openAppendAs(path: string, uid: number, gid: number): number {
  return load().openAppendAs(path, uid, gid);
}
