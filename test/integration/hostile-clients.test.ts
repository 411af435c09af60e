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
