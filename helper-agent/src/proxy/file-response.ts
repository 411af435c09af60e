// The HTTP decisions for a static file, as pure functions of the request
// headers and the file's size and mtime: its validators, whether the client's
// copy is current (304), and which bytes a Range asks for (206, 416).

/** A weak entity tag: size and mtime tell a changed file, not that its bytes are the same. */
export function etagOf(size: number, mtimeMs: number): string {
  return `W/"${size.toString(16)}-${Math.floor(mtimeMs).toString(16)}"`;
}

/** HTTP dates have whole seconds: compare mtimes at that precision. */
function seconds(ms: number): number {
  return Math.floor(ms / 1000);
}

/** Weak comparison: the opaque tags are equal, whatever the W/ prefixes. */
function weakEqual(a: string, b: string): boolean {
  return (a.startsWith('W/') ? a.slice(2) : a) === (b.startsWith('W/') ? b.slice(2) : b);
}

/**
 * Whether the client's copy is current: If-None-Match when sent (any tag in
 * the list, or `*`), else If-Modified-Since (a date at or after the mtime; a
 * date that does not parse is ignored). Only for GET and HEAD, the methods
 * static files answer.
 */
export function notModified(ifNoneMatch: string | undefined, ifModifiedSince: string | undefined, etag: string, mtimeMs: number): boolean {
  if (ifNoneMatch !== undefined) {
    if (ifNoneMatch.trim() === '*') return true;
    return ifNoneMatch.split(',').some((t) => weakEqual(t.trim(), etag));
  }
  if (ifModifiedSince !== undefined) {
    const since = Date.parse(ifModifiedSince);
    return !Number.isNaN(since) && seconds(mtimeMs) <= seconds(since);
  }
  return false;
}

/**
 * Whether a Range still applies: without If-Range it does; an entity tag
 * needs a strong match, which our weak tags never give; a date must be the
 * file's Last-Modified exactly. Otherwise the whole file is sent.
 */
export function ifRangeHolds(ifRange: string | undefined, mtimeMs: number): boolean {
  if (ifRange === undefined) return true;
  const v = ifRange.trim();
  if (v.startsWith('"') || v.startsWith('W/')) return false;
  const date = Date.parse(v);
  return !Number.isNaN(date) && seconds(date) === seconds(mtimeMs);
}

// One byte range. A list of ranges is answered with the whole file (allowed,
// and simpler than multipart/byteranges); so is anything that does not parse.
const ONE_RANGE = /^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$/i;

export type ByteRange = { start: number; end: number };

/**
 * The bytes a Range header asks of a file of `size` bytes: an inclusive
 * range, `'unsatisfiable'` (416), or null to ignore the header (200).
 */
export function byteRange(header: string, size: number): ByteRange | 'unsatisfiable' | null {
  const m = ONE_RANGE.exec(header);
  if (m === null) return null;
  const [, first, last] = m;
  if (first === '') {
    if (last === '') return null;
    // A suffix: the last N bytes, all of them if the file is shorter.
    const n = Number(last);
    if (n === 0 || size === 0) return 'unsatisfiable';
    return { start: Math.max(0, size - n), end: size - 1 };
  }
  const start = Number(first);
  if (last !== '' && Number(last) < start) return null; // not a valid range: the header is ignored
  if (start >= size) return 'unsatisfiable';
  return { start, end: last === '' ? size - 1 : Math.min(Number(last), size - 1) };
}
