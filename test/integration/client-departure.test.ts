// A client that leaves gives back everything its requests held, whatever they
// were doing: waiting in the queue, with the app, streaming, or pipelined
// behind another response. Raw sockets, so requests can be pipelined and the
// responses left unread.
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { test } from 'node:test';
import { appCopy, eventually, request, startServer, stopAfter, type Server } from '../helpers';

/** Opens a connection, pipelines GET `paths` in one write, and never reads the answers. */
function pipelining(t: import('node:test').TestContext, port: number, paths: string[]): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1', () => {
      sock.pause();
      sock.write(paths.map((p) => `GET ${p} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`).join(''));
      resolve(sock);
    });
    sock.on('error', () => undefined);
    sock.once('error', reject);
    stopAfter(t, () => sock.destroy());
  });
}

async function sessions(s: Server): Promise<number> {
  const doc = await s.status();
  return doc.groups.reduce((n, g) => n + g.processes.reduce((m, p) => m + p.sessions, 0), 0);
}

async function queued(s: Server): Promise<number> {
  return (await s.status()).groups.reduce((n, g) => n + g.queue, 0);
}

const cutShort = (s: Server): number => (s.output().match(/download cut short in \d+/g) ?? []).length;

for (const forwarder of ['builtin', 'node-http', 'reply-from'] as const) {
  test(`${forwarder}: clients that pipeline downloads, read none and leave give back every session and app connection`, async (t) => {
    const s = await startServer(t, appCopy(t, 'basic'), ['--min-instances', '1', '--forwarder', forwarder]);
    await eventually(async () => (await s.appPids()).length >= 1, 20_000, 'a process');
    const CLIENTS = 10;
    const DEPTH = 3;
    const socks = await Promise.all(Array.from({ length: CLIENTS }, () => pipelining(t, s.port, Array.from({ length: DEPTH }, () => '/download?mb=64'))));
    // Every request is with the app (the first streaming, the others behind it).
    await eventually(async () => (await sessions(s)) === CLIENTS * DEPTH, 20_000, `${CLIENTS * DEPTH} sessions`);
    for (const sock of socks) sock.destroy();
    await eventually(async () => (await sessions(s)) === 0, 20_000, 'every session to be released');
    // The app saw every one of its responses cut off: no connection to it is left paused.
    await eventually(() => cutShort(s) === CLIENTS * DEPTH, 20_000, `${CLIENTS * DEPTH} downloads cut short in the app (saw ${cutShort(s)})`);
    assert.equal((await request(s.port, '/pid')).status, 200);
  });

  test(`${forwarder}: two pipelining clients that leave do not wedge two processes of concurrency 1`, async (t) => {
    const s = await startServer(t, appCopy(t, 'basic'), ['--min-instances', '2', '--max-pool-size', '2',
      '--force-max-concurrent-requests-per-process', '1', '--forwarder', forwarder]);
    await eventually(async () => (await s.appPids()).length === 2, 20_000, 'two processes');
    const a = await pipelining(t, s.port, ['/download?mb=64', '/download?mb=64', '/download?mb=64']);
    const b = await pipelining(t, s.port, ['/download?mb=64', '/download?mb=64', '/download?mb=64']);
    await eventually(async () => (await sessions(s)) === 2 && (await queued(s)) >= 1, 20_000, 'both processes busy and requests queued');
    a.destroy();
    b.destroy();
    // Later requests are served.
    for (let i = 0; i < 4; i++) assert.equal((await request(s.port, '/pid', { timeoutMs: 20_000 })).status, 200);
    await eventually(async () => (await sessions(s)) === 0 && (await queued(s)) === 0, 20_000, 'no session and no queued request left');
  });

  test(`${forwarder}: a queued request whose client left gives its place in the queue back`, async (t) => {
    const s = await startServer(t, appCopy(t, 'basic'), ['--min-instances', '1', '--max-pool-size', '1',
      '--force-max-concurrent-requests-per-process', '1', '--max-request-queue-size', '2', '--forwarder', forwarder]);
    await eventually(async () => (await s.appPids()).length === 1, 20_000, 'a process');
    const holder = await pipelining(t, s.port, ['/sleep?ms=60000']);
    await eventually(async () => (await sessions(s)) === 1, 20_000, 'the process busy');
    const waiting = await Promise.all([pipelining(t, s.port, ['/pid']), pipelining(t, s.port, ['/pid'])]);
    await eventually(async () => (await queued(s)) === 2, 20_000, 'two requests queued');
    for (const w of waiting) w.destroy();
    await eventually(async () => (await queued(s)) === 0, 20_000, 'the queue to be empty again');
    // The queue has room: a new request waits (no 503) and is served once the process frees up.
    const next = request(s.port, '/pid', { timeoutMs: 30_000 });
    await eventually(async () => (await queued(s)) === 1, 20_000, 'the new request queued');
    holder.destroy();
    assert.equal((await next).status, 200);
  });

  test(`${forwarder}: pipelining depth is capped: a client that pipelines 8 requests holds at most 4 sessions and gets all 8 answers in order`, async (t) => {
    const s = await startServer(t, appCopy(t, 'basic'), ['--min-instances', '1', '--forwarder', forwarder]);
    await eventually(async () => (await s.appPids()).length >= 1, 20_000, 'a process');
    const paths = Array.from({ length: 8 }, (_, i) => `/sleep?ms=${1500 + i}`);
    let got = '';
    const done = new Promise<void>((resolve, reject) => {
      const sock = net.connect(s.port, '127.0.0.1', () => {
        sock.write(paths.map((p) => `GET ${p} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`).join(''));
      });
      sock.setEncoding('latin1');
      sock.on('data', (d: string) => {
        got += d;
        if ((got.match(/slept \d+ in \d+/g) ?? []).length === paths.length) { sock.destroy(); resolve(); }
      });
      sock.on('error', reject);
      stopAfter(t, () => sock.destroy());
    });
    let most = 0;
    let finished = false;
    done.then(() => { finished = true; }, () => { finished = true; });
    while (!finished) most = Math.max(most, await sessions(s));
    await done;
    assert.ok(most <= 4, `${most} sessions for one connection`);
    assert.deepEqual((got.match(/slept (\d+)/g) ?? []), paths.map((_, i) => `slept ${1500 + i}`));
  });
}
