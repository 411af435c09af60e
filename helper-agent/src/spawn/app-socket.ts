// An app's Unix socket lives in a directory of its own that only the app's
// user (and root) may enter; both go when the process does.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { AppUser } from './app-user';

export const APP_SOCKET_NAME = 'app.sock';

/**
 * Removes an app's socket and then its directory, never recursively: the
 * directory belongs to the app's user, who could have planted a symlink
 * inside for a recursive removal to follow.
 */
export function removeAppSocket(socketFile: string): void {
  fs.rm(socketFile, { force: true }, () => fs.rmdir(path.dirname(socketFile), () => undefined));
}

/**
 * A fresh directory for one process's socket (never one left behind): mode
 * 0700, owned by the app's user, so no other app can reach or replace the
 * socket in it. Its parent (apps/) is ours and only traversable by others.
 */
export function makeSocketDir(parent: string, id: number, who: AppUser | null): string {
  const dir = fs.mkdtempSync(path.join(parent, `${id}-`));
  if (who) fs.chownSync(dir, who.uid, who.gid);
  return dir;
}
