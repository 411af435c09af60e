// socket.io, as its users run it: a real socket.io server app and the real
// client, over WebSocket alone, over long-polling alone, and polling then
// upgrade, with two processes and sticky sessions (every polling request and
// the upgrade of one client must reach the same process).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { io, type Socket } from 'socket.io-client';
import { appCopy, copyModules, eventually, startServer, stopAfter } from '../helpers';

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
