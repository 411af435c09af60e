// Files written where someone else may have planted a link: a PID file or a
// log in an app directory another user owns, a registry in /tmp. They are
// opened without following a symlink and checked on the opened descriptor
// (a regular file, one link, owned by us), so root never writes through a
// name another user chose. A leaf module: imports nothing of ours.
import * as fs from 'node:fs';

export class UnsafeFileError extends Error {
  constructor(readonly file: string, why: string) {
    super(`refusing to write ${file}: ${why}`);
  }
}

const euid = (): number => process.geteuid?.() ?? 0;

/**
 * Opens `file` for writing (appending, or replacing its content), creating it
 * if missing. Throws UnsafeFileError when it is a symlink, not a regular
 * file, has other hard links, or belongs to another user.
 */
export function openOwnFile(file: string, how: 'append' | 'replace'): number {
  const { O_WRONLY, O_CREAT, O_APPEND, O_NOFOLLOW, O_NONBLOCK } = fs.constants;
  let fd: number;
  try {
    // O_NONBLOCK: a FIFO planted under the name must not hang us on open.
    fd = fs.openSync(file, O_WRONLY | O_CREAT | O_NOFOLLOW | O_NONBLOCK | (how === 'append' ? O_APPEND : 0), 0o644);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'ELOOP') throw new UnsafeFileError(file, 'it is a symbolic link');
    if (err.code === 'ENXIO') throw new UnsafeFileError(file, 'it is not a regular file');
    throw e;
  }
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile()) throw new UnsafeFileError(file, 'it is not a regular file');
    if (st.nlink !== 1) throw new UnsafeFileError(file, `it has ${st.nlink} hard links`);
    if (st.uid !== euid()) throw new UnsafeFileError(file, `it belongs to uid ${st.uid}, not to uid ${euid()} (remove it, or choose another path)`);
    if (how === 'replace') fs.ftruncateSync(fd, 0);
    return fd;
  } catch (e) {
    fs.closeSync(fd);
    throw e;
  }
}

/** Replaces a file's content through openOwnFile. */
export function writeOwnFile(file: string, content: string): void {
  const fd = openOwnFile(file, 'replace');
  try {
    fs.writeSync(fd, content);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * A regular file's content and owner, read without following a symlink (a
 * link is null, as is anything but a regular file): what a PID file must be
 * before its PID is weighed at all.
 */
export function readRegularFile(file: string, maxBytes = 4096): { text: string; uid: number } | null {
  let fd: number;
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
  } catch {
    return null;
  }
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile()) return null;
    const buf = Buffer.alloc(maxBytes);
    const n = fs.readSync(fd, buf, 0, maxBytes, 0);
    return { text: buf.toString('utf8', 0, n), uid: st.uid };
  } finally {
    fs.closeSync(fd);
  }
}

/** Why openOwnFile would refuse `file` as it is now, or null (also when it does not exist yet). */
export function distrustOfFile(file: string): string | null {
  let st: fs.Stats;
  try { st = fs.lstatSync(file); } catch { return null; }
  if (st.isSymbolicLink()) return 'it is a symbolic link';
  if (!st.isFile()) return 'it is not a regular file';
  if (st.nlink !== 1) return `it has ${st.nlink} hard links`;
  if (st.uid !== euid()) return `it belongs to uid ${st.uid}, not to uid ${euid()}`;
  return null;
}
