// Files under public/ in standalone: what is served (never a dotfile, never a
// file outside public/, even one swapped in after the listing), and how
// (Range, conditional requests, HEAD). One server per test; the listing is
// refreshed rarely (--stat-throttle-rate 60), so a swap after it is a real
// window that only the checks on the opened file close.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test, type TestContext } from 'node:test';
import { appCopy, eventually, request, startServer, tmpDir, type Server } from '../helpers';

const SECRET = 'secret outside public/: never served\n';
const RACE_MS = 4_000;

interface Site {
  s: Server;
  pub: string;
  outside: string;
}

/** The static-site fixture with public/ holding the files the tests ask for, and a secret outside it. */
async function site(t: TestContext, files: Record<string, string | Buffer>): Promise<Site> {
  const dir = appCopy(t, 'static-site');
  const pub = path.join(dir, 'public');
  for (const [name, body] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(pub, name)), { recursive: true });
    fs.writeFileSync(path.join(pub, name), body);
  }
  // Same filesystem as public/, so a rename can swap one for the other.
  const outside = tmpDir(t, 'ptest-outside-');
  fs.writeFileSync(path.join(outside, 'secret.txt'), SECRET);
  const s = await startServer(t, dir, ['--stat-throttle-rate', '60']);
  return { s, pub, outside };
}

const fromApp = (method: string, url: string): string => `app saw ${method} ${url}\n`;

test('dotfiles and dot-directories under public/ are not served: the app gets the request as sent', async (t) => {
  const { s } = await site(t, {
    'hello.txt': 'hello\n', '.env': 'SECRET=1\n', '.git/config': '[core]\n', 'sub/.hidden': 'hidden\n', '.dir/visible.txt': 'in a dot-dir\n',
  });
  assert.equal((await request(s.port, '/hello.txt')).body, 'hello\n', 'a plain file is served');
  for (const url of ['/.env', '/.git/config', '/%2eenv', '/%2Eenv', '/%2egit/config', '/sub/.hidden', '/sub/%2ehidden', '/.dir/visible.txt', '/.env?x=1']) {
    const r = await request(s.port, url);
    assert.equal(r.body, fromApp('GET', url), `${url} went to the app`);
    const head = await request(s.port, url, { method: 'HEAD' });
    assert.notEqual(head.headers['content-length'], String('SECRET=1\n'.length), `HEAD ${url} is not the dotfile`);
  }
});

test('a listed file replaced by a symlink to a file outside public/ is never served', async (t) => {
  const { s, pub, outside } = await site(t, { 'race.txt': 'public race file\n', 'swap.txt': 'public file\n' });
  assert.equal((await request(s.port, '/swap.txt')).body, 'public file\n');
  // Swapped for good after the listing: the next request must not follow it.
  fs.symlinkSync(path.join(outside, 'secret.txt'), path.join(outside, 'link'));
  fs.renameSync(path.join(outside, 'link'), path.join(pub, 'swap.txt'));
  const swapped = await request(s.port, '/swap.txt');
  assert.equal(swapped.body, fromApp('GET', '/swap.txt'), 'the symlink is left to the app');

  // A swap loop racing the requests: the file and the symlink change places
  // (atomic renames) while four clients ask for it, for a bounded time.
  let stop = false;
  const swapper = (async () => {
    let n = 0;
    while (!stop) {
      const tmp = path.join(outside, `x${n++}`);
      if (n % 2 === 0) await fs.promises.symlink(path.join(outside, 'secret.txt'), tmp);
      else await fs.promises.writeFile(tmp, 'public race file\n');
      await fs.promises.rename(tmp, path.join(pub, 'race.txt'));
    }
    return n;
  })();
  const seen = { static: 0, app: 0, other: 0 };
  const end = Date.now() + RACE_MS;
  try {
    await Promise.all(Array.from({ length: 4 }, async () => {
      while (Date.now() < end) {
        const r = await request(s.port, '/race.txt');
        assert.ok(!r.body.includes('secret'), `the secret was served (${r.status})`);
        if (r.body === 'public race file\n') seen.static++;
        else if (r.body === fromApp('GET', '/race.txt')) seen.app++;
        else seen.other++;
      }
    }));
  } finally {
    stop = true;
  }
  const swaps = await swapper;
  t.diagnostic(`${swaps} swaps; answered from public/ ${seen.static}, by the app ${seen.app}, otherwise ${seen.other}`);
  assert.equal(seen.other, 0, 'every answer is the file or the app');
  assert.ok(seen.static > 0, 'the regular file was still served between swaps');
});

test('a listed directory replaced by a symlink to a directory outside public/ is never followed', async (t) => {
  const { s, pub, outside } = await site(t, { 'sub/inner.txt': 'inner\n' });
  assert.equal((await request(s.port, '/sub/inner.txt')).body, 'inner\n');
  const elsewhere = path.join(outside, 'dir');
  fs.mkdirSync(elsewhere);
  fs.copyFileSync(path.join(outside, 'secret.txt'), path.join(elsewhere, 'inner.txt'));
  fs.renameSync(path.join(pub, 'sub'), path.join(outside, 'old-sub'));
  fs.symlinkSync(elsewhere, path.join(pub, 'sub'));
  const r = await request(s.port, '/sub/inner.txt');
  assert.equal(r.body, fromApp('GET', '/sub/inner.txt'), 'the file behind the symlinked directory is left to the app');
});

test('a listed file that is gone goes to the app; a FIFO swapped in does not hang the server', async (t) => {
  const { s, pub } = await site(t, { 'gone.txt': 'soon gone\n', 'fifo.txt': 'a file for now\n', 'ok.txt': 'ok\n' });
  fs.rmSync(path.join(pub, 'gone.txt'));
  assert.equal((await request(s.port, '/gone.txt')).body, fromApp('GET', '/gone.txt'));
  fs.rmSync(path.join(pub, 'fifo.txt'));
  const { spawnSync } = await import('node:child_process');
  if (spawnSync('mkfifo', [path.join(pub, 'fifo.txt')]).status !== 0) return t.skip('mkfifo is not available');
  assert.equal((await request(s.port, '/fifo.txt', { timeoutMs: 10_000 })).body, fromApp('GET', '/fifo.txt'));
  assert.equal((await request(s.port, '/ok.txt')).body, 'ok\n', 'the server still serves files');
});

test('Range: one range gives 206 with Content-Range, an unsatisfiable one 416, others the whole file', async (t) => {
  const size = 1024 * 1024 + 7;
  const body = Buffer.alloc(size);
  for (let i = 0; i < size; i++) body[i] = 97 + (i % 26); // a..z repeated
  const { s } = await site(t, { 'big.bin': body });
  const whole = await request(s.port, '/big.bin');
  assert.equal(whole.status, 200);
  assert.equal(whole.headers['accept-ranges'], 'bytes');
  assert.equal(whole.body.length, size);

  const first = await request(s.port, '/big.bin', { headers: { Range: 'bytes=0-0' } });
  assert.equal(first.status, 206);
  assert.equal(first.body, 'a');
  assert.equal(first.headers['content-length'], '1');
  assert.equal(first.headers['content-range'], `bytes 0-0/${size}`);

  const middle = await request(s.port, '/big.bin', { headers: { Range: 'bytes=26-29' } });
  assert.equal(middle.status, 206);
  assert.equal(middle.body, 'abcd');
  assert.equal(middle.headers['content-range'], `bytes 26-29/${size}`);

  const suffix = await request(s.port, '/big.bin', { headers: { Range: 'bytes=-3' } });
  assert.equal(suffix.status, 206);
  assert.equal(suffix.body, body.subarray(size - 3).toString());
  assert.equal(suffix.headers['content-range'], `bytes ${size - 3}-${size - 1}/${size}`);

  const open = await request(s.port, '/big.bin', { headers: { Range: `bytes=${size - 2}-` } });
  assert.equal(open.status, 206);
  assert.equal(open.body.length, 2);

  const past = await request(s.port, '/big.bin', { headers: { Range: `bytes=${size - 1}-${size + 100}` } });
  assert.equal(past.status, 206, 'a last position past the end is cut to the end');
  assert.equal(past.headers['content-range'], `bytes ${size - 1}-${size - 1}/${size}`);

  for (const range of [`bytes=${size}-`, `bytes=${size + 10}-${size + 20}`, 'bytes=-0']) {
    const r = await request(s.port, '/big.bin', { headers: { Range: range } });
    assert.equal(r.status, 416, range);
    assert.equal(r.headers['content-range'], `bytes */${size}`, range);
    assert.equal(r.body, '');
  }

  for (const range of ['bytes=0-0,5-6', 'bytes=x-y', 'bytes=5-2', 'items=0-1', '0-1']) {
    const r = await request(s.port, '/big.bin', { headers: { Range: range } });
    assert.equal(r.status, 200, `${range}: the whole file`);
    assert.equal(r.body.length, size, range);
  }

  // If-Range: the range is honoured only while the file is the one named.
  const lastModified = whole.headers['last-modified'] as string;
  const etag = whole.headers.etag as string;
  const same = await request(s.port, '/big.bin', { headers: { Range: 'bytes=0-0', 'If-Range': lastModified } });
  assert.equal(same.status, 206, 'If-Range with the current Last-Modified');
  const stale = await request(s.port, '/big.bin', { headers: { Range: 'bytes=0-0', 'If-Range': 'Tue, 01 Jan 2002 00:00:00 GMT' } });
  assert.equal(stale.status, 200, 'If-Range with another date: the whole file');
  assert.equal(stale.body.length, size);
  const tagged = await request(s.port, '/big.bin', { headers: { Range: 'bytes=0-0', 'If-Range': etag } });
  assert.equal(tagged.status, 200, 'a weak entity tag never matches If-Range: the whole file');

  const head = await request(s.port, '/big.bin', { method: 'HEAD', headers: { Range: 'bytes=0-0' } });
  assert.equal(head.status, 200, 'Range is for GET only');
  assert.equal(head.headers['content-length'], String(size));
  assert.equal(head.body, '');
});

test('conditional requests: ETag and Last-Modified give 304; HEAD has the GET headers and no body', async (t) => {
  const { s, pub } = await site(t, { 'page.html': '<p>hi</p>\n' });
  const r = await request(s.port, '/page.html');
  assert.equal(r.status, 200);
  assert.equal(r.headers['content-type'], 'text/html; charset=utf-8');
  const etag = r.headers.etag as string;
  const lastModified = r.headers['last-modified'] as string;
  assert.match(etag, /^W\/"[^"]+"$/);
  assert.equal(lastModified, fs.statSync(path.join(pub, 'page.html')).mtime.toUTCString());

  const byTag = await request(s.port, '/page.html', { headers: { 'If-None-Match': etag } });
  assert.equal(byTag.status, 304);
  assert.equal(byTag.body, '');
  assert.equal(byTag.headers.etag, etag);
  assert.equal((await request(s.port, '/page.html', { headers: { 'If-None-Match': `"x", ${etag.slice(2)}` } })).status, 304, 'weak comparison, in a list');
  assert.equal((await request(s.port, '/page.html', { headers: { 'If-None-Match': '*' } })).status, 304);
  assert.equal((await request(s.port, '/page.html', { headers: { 'If-None-Match': '"other"' } })).status, 200);
  assert.equal((await request(s.port, '/page.html', { headers: { 'If-None-Match': '"other"', 'If-Modified-Since': lastModified } })).status, 200,
    'If-None-Match decides when both are sent');

  const byDate = await request(s.port, '/page.html', { headers: { 'If-Modified-Since': lastModified } });
  assert.equal(byDate.status, 304);
  assert.equal(byDate.body, '');
  assert.equal((await request(s.port, '/page.html', { headers: { 'If-Modified-Since': 'Tue, 01 Jan 2002 00:00:00 GMT' } })).status, 200);
  assert.equal((await request(s.port, '/page.html', { headers: { 'If-Modified-Since': 'not a date' } })).status, 200);

  // A changed file has another tag: the old one no longer gives 304.
  const file = path.join(pub, 'page.html');
  fs.writeFileSync(file, '<p>changed</p>\n');
  fs.utimesSync(file, new Date(), new Date(Date.now() + 5_000));
  const changed = await eventually(async () => {
    const c = await request(s.port, '/page.html', { headers: { 'If-None-Match': etag } });
    return c.status === 200 && c;
  }, 10_000, 'the changed file');
  assert.equal(changed.body, '<p>changed</p>\n');
  assert.notEqual(changed.headers.etag, etag);

  const head = await request(s.port, '/page.html', { method: 'HEAD' });
  assert.equal(head.status, 200);
  assert.equal(head.body, '');
  assert.equal(head.headers['content-length'], String('<p>changed</p>\n'.length));
  assert.equal(head.headers.etag, changed.headers.etag);
  assert.equal(head.headers['accept-ranges'], 'bytes');
  assert.equal((await request(s.port, '/page.html', { method: 'HEAD', headers: { 'If-None-Match': changed.headers.etag as string } })).status, 304);

  const post = await request(s.port, '/page.html', { method: 'POST', body: 'x' });
  assert.equal(post.body, fromApp('POST', '/page.html'), 'only GET and HEAD are served from public/');
});

test('a hard link in public/ to another user\'s file is not served (root would publish what the link names)', { skip: process.getuid?.() === 0 ? false : 'needs root: the link points to a file of another user' }, async (t) => {
  const dir = appCopy(t, 'static-site');
  const pub = path.join(dir, 'public');
  fs.mkdirSync(pub, { recursive: true });
  const outside = tmpDir(t, 'ptest-outside-');
  fs.writeFileSync(path.join(outside, 'secret.txt'), SECRET, { mode: 0o600 });
  fs.linkSync(path.join(outside, 'secret.txt'), path.join(pub, 'linked.txt'));
  fs.writeFileSync(path.join(pub, 'own.txt'), 'own file\n');
  // public/ and the app are nobody's; the linked file stays root's.
  for (const p of [dir, pub, path.join(pub, 'own.txt'), path.join(dir, 'app.js')]) if (fs.existsSync(p)) fs.chownSync(p, 65534, 65534);
  const s = await startServer(t, dir, ['--stat-throttle-rate', '60']);
  assert.equal((await request(s.port, '/own.txt')).body, 'own file\n');
  const r = await request(s.port, '/linked.txt');
  assert.notEqual(r.body, SECRET);
  assert.equal(r.body, fromApp('GET', '/linked.txt'));
});
