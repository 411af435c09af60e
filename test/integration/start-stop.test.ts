// passenger start / stop / status, the instance directory, daemonize and the PID file.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as path from 'node:path';
import { test } from 'node:test';
import { BIN, appCopy, eventually, freePort, isAlive, killEverything, request, runCli, startServer, stopAfter, tmpDir } from '../helpers';

test('start serves the app, writes the instance dir, and stop removes it with the apps', async (t) => {
  const app = appCopy(t, 'basic');
  const s = await startServer(t, app, ['--min-instances', '2']);
  const r = await request(s.port, '/');
  assert.equal(r.status, 200);
  assert.match(r.body, /^hello from \d+/);

  const dir = s.instanceDir();
  for (const f of ['properties.json', 'watchdog.pid', 'core.pid', 'admin.sock']) assert.ok(fs.existsSync(path.join(dir, f)), `${f} in the instance dir`);
  assert.equal(fs.statSync(path.join(dir, 'admin.sock')).mode & 0o777, 0o666, 'any local user may ask the admin API (it answers each by its peer credentials)');
  const props = JSON.parse(fs.readFileSync(path.join(dir, 'properties.json'), 'utf8'));
  assert.equal(props.watchdog_pid, s.child.pid);
  assert.equal(fs.readFileSync(path.join(s.registry, 'server.pid'), 'utf8').trim(), String(s.child.pid));

  const pids = await eventually(async () => { const p = await s.appPids(); return p.length === 2 ? p : null; }, 20_000, 'two app processes');
  const corePid = Number(fs.readFileSync(path.join(dir, 'core.pid'), 'utf8'));
  assert.equal(await s.stop(), 0);
  assert.ok(!fs.existsSync(dir), 'instance dir removed');
  assert.ok(!fs.existsSync(path.join(s.registry, 'server.pid')), 'pid file removed');
  for (const pid of [...pids, corePid]) assert.ok(!isAlive(pid), `process ${pid} stopped`);
});

test('--daemonize returns once serving; status and stop find it through the PID file', async (t) => {
  const app = appCopy(t, 'basic');
  const reg = tmpDir(t, 'ptest-reg-');
  const port = await freePort();
  const pidFile = path.join(reg, 'daemon.pid');
  const logFile = path.join(reg, 'daemon.log');
  stopAfter(t, () => {
    let pid: number | undefined;
    try { pid = Number(fs.readFileSync(pidFile, 'utf8')); } catch { /* stopped */ }
    killEverything(reg, pid);
  });
  const started = await runCli(BIN.passenger, ['start', app, '--daemonize', '--port', String(port), '--address', '127.0.0.1',
    '--instance-registry-dir', reg, '--pid-file', pidFile, '--log-file', logFile]);
  assert.equal(started.code, 0, started.stderr);
  assert.match(started.stdout, /Accessible via: +http:\/\/127\.0\.0\.1:\d+/);
  const pid = Number(fs.readFileSync(pidFile, 'utf8'));
  assert.ok(isAlive(pid));
  assert.equal((await request(port, '/')).status, 200);

  const st = await runCli(BIN.passenger, ['status', '--pid-file', pidFile]);
  assert.equal(st.code, 0);
  assert.match(st.stdout, new RegExp(`running with PID ${pid}`));
  const ps = await runCli(BIN.status, ['--instance-registry-dir', reg]);
  assert.equal(ps.code, 0, ps.stderr);

  const stopped = await runCli(BIN.passenger, ['stop', '--pid-file', pidFile]);
  assert.equal(stopped.code, 0, stopped.stderr);
  assert.ok(!isAlive(pid));
  const after = await runCli(BIN.passenger, ['status', '--pid-file', pidFile]);
  assert.equal(after.code, 1);
  assert.match(fs.readFileSync(logFile, 'utf8'), /shutting down/);
  const again = await runCli(BIN.passenger, ['stop', '--pid-file', pidFile]);
  assert.equal(again.code, 1);
  assert.match(again.stderr, /no server is running/);
});

test('stop and status run from another directory find the server on that port in the registry', async (t) => {
  const s = await startServer(t, appCopy(t, 'basic'));
  const elsewhere = tmpDir(t, 'ptest-cwd-');
  const port = ['--port', String(s.port), '--instance-registry-dir', s.registry];
  const st = await runCli(BIN.passenger, ['status', ...port], { cwd: elsewhere });
  assert.equal(st.code, 0, st.stdout);
  assert.match(st.stdout, new RegExp(`running with PID ${s.child.pid} \\(instance \\w+, serving ${s.appDir} on http://127\\.0\\.0\\.1:${s.port}\\)`));
  // An APP_DIR that is not the one served: nothing found.
  const wrong = await runCli(BIN.passenger, ['stop', elsewhere, ...port], { cwd: elsewhere });
  assert.equal(wrong.code, 1);
  assert.match(wrong.stderr, /no server is running according to .*passenger\.\d+\.pid/);
  const stopped = await runCli(BIN.passenger, ['stop', ...port], { cwd: elsewhere });
  assert.equal(stopped.code, 0, stopped.stderr);
  assert.match(stopped.stdout, new RegExp(`Stopped the server with PID ${s.child.pid}`));
  await eventually(() => !isAlive(s.child.pid as number), 10_000, 'the server to stop');
});

test('a stale instance dir from a killed server is cleaned at the next start', async (t) => {
  const app = appCopy(t, 'basic');
  const first = await startServer(t, app);
  const staleDir = first.instanceDir();
  const appPids = await eventually(async () => { const p = await first.appPids(); return p.length > 0 ? p : null; }, 20_000, 'an app process');
  // Kill everything hard, as a crash would: watchdog, core, apps.
  const corePid = Number(fs.readFileSync(path.join(staleDir, 'core.pid'), 'utf8'));
  process.kill(first.child.pid as number, 'SIGKILL');
  process.kill(corePid, 'SIGKILL');
  await eventually(() => !isAlive(corePid) && !isAlive(first.child.pid as number), 10_000, 'the killed server to die');
  assert.ok(fs.existsSync(staleDir));
  // The next server in the same registry removes it (and its orphaned apps).
  const args = ['--instance-registry-dir', first.registry];
  const second = await startServer(t, appCopy(t, 'basic'), args);
  assert.equal((await request(second.port, '/')).status, 200);
  assert.ok(!fs.existsSync(staleDir), 'stale instance dir removed');
  await eventually(() => appPids.every((p) => !isAlive(p)), 10_000, 'orphaned apps to be gone');
});

/** Opens a connection and closes it: 'refused' if nothing listens, 'accepted' if something (or a backlog) took it. */
function probe(where: { port: number } | { path: string }): Promise<'refused' | 'accepted' | string> {
  return new Promise((resolve) => {
    const sock = 'path' in where ? net.connect(where.path) : net.connect(where.port, '127.0.0.1');
    sock.once('connect', () => { sock.destroy(); resolve('accepted'); });
    sock.once('error', (e: NodeJS.ErrnoException) => resolve(e.code === 'ECONNREFUSED' ? 'refused' : String(e.code)));
  });
}

for (const forwarder of ['builtin', 'node-http'] as const) {
  test(`${forwarder}: a request whose head was half in when the stop began is answered, with Connection: close`, async (t) => {
    const s = await startServer(t, appCopy(t, 'basic'), ['--min-instances', '1', '--forwarder', forwarder]);
    await eventually(async () => (await s.appPids()).length === 1, 20_000, 'a process');
    // A request in flight keeps the stop draining meanwhile.
    const slow = request(s.port, '/sleep?ms=6000', { timeoutMs: 30_000 });
    let got = '';
    const half = net.connect(s.port, '127.0.0.1');
    half.setEncoding('latin1');
    half.on('data', (d: string) => { got += d; });
    half.on('error', () => undefined);
    stopAfter(t, () => half.destroy());
    const closed = new Promise<void>((resolve) => half.on('close', () => resolve()));
    await new Promise<void>((resolve) => half.once('connect', () => resolve()));
    half.write('GET /pid HTTP/1.1\r\nHo');
    await eventually(async () => (await s.status()).groups[0].processes.some((p) => p.sessions === 1), 20_000, 'the slow request to reach the app');
    s.child.kill('SIGTERM');
    await eventually(async () => (await probe({ port: s.port })) === 'refused', 20_000, 'the stop to begin (new connections refused)');
    half.write('st: x\r\n\r\n');
    await closed;
    assert.match(got, /^HTTP\/1\.1 (200|503) /, got);
    assert.match(got, /\r\nconnection: close\r\n/i, got);
    assert.equal((await slow).status, 200);
  });
}

for (const [name, args] of [
  ['proxy mode', []],
  ['the reply-from forwarder', ['--forwarder', 'reply-from']],
  ['direct mode', ['--direct-mode']],
  ['a Unix socket', ['--socket', 'SOCKET']],
] as const) {
  test(`stop with ${name}: new connections are refused at once while a request in flight finishes`, async (t) => {
    const sockPath = path.join(tmpDir(t, 'ptest-sock-'), 'server.sock');
    const s = await startServer(t, appCopy(t, 'basic'), ['--min-instances', '1', ...args.map((a) => (a === 'SOCKET' ? sockPath : a))]);
    const where = (args as readonly string[]).includes('--socket') ? { path: sockPath } : { port: s.port };
    const get = (p: string): Promise<{ status: number; body: string }> => new Promise((resolve, reject) => {
      const req = http.get({ ...('path' in where ? { socketPath: where.path } : { host: '127.0.0.1', port: where.port }), path: p, agent: false }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => { body += d; });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.on('error', reject);
    });
    assert.equal((await get('/')).status, 200);
    let slowDone = false;
    const slow = get('/sleep?ms=8000').finally(() => { slowDone = true; });
    await eventually(async () => (await s.status()).groups[0].processes.some((p) => p.sessions === 1), 20_000, 'the slow request to reach the app');
    s.child.kill('SIGTERM');
    // Before the stop, the backlog took every connection (and the core
    // accepted it); now none is taken, while the slow request still runs.
    await eventually(async () => (await probe(where)) === 'refused', 20_000, 'a new connection to be refused');
    assert.equal(slowDone, false, 'refused while the request in flight still ran');
    const r = await slow;
    assert.equal(r.status, 200);
    assert.match(r.body, /^slept 8000/);
    await eventually(() => s.child.exitCode !== null, 30_000, 'the server to exit');
    assert.equal(s.child.exitCode, 0);
  });
}
