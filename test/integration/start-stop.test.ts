// passenger start / stop / status, the instance directory, daemonize and the PID file.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
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
  assert.equal(fs.statSync(path.join(dir, 'admin.sock')).mode & 0o777, 0o600, 'admin socket is owner-only');
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
  const appPids = await first.appPids();
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
