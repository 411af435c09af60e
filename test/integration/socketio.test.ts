// socket.io, as its users run it: a real socket.io server app and the real
// client, over WebSocket alone, over long-polling alone, and polling then
// upgrade, with two processes and sticky sessions (every polling request and
// the upgrade of one client must reach the same process). Also the stop of a
// server with long polls open.
import assert from 'node:assert/strict';
import * as http from 'node:http';
import { test } from 'node:test';
import { io, type Socket } from 'socket.io-client';
import { appCopy, copyModules, eventually, request, startServer, stopAfter, type HttpResult } from '../helpers';

interface Echo { msg: string; pid: number; transport: string }

function connect(t: Parameters<typeof stopAfter>[0], url: string, transports: ('polling' | 'websocket')[]): Promise<Socket> {
  const socket = io(url, { transports, reconnection: false, withCredentials: true, timeout: 20_000 });
  stopAfter(t, () => socket.disconnect());
  return new Promise((resolve, reject) => {
    socket.once('connect', () => resolve(socket));
    socket.once('connect_error', reject);
  });
}

test('socket.io over WebSocket, over long-polling and polling then upgrade, with two processes and sticky sessions', async (t) => {
  const app = appCopy(t, 'socketio');
  copyModules(app, ['socket.io']);
  const s = await startServer(t, app, ['--min-instances', '2', '--max-pool-size', '2', '--sticky-sessions']);
  await eventually(async () => (await s.appPids()).length === 2, 30_000, 'two processes');
  const url = `http://127.0.0.1:${s.port}`;

  const ws = await connect(t, url, ['websocket']);
  const viaWs = await ws.timeout(20_000).emitWithAck('echo', 'over websocket') as Echo;
  assert.deepEqual([viaWs.msg, viaWs.transport], ['over websocket', 'websocket']);

  // Long-polling only: each poll is a request of its own; the cookie keeps them on one process.
  const polling = await connect(t, url, ['polling']);
  const answers: Echo[] = [];
  for (let i = 0; i < 5; i++) answers.push(await polling.timeout(20_000).emitWithAck('echo', `poll ${i}`) as Echo);
  assert.ok(answers.every((a) => a.transport === 'polling' && a.pid === answers[0].pid), JSON.stringify(answers));

  // The default: polling first, then the upgrade to WebSocket, for several clients at once.
  const clients = await Promise.all(Array.from({ length: 6 }, () => connect(t, url, ['polling', 'websocket'])));
  const upgraded = await Promise.all(clients.map(async (c) => {
    const first = await c.timeout(20_000).emitWithAck('echo', 'before') as Echo;
    await eventually(() => c.io.engine.transport.name === 'websocket', 20_000, 'the upgrade');
    const after = await c.timeout(20_000).emitWithAck('echo', 'after') as Echo;
    return { first, after };
  }));
  for (const u of upgraded) {
    assert.equal(u.after.transport, 'websocket');
    assert.equal(u.after.pid, u.first.pid, 'the upgrade reached the process that holds the polling session');
  }
  assert.ok(new Set(upgraded.map((u) => u.first.pid)).size >= 1);

  // A stop with a long poll open ends by itself, never by the watchdog's kill.
  assert.equal(await s.stop(), 0);
  assert.doesNotMatch(s.output(), /did not stop within/);
});

/** A GET on a keep-alive connection, as a browser's poll is (the server, not the client, decides whether it closes). */
function keptAliveGet(t: Parameters<typeof stopAfter>[0], port: number, urlPath: string): Promise<HttpResult> {
  const agent = new http.Agent({ keepAlive: true });
  stopAfter(t, () => agent.destroy());
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: urlPath, agent }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
      res.on('error', reject);
    });
    req.setTimeout(120_000, () => req.destroy(new Error('no answer')));
    req.on('error', reject);
  });
}

test('passenger stop with socket.io long polls open (an app with no shutdown handler): every poll is answered, not reset, and the server exits by itself', async (t) => {
  const app = appCopy(t, 'socketio');
  copyModules(app, ['socket.io']);
  const s = await startServer(t, app, ['--min-instances', '1']);
  await eventually(async () => (await s.appPids()).length === 1, 30_000, 'the process');
  const url = `http://127.0.0.1:${s.port}`;

  // The real client over long-polling: between messages it always has a poll open.
  const client = await connect(t, url, ['polling']);
  const reply = await client.timeout(20_000).emitWithAck('echo', 'before the stop') as Echo;
  assert.equal(reply.transport, 'polling');
  const disconnected = new Promise<string>((resolve) => client.once('disconnect', (reason) => resolve(reason)));
  // The same by hand, to see the answer itself: an engine.io handshake, then a poll that waits for news.
  const open = await request(s.port, '/socket.io/?EIO=4&transport=polling');
  assert.equal(open.status, 200, open.body);
  const sid = (JSON.parse(open.body.slice(1)) as { sid: string }).sid;
  const poll = keptAliveGet(t, s.port, `/socket.io/?EIO=4&transport=polling&sid=${encodeURIComponent(sid)}`);
  await eventually(async () => (await s.status()).groups[0].processes[0].sessions >= 2, 20_000, 'both polls to be open at the app');

  const stopped = s.stop();
  // The poll is answered: by the app (an engine.io packet) or, once its process
  // has left, by the server (503, and the connection closed with it), never cut off.
  const answer = await poll;
  assert.ok(answer.status === 200 || (answer.status === 503 && answer.headers.connection === 'close'), `${answer.status} ${JSON.stringify(answer.headers)} ${answer.body}`);
  assert.equal(await stopped, 0, 'the server exited by itself, within the test\'s deadline');
  assert.match(await disconnected, /transport (error|close)/, 'the client saw its connection end');
  assert.doesNotMatch(s.output(), /did not stop within|killing what is left/, 'neither the watchdog nor the core\'s last resort had to kill');
});
