// A process that must leave: it takes nothing new from that moment, its
// requests in flight finish, its WebSockets are closed (or left to end, with
// abort_websockets_on_process_shutdown off), and the app's own shutdown runs
// (SIGTERM handlers, or the loader API's exit event) within shutdown_timeout.
// Also the stop of the whole server with long-lived requests open, and a
// watchdog killed with -9.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test, type TestContext } from 'node:test';
import WebSocket from 'ws';
import { BIN, ROOT, appCopy, assertLogged, eventually, isAlive, request, runCli, startServer, steadyLoad, tmpDir, type Server } from '../helpers';

/** The graceful fixture with `ws` beside it, and a directory any app user may write its markers in. */
function gracefulApp(t: TestContext, passengerfile?: Record<string, unknown>): { app: string; markers: string } {
  const app = appCopy(t, 'graceful');
  fs.cpSync(path.join(ROOT, 'node_modules', 'ws'), path.join(app, 'node_modules', 'ws'), { recursive: true });
  if (passengerfile) fs.writeFileSync(path.join(app, 'Passengerfile.json'), JSON.stringify(passengerfile));
  const markers = tmpDir(t, 'ptest-markers-');
  fs.chmodSync(markers, 0o777);
  return { app, markers };
}

function marker(markers: string, pid: number): string | null {
  try { return fs.readFileSync(path.join(markers, String(pid)), 'utf8'); } catch { return null; }
}

async function onePid(s: Server): Promise<number> {
  const [pid] = await eventually(async () => { const p = await s.appPids(); return p.length === 1 ? p : null; }, 30_000, 'one process');
  return pid;
}

/** A `ws` client, open; `closed` resolves with the close code (1006: the connection ended without a close frame). */
async function openWs(port: number, urlPath = '/'): Promise<{ ws: WebSocket; closed: Promise<number>; ask(msg: string): Promise<string> }> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}${urlPath}`);
  const closed = new Promise<number>((r) => ws.once('close', (code: number) => r(code)));
  ws.on('error', () => undefined);
  await new Promise<void>((resolve, reject) => { ws.once('open', () => resolve()); ws.once('error', reject); });
  const ask = (msg: string): Promise<string> => new Promise((resolve, reject) => {
    ws.once('message', (d: Buffer) => resolve(d.toString()));
    ws.once('close', () => reject(new Error('closed')));
    ws.send(msg);
  });
  return { ws, closed, ask };
}

test('max_requests 5: twelve sequential requests never put more than 5 on one process', async (t) => {
  const s = await startServer(t, appCopy(t, 'basic'), ['--min-instances', '1', '--max-requests', '5']);
  await onePid(s);
  const count = new Map<string, number>();
  for (let i = 0; i < 12; i++) {
    const r = await request(s.port, '/pid');
    assert.equal(r.status, 200);
    count.set(r.body, (count.get(r.body) ?? 0) + 1);
  }
  t.diagnostic(`requests per process: ${JSON.stringify([...count.values()])}`);
  assert.ok(count.size >= 3, `12 requests over ${count.size} processes`);
  for (const [pid, n] of count) assert.ok(n <= 5, `process ${pid} served ${n} requests`);
});

test('restart-app: the app\'s SIGTERM handler runs to its end; its request in flight finishes first', async (t) => {
  const { app, markers } = gracefulApp(t);
  const s = await startServer(t, app, ['--min-instances', '1', '--envvar', `MARKER_DIR=${markers}`]);
  const pid = await onePid(s);
  const slow = request(s.port, '/sleep?ms=1500');
  await eventually(async () => (await s.status()).groups[0].processes[0].sessions === 1, 10_000, 'the slow request to run');
  const r = await runCli(BIN.config, ['restart-app', s.appDir, '--instance-registry-dir', s.registry]);
  assert.equal(r.code, 0, r.stderr);
  const done = await slow;
  assert.equal(done.status, 200);
  assert.equal(done.body, `slept in ${pid}`);
  await eventually(() => marker(markers, pid), 20_000, 'the marker the SIGTERM handler writes');
  assert.equal(marker(markers, pid), 'sigterm');
  await eventually(() => !isAlive(pid), 20_000, 'the old process to exit');
  assert.doesNotMatch(s.output(), /SIGKILL/);
  assert.notEqual((await request(s.port, '/pid')).body, String(pid));
});

test('app_start_command under a shell that does not exec it: the app\'s SIGTERM handler still runs to its end, on restart and on stop', async (t) => {
  const { app, markers } = gracefulApp(t);
  const s = await startServer(t, app, ['--app-start-command', `${process.execPath} app.js; true`, '--min-instances', '1', '--envvar', `MARKER_DIR=${markers}`]);
  const first = Number((await request(s.port, '/pid')).body);
  const r = await runCli(BIN.config, ['restart-app', s.appDir, '--instance-registry-dir', s.registry]);
  assert.equal(r.code, 0, r.stderr);
  await eventually(() => marker(markers, first), 20_000, 'the marker the SIGTERM handler writes');
  assert.equal(marker(markers, first), 'sigterm');
  const second = Number((await request(s.port, '/pid')).body);
  assert.notEqual(second, first);
  assert.equal(await s.stop(), 0);
  assert.equal(marker(markers, second), 'sigterm');
  assert.ok(!isAlive(second));
});

test('idle shutdown runs the app\'s SIGTERM handler', async (t) => {
  const { app, markers } = gracefulApp(t);
  const s = await startServer(t, app, ['--min-instances', '0', '--pool-idle-time', '1', '--envvar', `MARKER_DIR=${markers}`]);
  const pid = Number((await request(s.port, '/pid')).body);
  await eventually(() => marker(markers, pid), 30_000, 'the marker after the idle shutdown');
  assert.equal(marker(markers, pid), 'sigterm');
  await eventually(async () => (await s.appPids()).length === 0, 20_000, 'no process left');
});

test('passenger stop runs the app\'s SIGTERM handler and exits by itself', async (t) => {
  const { app, markers } = gracefulApp(t);
  const s = await startServer(t, app, ['--min-instances', '1', '--envvar', `MARKER_DIR=${markers}`]);
  const pid = await onePid(s);
  assert.equal(await s.stop(), 0);
  assert.equal(marker(markers, pid), 'sigterm');
  assert.ok(!isAlive(pid));
});

test('a stop that comes as the core dies still runs the app\'s SIGTERM handler; a second signal stops at once', async (t) => {
  const { app, markers } = gracefulApp(t);
  const s = await startServer(t, app, ['--min-instances', '1', '--envvar', `MARKER_DIR=${markers}`]);
  const pid = await onePid(s);
  // The stop reaches the watchdog before or just after it sees the core die,
  // and before it starts the next core.
  process.kill((await s.status()).instance.core_pid, 'SIGKILL');
  assert.equal(await s.stop(), 0);
  assert.equal(marker(markers, pid), 'sigterm', s.output().slice(-2000));
  assert.ok(!isAlive(pid));

  // An app that ignores SIGTERM is killed at once on a second signal, not after shutdown_timeout.
  const stubborn = await startServer(t, appCopy(t, 'stubborn'), ['--startup-file', 'server.js', '--min-instances', '1', '--shutdown-timeout', '600']);
  const held = await onePid(stubborn);
  process.kill((await stubborn.status()).instance.core_pid, 'SIGKILL');
  stubborn.child.kill('SIGTERM');
  await assertLogged(() => stubborn.output(), /left 1 app process\(es\) running: sent them SIGTERM/);
  assert.ok(isAlive(held), 'it ignores SIGTERM');
  assert.equal(await stubborn.stop(), 0);
  assert.ok(!isAlive(held));
});

test('an app that registered the loader API\'s exit event is told through it instead of SIGTERM', async (t) => {
  const { app, markers } = gracefulApp(t);
  const s = await startServer(t, app, ['--min-instances', '1', '--envvar', `MARKER_DIR=${markers}`, '--envvar', 'USE_API=1']);
  const pid = await onePid(s);
  assert.equal((await runCli(BIN.config, ['detach-process', String(pid), '--instance-registry-dir', s.registry])).code, 0);
  await eventually(() => marker(markers, pid), 20_000, 'the marker the exit listener writes');
  assert.equal(marker(markers, pid), 'api');
});

test('abort_websockets_on_process_shutdown (default): a leaving process\'s WebSockets get a close frame at once; its request in flight finishes', async (t) => {
  const { app, markers } = gracefulApp(t);
  const s = await startServer(t, app, ['--min-instances', '1', '--envvar', `MARKER_DIR=${markers}`]);
  const pid = await onePid(s);
  const a = await openWs(s.port, '/a');
  assert.equal(await a.ask('pid'), String(pid));
  let slowDone = false;
  const slow = request(s.port, '/sleep?ms=6000').finally(() => { slowDone = true; });
  await eventually(async () => (await s.status()).groups[0].processes[0].sessions === 1, 10_000, 'the slow request to run');
  assert.equal((await runCli(BIN.config, ['detach-process', String(pid), '--instance-registry-dir', s.registry])).code, 0);
  assert.equal(await a.closed, 1001, 'closed by the agent with a close frame (going away)');
  if (!slowDone) assert.equal(marker(markers, pid), null, 'the app is told to leave only after its request');
  const done = await slow;
  assert.equal(done.body, `slept in ${pid}`);
  await eventually(() => marker(markers, pid), 20_000, 'the marker');
  // A new socket goes to the new process.
  const b = await openWs(s.port, '/b');
  assert.notEqual(await b.ask('pid'), String(pid));
  b.ws.close();
});

test('abort_websockets_on_process_shutdown off (Passengerfile.json): WebSockets live on until the app closes them itself', async (t) => {
  const { app, markers } = gracefulApp(t, { abort_websockets_on_process_shutdown: false, shutdown_timeout: 3 });
  const s = await startServer(t, app, ['--min-instances', '1', '--envvar', `MARKER_DIR=${markers}`]);
  const pid = await onePid(s);
  const a = await openWs(s.port, '/a');
  assert.equal(await a.ask('pid'), String(pid));
  assert.equal((await runCli(BIN.config, ['detach-process', String(pid), '--instance-registry-dir', s.registry])).code, 0);
  await eventually(async () => (await s.status()).groups[0].processes.some((p) => p.pid === pid && p.state === 'shutting_down'), 10_000, 'the process to be leaving');
  assert.equal(await a.ask('still here'), 'still here', 'the socket still carries messages');
  // After the drain (shutdown_timeout, 3 s) the app is told to leave and closes it itself.
  assert.equal(await a.closed, 4001, 'closed by the app');
  await eventually(() => marker(markers, pid), 20_000, 'the marker');
});

test('passenger stop with long polls open: answered by the app\'s shutdown or cut cleanly; the server exits by itself', async (t) => {
  const { app, markers } = gracefulApp(t);
  const s = await startServer(t, app, ['--min-instances', '1', '--envvar', `MARKER_DIR=${markers}`]);
  const pid = await onePid(s);
  const poll = request(s.port, '/poll', { timeoutMs: 60_000 });
  const b = await startServer(t, appCopy(t, 'basic'), ['--min-instances', '1', '--shutdown-timeout', '4']);
  await onePid(b);
  // An app with no shutdown handler of its own, and a poll that never ends:
  // its requests are let run until shutdown_timeout, then it is killed.
  const endless = request(b.port, '/sleep?ms=600000', { timeoutMs: 60_000 }).catch((e: Error) => ({ status: 0, body: e.message }));
  await eventually(async () => (await s.status()).groups[0].processes[0].sessions === 1, 10_000, 'the poll to be open');
  await eventually(async () => (await b.status()).groups[0].processes[0].sessions === 1, 10_000, 'the endless request to be open');
  const [cs, cb] = await Promise.all([s.stop(), b.stop()]);
  assert.equal(cs, 0);
  assert.equal(cb, 0);
  assert.equal((await poll).body, 'bye', 'the app\'s shutdown answered the poll');
  assert.equal(marker(markers, pid), 'sigterm');
  // Its app was killed under it: no process will serve it any more, and it is told so.
  const e = await endless;
  assert.equal(e.status, 503, e.body);
  assert.match(e.body, /shutting down/);
  for (const out of [s.output(), b.output()]) assert.doesNotMatch(out, /did not stop within|killing/);
  assert.doesNotMatch(s.output(), /SIGKILL/, 'the graceful app exited by itself');
});

test('a watchdog killed with -9 leaves neither the core nor the app processes running', async (t) => {
  const s = await startServer(t, appCopy(t, 'basic'), ['--min-instances', '2']);
  const pids = await eventually(async () => { const p = await s.appPids(); return p.length === 2 ? p : null; }, 30_000, 'two processes');
  const core = Number(fs.readFileSync(path.join(s.instanceDir(), 'core.pid'), 'utf8'));
  process.kill(s.child.pid as number, 'SIGKILL');
  await eventually(() => !isAlive(core), 30_000, 'the core to exit');
  await eventually(() => pids.every((p) => !isAlive(p)), 30_000, 'the app processes to exit');
});

test('rolling restart under WebSocket load: no request fails, every old socket gets a close frame, reconnects land on new processes', async (t) => {
  const { app } = gracefulApp(t);
  const s = await startServer(t, app, ['--min-instances', '2', '--max-pool-size', '4']);
  const old = await eventually(async () => { const p = await s.appPids(); return p.length === 2 ? p : null; }, 30_000, 'two processes');
  const sockets = [];
  for (let i = 0; i < 50; i++) sockets.push(await openWs(s.port, `/ws${i}`));
  const owners = await Promise.all(sockets.map((x) => x.ask('pid')));
  assert.deepEqual(new Set(owners), new Set(old.map(String)), 'the sockets spread over both processes');
  const load = steadyLoad(s.port, 4, '/pid');
  await eventually(() => load.count() > 20, 20_000, 'the load to run');
  const r = await runCli(BIN.config, ['restart-app', s.appDir, '--rolling', '--instance-registry-dir', s.registry], { timeoutMs: 120_000 });
  assert.equal(r.code, 0, r.stderr);
  const codes = await Promise.all(sockets.map((x) => x.closed));
  const result = await load.stop();
  assert.deepEqual(result.failures, [], `${result.failures.length} of ${result.count} requests failed`);
  t.diagnostic(`${result.count} requests during the restart; close codes ${JSON.stringify([...new Set(codes)])}`);
  for (const c of codes) assert.ok(c === 1001 || c === 4001, `a close frame, not a cut connection (code ${c})`);
  const now = await s.appPids();
  const again = await openWs(s.port, '/again');
  const pid = Number(await again.ask('pid'));
  assert.ok(now.includes(pid) && !old.includes(pid), `the reconnect went to a new process (${pid})`);
  again.ws.close();
});

test('after a core restart, an adopted process is told to leave the same way: its SIGTERM handler runs', async (t) => {
  const { app, markers } = gracefulApp(t);
  const s = await startServer(t, app, ['--min-instances', '1', '--envvar', `MARKER_DIR=${markers}`]);
  const pid = await onePid(s);
  const core = Number(fs.readFileSync(path.join(s.instanceDir(), 'core.pid'), 'utf8'));
  process.kill(core, 'SIGKILL');
  await eventually(() => s.output().includes('agent core restarted'), 30_000, 'a new core');
  await eventually(async () => (await s.appPids()).includes(pid), 30_000, 'the process to be adopted');
  assert.equal((await runCli(BIN.config, ['detach-process', String(pid), '--instance-registry-dir', s.registry])).code, 0);
  await eventually(() => marker(markers, pid), 20_000, 'the marker the SIGTERM handler writes');
  assert.equal(marker(markers, pid), 'sigterm');
});

test('direct mode: a leaving process finishes its request, then its SIGTERM handler runs', async (t) => {
  const { app, markers } = gracefulApp(t);
  const s = await startServer(t, app, ['--min-instances', '1', '--direct-mode', '--envvar', `MARKER_DIR=${markers}`]);
  const pid = await onePid(s);
  const slow = request(s.port, '/sleep?ms=1500');
  await eventually(async () => (await s.status()).groups[0].processes.some((p) => p.pid === pid && p.sessions === 1), 10_000, 'the slow request to be reported');
  assert.equal((await runCli(BIN.config, ['detach-process', String(pid), '--instance-registry-dir', s.registry])).code, 0);
  assert.equal((await slow).body, `slept in ${pid}`);
  await eventually(() => marker(markers, pid), 20_000, 'the marker the SIGTERM handler writes');
  assert.equal(marker(markers, pid), 'sigterm');
});
