// Direct mode: the app processes accept client connections themselves from
// the agent's listening socket; the agent still supervises and accounts.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { test } from 'node:test';
import { BIN, appCopy, assertLogged, eventually, isAlive, request, runCli, startServer, tmpDir, type Server, steadyLoad } from '../helpers';

async function twoProcesses(s: Server): Promise<number[]> {
  return eventually(async () => { const p = await s.appPids(); return p.length === 2 ? p : null; }, 20_000, 'two processes');
}

test('direct mode: the processes accept connections themselves and report their counters', async (t) => {
  const s = await startServer(t, appCopy(t, 'basic'), ['--direct-mode', '--min-instances', '2', '--max-pool-size', '2']);
  const pids = await twoProcesses(s);
  // Both processes take connections from the one listening socket.
  const seen = new Set<string>();
  await eventually(async () => {
    for (const r of await Promise.all(Array.from({ length: 20 }, () => request(s.port, '/pid')))) {
      assert.equal(r.status, 200);
      seen.add(r.body);
    }
    return seen.size === 2;
  }, 20_000, 'both processes to serve');
  assert.deepEqual([...seen].map(Number).sort((a, b) => a - b), pids);

  // Accounting: the same fields as in proxy mode, from the processes' batched reports.
  const before = (await s.status()).groups[0].processes.reduce((a, p) => a + p.processed, 0);
  for (let i = 0; i < 10; i++) await request(s.port, '/');
  await eventually(async () => (await s.status()).groups[0].processes.reduce((a, p) => a + p.processed, 0) >= before + 10, 10_000, 'processed to count the requests');
  const held = request(s.port, '/sleep?ms=6000');
  await eventually(async () => (await s.status()).groups[0].processes.some((p) => p.sessions === 1), 10_000, 'the held request as a session');
  const reqs = await runCli(BIN.status, ['--show=requests', '--instance-registry-dir', s.registry]);
  assert.match(reqs.stdout, /No requests in flight/, 'no request passes through the agent');
  assert.equal((await held).status, 200);
});

test('direct mode: a killed process is replaced; max_requests replaces a process', async (t) => {
  const s = await startServer(t, appCopy(t, 'basic'), ['--direct-mode', '--min-instances', '2', '--max-pool-size', '2', '--max-requests', '30']);
  const before = await twoProcesses(s);
  process.kill(before[0], 'SIGKILL');
  await eventually(async () => { const p = await s.appPids(); return p.length === 2 && !p.includes(before[0]); }, 20_000, 'a replacement');
  const now = await s.appPids();
  for (let i = 0; i < 80; i++) assert.equal((await request(s.port, '/')).status, 200);
  await eventually(async () => { const p = await s.appPids(); return p.length === 2 && p.some((x) => !now.includes(x)); }, 20_000, 'a process replaced after max_requests');
  await assertLogged(() => s.output(), /max_requests 30\): replacing it/);
});

async function aliveCount(s: Server): Promise<number> {
  return (await s.status()).groups[0]?.processes.filter((p) => p.state === 'alive').length ?? 0;
}

test('direct mode: the group scales on the load the processes report, and idle processes are shut down', async (t) => {
  const s = await startServer(t, appCopy(t, 'basic'), ['--direct-mode', '--min-instances', '1', '--max-pool-size', '3', '--scale-at-sessions', '2', '--pool-idle-time', '2']);
  await eventually(async () => (await aliveCount(s)) === 1, 20_000, 'one process');
  // Requests held on the one process: only its own report tells the agent how busy it is.
  const held = Promise.all(Array.from({ length: 3 }, () => request(s.port, '/sleep?ms=4000')));
  await eventually(async () => (await aliveCount(s)) >= 2, 15_000, 'a second process under reported load');
  for (const r of await held) assert.equal(r.status, 200);
  await eventually(async () => (await aliveCount(s)) === 1, 20_000, 'the idle process to be shut down, down to min_instances');
  await assertLogged(() => s.output(), /was idle for \d+ s: shutting it down/);
});

test('direct mode: memory_limit and tmp/restart.txt replace processes', async (t) => {
  const dir = appCopy(t, 'basic');
  fs.mkdirSync(path.join(dir, 'tmp'));
  const s = await startServer(t, dir, ['--direct-mode', '--min-instances', '1', '--max-pool-size', '2', '--memory-limit', '80', '--stat-throttle-rate', '1']);
  const first = await eventually(async () => { const p = await s.appPids(); return p.length === 1 ? p[0] : null; }, 20_000, 'a process');
  assert.match((await request(s.port, '/grow?mb=120')).body, new RegExp(`holding 120 MB in ${first}`));
  const second = await eventually(async () => { const p = await s.appPids(); return p.length === 1 && p[0] !== first ? p[0] : null; }, 30_000, 'the replacement');
  await assertLogged(() => s.output(), new RegExp(`process ${first} .*\\(memory_limit 80 MB\\): replacing it`));
  await eventually(() => !isAlive(first), 20_000, 'the old process to leave');

  fs.writeFileSync(path.join(dir, 'tmp', 'restart.txt'), '');
  await eventually(async () => { const p = await s.appPids(); return p.length === 1 && p[0] !== second; }, 20_000, 'a restart');
  await assertLogged(() => s.output(), /restart\.txt was touched: restarting/);
  assert.equal((await request(s.port, '/')).status, 200);
});

test('direct mode: a leaving process finishes its requests in flight', async (t) => {
  const s = await startServer(t, appCopy(t, 'basic'), ['--direct-mode', '--min-instances', '2', '--max-pool-size', '2']);
  await twoProcesses(s);
  const held = request(s.port, '/sleep?ms=6000');
  const busy = await eventually(async () => (await s.status()).groups[0].processes.find((p) => p.sessions === 1)?.pid, 10_000, 'a busy process');
  assert.equal((await runCli(BIN.config, ['detach-process', String(busy), '--instance-registry-dir', s.registry])).code, 0);
  const r = await held;
  assert.equal(r.status, 200, 'the request in flight finished');
  await eventually(() => !isAlive(busy), 10_000, 'the process to leave');
});

test('direct mode from Passengerfile.json: restart-app closes the idle keep-alive connections of the leaving process', async (t) => {
  const dir = appCopy(t, 'basic');
  fs.writeFileSync(path.join(dir, 'Passengerfile.json'), JSON.stringify({ direct_mode: true, min_instances: 1, max_pool_size: 1, envvars: { KEEP_ALIVE_MS: '120000' } }));
  const s = await startServer(t, dir);
  const first = await eventually(async () => { const p = await s.appPids(); return p.length === 1 ? p[0] : null; }, 20_000, 'a process');
  // A kept-alive client connection, idle after its first response (the app
  // keeps idle connections 120 s). Through the agent it would stay open; in
  // direct mode it belongs to the app process, which closes it as it leaves.
  const conn = net.connect(s.port, '127.0.0.1');
  t.after(() => conn.destroy());
  let reply = '';
  let closed = false;
  conn.on('data', (d) => { reply += d; });
  conn.on('close', () => { closed = true; });
  conn.on('error', () => undefined);
  conn.write('GET /pid HTTP/1.1\r\nHost: x\r\n\r\n');
  await eventually(() => reply.endsWith('\r\n0\r\n\r\n'), 10_000, 'the first response (chunked)');
  assert.ok(reply.includes(`\r\n${first}\r\n`), reply);
  assert.match(reply, /connection: keep-alive/i);
  const r = await runCli(BIN.config, ['restart-app', dir, '--instance-registry-dir', s.registry]);
  assert.equal(r.code, 0, r.stderr);
  await eventually(() => closed, 10_000, 'the idle connection to be closed by the leaving process');
  await eventually(() => !isAlive(first), 10_000, 'the old process to leave');
  const after = await request(s.port, '/pid');
  assert.equal(after.status, 200);
  assert.notEqual(Number(after.body), first);
});

test('direct mode: a rolling restart under load fails no request', async (t) => {
  const s = await startServer(t, appCopy(t, 'basic'), ['--direct-mode', '--min-instances', '2', '--max-pool-size', '2']);
  await twoProcesses(s);
  const load = steadyLoad(s.port);
  const rolling = await runCli(BIN.config, ['restart-app', s.appDir, '--rolling', '--instance-registry-dir', s.registry]);
  const { count, failures } = await load.stop();
  assert.equal(rolling.code, 0, rolling.stderr);
  assert.deepEqual(failures, [], `${failures.length} of ${count} failed`);
  assert.doesNotMatch(s.output(), /stderr: .*Error/, 'no process crashed while leaving');
});

test('direct mode refuses, by name, the options that need the agent in the request path', async (t) => {
  const reg = tmpDir(t, 'ptest-reg-');
  const app = appCopy(t, 'basic');
  for (const [flags, name] of [
    [['--sticky-sessions'], 'sticky_sessions'],
    [['--force-max-concurrent-requests-per-process', '1'], 'force_max_concurrent_requests_per_process'],
    [['--max-request-queue-size', '10'], 'max_request_queue_size'],
    [['--max-request-queue-time', '5'], 'max_request_queue_time'],
    [['--max-request-time', '5'], 'max_request_time'],
    [['--app-start-command', 'true'], 'app_start_command'],
  ] as const) {
    const r = await runCli(BIN.passenger, ['start', app, '--direct-mode', ...flags, '--instance-registry-dir', reg]);
    assert.equal(r.code, 2, name);
    assert.match(r.stderr, new RegExp(`^passenger: ${name} cannot be used with direct_mode`), name);
  }
});
