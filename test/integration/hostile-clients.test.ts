// The default request side against clients that misbehave, on raw loopback
// connections: clients that reset (RST) at every stage of a request, that
// read nothing while the app streams, that end their side early, that send
// a request and the next bytes in one packet after their connection was
// parked, and thousands that come and go at once. Whatever they do, the
// core stays up, gives back every session, and serves on.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { test, type TestContext } from 'node:test';
import { appCopy, eventually, request, sleep, startServer, stopAfter, type Server } from '../helpers';

interface Raw {
  sock: net.Socket;
  /** Everything received so far (latin1). */
  text(): string;
  /** Bytes received so far. */
  bytes(): number;
  /** Settles when the connection closed. */
  closed: Promise<void>;
}

/** A raw connection that writes `first` once connected; `paused`: it reads nothing until resumed. Destroyed after the test. */
function raw(t: TestContext, port: number, first = '', paused = false): Raw {
  let got = '';
  let n = 0;
  const sock = net.connect(port, '127.0.0.1', () => { if (first) sock.write(first, 'latin1'); });
  if (paused) sock.pause();
  sock.on('data', (d: Buffer) => {
    n += d.length;
    if (got.length < 64 * 1024) got += d.toString('latin1');
  });
  sock.on('error', () => undefined);
  const closed = new Promise<void>((resolve) => sock.on('close', () => resolve()));
  stopAfter(t, () => sock.destroy());
  return { sock, text: () => got, bytes: () => n, closed };
}

function privateDirtyMB(pid: number): number {
  const m = /^Private_Dirty:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'));
  return Number(m?.[1] ?? 0) / 1024;
}

async function counts(s: Server): Promise<{ sessions: number; websockets: number; processed: number }> {
  const doc = await s.status();
  const ps = doc.groups.flatMap((g) => g.processes);
  return {
    sessions: ps.reduce((n, p) => n + p.sessions, 0),
    websockets: ps.reduce((n, p) => n + p.websockets, 0),
    processed: ps.reduce((n, p) => n + p.processed, 0),
  };
}

const sessionsAre = async (s: Server, n: number): Promise<boolean> => (await counts(s)).sessions === n;

async function withPublicFile(t: TestContext, fixture: string): Promise<string> {
  const dir = appCopy(t, fixture);
  fs.mkdirSync(path.join(dir, 'public'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'public', 'file.txt'), 'from public\n');
  return dir;
}

const GET = (p: string): string => `GET ${p} HTTP/1.1\r\nHost: x\r\n\r\n`;
const UPGRADE = 'GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n'
  + 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n';

/** A masked text frame, as a client sends it (latin1). */
function frame(text: string): string {
  const mask = [1, 2, 3, 4];
  const p = Buffer.from(text);
  return Buffer.concat([Buffer.from([0x81, 0x80 | p.length, ...mask]), p.map((b, i) => b ^ mask[i & 3])]).toString('latin1');
}

/** The text frame the app sent back (unmasked, short), or null before it came. */
function echoed(text: string): string | null {
  const at = text.indexOf('\r\n\r\n', text.indexOf('HTTP/1.1 101 '));
  if (at === -1 || text.length < at + 6) return null;
  const len = text.charCodeAt(at + 5) & 0x7f;
  return text.length < at + 6 + len ? null : text.slice(at + 6, at + 6 + len);
}

test('clients that reset mid-head, mid-upload, mid-download and while pipelined output is held give back every session; the core serves on', async (t) => {
  const s = await startServer(t, await withPublicFile(t, 'basic'), ['--min-instances', '1']);
  await eventually(async () => (await s.appPids()).length === 1, 20_000, 'a process');
  const core = (await s.status()).instance.core_pid;

  const head = raw(t, s.port, 'GET /pid HTTP/1.1\r\nHo');
  await eventually(() => head.sock.bytesWritten > 0, 10_000, 'the head sent');
  head.sock.resetAndDestroy();

  const upload = raw(t, s.port, `POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: ${100 << 20}\r\n\r\n${'u'.repeat(1 << 20)}`);
  await eventually(() => sessionsAre(s, 1), 20_000, 'the upload with the app');
  upload.sock.resetAndDestroy();
  await eventually(() => sessionsAre(s, 0), 20_000, 'the upload\'s session given back');

  const download = raw(t, s.port, GET('/download?mb=64'), true);
  await eventually(() => sessionsAre(s, 1), 20_000, 'the download with the app');
  download.sock.resetAndDestroy();
  await eventually(() => sessionsAre(s, 0), 20_000, 'the download\'s session given back');

  // The first download fills the connection; the ones behind it hold their output, then make their app wait.
  const held = raw(t, s.port, GET('/download?mb=64') + GET('/chunked') + GET('/download?mb=64') + GET('/file.txt'), true);
  await eventually(() => sessionsAre(s, 2), 20_000, 'two downloads with the app');
  held.sock.resetAndDestroy();
  await eventually(() => sessionsAre(s, 0), 20_000, 'the pipelined requests\' sessions given back');

  await eventually(() => (s.output().match(/download cut short/g) ?? []).length === 3, 20_000, 'the app to see three downloads cut short');
  assert.equal((await s.status()).instance.core_pid, core, 'the same core');
  const after = await request(s.port, '/file.txt');
  assert.deepEqual([after.status, after.body], [200, 'from public\n']);
  assert.equal((await request(s.port, '/pid')).status, 200);
});

test('a client that reads nothing while the app streams: the core holds little of it, and all of it arrives once read, a pipelined response too', async (t) => {
  const s = await startServer(t, appCopy(t, 'basic'), ['--min-instances', '1']);
  await eventually(async () => (await s.appPids()).length === 1, 20_000, 'a process');
  const core = (await s.status()).instance.core_pid;
  const before = privateDirtyMB(core);
  const MB = 128;
  const c = raw(t, s.port, GET(`/download?mb=${MB}`) + GET(`/download?mb=${MB}`), true);
  await eventually(() => sessionsAre(s, 2), 20_000, 'both downloads with the app');
  // Both are with the app, the second one's output held behind the first: neither may pile up in the core.
  let peak = before;
  for (let i = 0; i < 30; i++) {
    peak = Math.max(peak, privateDirtyMB(core));
    await sleep(50);
  }
  t.diagnostic(`core private dirty: ${before.toFixed(1)} MB before, ${peak.toFixed(1)} MB at most while ${2 * MB} MB waited`);
  assert.ok(peak - before < 48, `the core grew by ${(peak - before).toFixed(1)} MB`);
  c.sock.resume();
  // Two answers of the same shape: heads of the same length, and the bodies.
  const total = (): number => 2 * (c.text().indexOf('\r\n\r\n') + 4) + 2 * MB * (1 << 20);
  await eventually(() => c.text().startsWith('HTTP/1.1 200 ') && c.bytes() >= total(), 60_000, 'both answers');
  await eventually(() => sessionsAre(s, 0), 20_000, 'both sessions given back');
  assert.equal(c.bytes(), total());
});

test('half-close: a client that ends its side after a request has left (no answer, its session and app request cut); an idle one is closed', async (t) => {
  const s = await startServer(t, appCopy(t, 'basic'), ['--min-instances', '1']);
  await eventually(async () => (await s.appPids()).length === 1, 20_000, 'a process');
  // The request, then the end of the client's side.
  const gone = raw(t, s.port);
  gone.sock.end(GET('/download?mb=64'));
  await gone.closed;
  // No answer; or, where the core took the request before it saw the end
  // (the two reach it apart on a busy machine), the start of one, cut off.
  const got = gone.text();
  assert.ok(got === '' || (got.startsWith('HTTP/1.1 200 ') && gone.bytes() < 64 * 1024 * 1024),
    `${gone.bytes()} bytes came back, starting ${JSON.stringify(got.slice(0, 120))}`);
  await eventually(() => sessionsAre(s, 0), 20_000, 'the session given back');
  await eventually(() => s.output().includes('download cut short'), 20_000, 'the app\'s response cut off');
  // The end of the client's side in the middle of a head.
  const mid = raw(t, s.port);
  mid.sock.end('GET /pid HTTP/1.1\r\nHo');
  await mid.closed;
  assert.equal(mid.text(), '');
  // After its answer: the connection closes.
  const idle = raw(t, s.port, GET('/pid'));
  await eventually(() => idle.text().endsWith('\r\n0\r\n\r\n'), 20_000, 'the answer (chunked)');
  idle.sock.end();
  await idle.closed;
  assert.match(idle.text(), /^HTTP\/1\.1 200 /);
  assert.equal((await request(s.port, '/pid')).status, 200);
});

test('parked connections (idle through a whole sweep) hand over an upgrade with its first frame in the same packet, and a static file with the next request; resets give everything back', async (t) => {
  const s = await startServer(t, await withPublicFile(t, 'websocket'), ['--min-instances', '1']);
  await eventually(async () => (await s.appPids()).length === 1, 20_000, 'a process');
  const answered = (r: Raw, n: number): boolean => (r.text().match(/HTTP\/1\.1 200 /g) ?? []).length === n && /\r\n\r\n(\d+|slept)$/.test(r.text());
  const conns = Array.from({ length: 4 }, () => raw(t, s.port, GET('/pid')));
  await eventually(() => conns.every((c) => answered(c, 1)), 20_000, 'the first answers');
  // Two of the server's 5 s sweeps: an idle connection is parked at the second.
  await sleep(11_000);
  const [up, file, reset, busy] = conns;
  up.sock.write(UPGRADE + frame('hello'), 'latin1');
  file.sock.write(GET('/file.txt') + GET('/pid'));
  reset.sock.resetAndDestroy();
  busy.sock.write(GET('/sleep?ms=60000'));
  await eventually(() => echoed(up.text()) === 'hello', 20_000, 'the first frame echoed');
  await eventually(() => answered(file, 3) && file.text().includes('from public\n'), 20_000, 'the file and the request after it');
  await eventually(async () => (await counts(s)).sessions === 1, 20_000, 'the long request with the app');
  busy.sock.resetAndDestroy();
  await eventually(async () => { const c = await counts(s); return c.sessions === 0 && c.websockets === 1; }, 20_000, 'only the WebSocket left');
  up.sock.destroy();
  await eventually(async () => (await counts(s)).websockets === 0, 20_000, 'the WebSocket closed');

  // Not parked: an upgrade and its first frame pipelined behind a request.
  const behind = raw(t, s.port, GET('/sleep?ms=200') + UPGRADE + frame('pid'));
  await eventually(() => echoed(behind.text()) !== null, 20_000, 'the frame answered');
  assert.match(echoed(behind.text()) as string, /^\d+$/);
  behind.sock.destroy();
  await eventually(async () => (await counts(s)).websockets === 0, 20_000, 'the WebSocket closed');
});

test('an upgrade pipelined behind a request whose client reset meanwhile takes no session and opens no WebSocket', async (t) => {
  const s = await startServer(t, appCopy(t, 'websocket'), ['--min-instances', '1']);
  await eventually(async () => (await s.appPids()).length === 1, 20_000, 'a process');
  const base = (await counts(s)).processed;
  const socks = Array.from({ length: 3 }, () => raw(t, s.port, GET('/sleep?ms=1500') + UPGRADE));
  await eventually(() => sessionsAre(s, 3), 20_000, 'the three requests with the app');
  for (const c of socks) c.sock.resetAndDestroy();
  // Once the app answered them (into connections that are gone), nothing is left on the process.
  await eventually(async () => (await counts(s)).processed >= base + 3, 20_000, 'the three answers');
  const c = await counts(s);
  assert.deepEqual([c.sessions, c.websockets], [0, 0]);
  assert.equal((await request(s.port, '/pid')).status, 200);
});

test('thousands of connections opened and reset at once: the core stays up, gives back every session, and its memory stays bounded', async (t) => {
  const s = await startServer(t, await withPublicFile(t, 'basic'), ['--min-instances', '1']);
  await eventually(async () => (await s.appPids()).length === 1, 20_000, 'a process');
  const core = (await s.status()).instance.core_pid;
  const ways: ((c: net.Socket) => void)[] = [
    (c) => c.resetAndDestroy(),
    (c) => { c.write('GET /pid HTTP/1.1\r\nHo'); c.resetAndDestroy(); },
    (c) => { c.write(GET('/pid')); c.resetAndDestroy(); },
    (c) => { c.write(GET('/pid')); setImmediate(() => c.resetAndDestroy()); },
    (c) => { c.write(`POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n${'u'.repeat(30_000)}`); setTimeout(() => c.resetAndDestroy(), 2); },
    (c) => { c.write(GET('/download?mb=2')); setTimeout(() => c.resetAndDestroy(), 3); },
    (c) => { c.end(GET('/pid')); setTimeout(() => c.destroy(), 5); },
    (c) => { c.write(GET('/sleep?ms=5') + GET('/download?mb=1') + GET('/pid')); setTimeout(() => c.resetAndDestroy(), 4); },
    (c) => { c.write(GET('/file.txt') + GET('/pid')); setTimeout(() => c.resetAndDestroy(), 1); },
  ];
  const one = (i: number): Promise<void> => new Promise((resolve) => {
    const c = net.connect(s.port, '127.0.0.1', () => ways[i % ways.length](c));
    c.on('error', () => undefined);
    c.resume();
    c.on('close', () => resolve());
    // Bounded whatever the server does.
    setTimeout(() => c.destroy(), 10_000).unref();
  });
  const round = async (n: number): Promise<void> => {
    let next = 0;
    await Promise.all(Array.from({ length: 32 }, async () => { while (next < n) await one(next++); }));
  };
  const N = 1500;
  await round(N);
  await eventually(() => sessionsAre(s, 0), 20_000, 'every session given back');
  const first = privateDirtyMB(core);
  await round(N);
  await round(N);
  await eventually(() => sessionsAre(s, 0), 20_000, 'every session given back');
  const last = privateDirtyMB(core);
  t.diagnostic(`core private dirty after ${N} connections: ${first.toFixed(1)} MB; after ${3 * N}: ${last.toFixed(1)} MB`);
  assert.ok(last - first < 32, `the core grew by ${(last - first).toFixed(1)} MB over ${2 * N} more connections`);
  assert.equal((await s.status()).instance.core_pid, core, 'the same core');
  assert.equal((await request(s.port, '/pid')).status, 200);
});
