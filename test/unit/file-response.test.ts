// Static file answers as pure decisions: validators, 304, Range and If-Range.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { byteRange, etagOf, ifRangeHolds, notModified } from '../../helper-agent/src/proxy/file-response';

const MTIME = Date.parse('Wed, 03 Jan 2024 10:00:00 GMT') + 250; // a sub-second part, as file systems keep
const DATE = new Date(MTIME).toUTCString();

test('byteRange: one range, suffixes, open ends, cut to the size', () => {
  assert.deepEqual(byteRange('bytes=0-0', 100), { start: 0, end: 0 });
  assert.deepEqual(byteRange('bytes=10-19', 100), { start: 10, end: 19 });
  assert.deepEqual(byteRange('bytes=90-', 100), { start: 90, end: 99 });
  assert.deepEqual(byteRange('bytes=-10', 100), { start: 90, end: 99 });
  assert.deepEqual(byteRange('bytes=-500', 100), { start: 0, end: 99 }, 'a suffix longer than the file is all of it');
  assert.deepEqual(byteRange('bytes=50-99999999999999999999', 100), { start: 50, end: 99 });
  assert.deepEqual(byteRange(' Bytes = 1 - 2 ', 100), { start: 1, end: 2 });
});

test('byteRange: unsatisfiable ranges (416) and ignored headers (whole file)', () => {
  for (const h of ['bytes=100-', 'bytes=100-200', 'bytes=-0', 'bytes=99999999999999999999-']) assert.equal(byteRange(h, 100), 'unsatisfiable', h);
  assert.equal(byteRange('bytes=0-', 0), 'unsatisfiable', 'no byte of an empty file');
  assert.equal(byteRange('bytes=-1', 0), 'unsatisfiable');
  for (const h of ['bytes=0-0,5-6', 'bytes=5-2', 'bytes=-', 'bytes=a-b', 'bytes=1.5-2', 'items=0-1', '0-1', '']) assert.equal(byteRange(h, 100), null, h);
});

test('notModified: If-None-Match decides when sent, else If-Modified-Since', () => {
  const tag = etagOf(100, MTIME);
  assert.match(tag, /^W\/"64-[0-9a-f]+"$/);
  assert.notEqual(etagOf(101, MTIME), tag);
  assert.notEqual(etagOf(100, MTIME + 1000), tag);
  assert.equal(notModified(tag, undefined, tag, MTIME), true);
  assert.equal(notModified(tag.slice(2), undefined, tag, MTIME), true, 'weak comparison');
  assert.equal(notModified(`"a", ${tag} ,"b"`, undefined, tag, MTIME), true);
  assert.equal(notModified(' * ', undefined, tag, MTIME), true);
  assert.equal(notModified('"a"', DATE, tag, MTIME), false, 'a tag that does not match wins over a date that does');
  assert.equal(notModified(undefined, DATE, tag, MTIME), true, 'the sub-second part of the mtime is not in HTTP dates');
  assert.equal(notModified(undefined, new Date(MTIME + 60_000).toUTCString(), tag, MTIME), true);
  assert.equal(notModified(undefined, new Date(MTIME - 1000).toUTCString(), tag, MTIME), false);
  assert.equal(notModified(undefined, 'yesterday', tag, MTIME), false);
  assert.equal(notModified(undefined, undefined, tag, MTIME), false);
});

test('ifRangeHolds: the exact Last-Modified date; never a weak or foreign tag', () => {
  assert.equal(ifRangeHolds(undefined, MTIME), true);
  assert.equal(ifRangeHolds(DATE, MTIME), true);
  assert.equal(ifRangeHolds(new Date(MTIME + 60_000).toUTCString(), MTIME), false, 'a later date is not the same file');
  assert.equal(ifRangeHolds(etagOf(100, MTIME), MTIME), false);
  assert.equal(ifRangeHolds('"strong"', MTIME), false);
  assert.equal(ifRangeHolds('garbage', MTIME), false);
});
