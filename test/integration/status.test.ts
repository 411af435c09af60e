// passenger-status: Passenger's text layout, the JSON document, several instances.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as http from 'node:http';
import { test } from 'node:test';
import { BIN, appCopy, eventually, request, runCli, startServer, tmpDir } from '../helpers';

test('passenger-status shows the pool in Passenger\'s layout', async (t) => {
  const s = await startServer(t, appCopy(t, 'basic'), ['--min-instances', '2', '--max-pool-size', '3']);
  await eventually(async () => (await s.appPids()).length === 2, 20_000, 'two processes');
  for (let i = 0; i < 4; i++) await request(s.port, '/');
  const r = await runCli(BIN.status, ['--instance-registry-dir', s.registry]);
  assert.equal(r.code, 0, r.stderr);
  const out = r.stdout;
  for (const re of [/^Version : \d+\.\d+\.\d+$/m, /^Date    : \d{4}-\d\d-\d\d \d\d:\d\d:\d\d/m, /^Instance: \S+ \(http:\/\/127\.0\.0\.1:\d+\)$/m,
    /^Max pool size : 3$/m, /^App groups    : 1$/m, /^Processes     : 2$/m, /^Requests in top-level queue : 0$/m,
    new RegExp(`^  App root: ${s.appDir}$`, 'm'), /^  Requests in queue: 0$/m,
    /^  \* PID: \d+ +Sessions: 0 +Processed: \d+ +Uptime: \d+s$/m, /^    CPU: \d+% +Memory  : \d+M +Last used: \d+s ago$/m]) {
    assert.match(out, re);
  }
  const noHeader = await runCli(BIN.status, ['--no-header', '--instance-registry-dir', s.registry]);
  assert.doesNotMatch(noHeader.stdout, /^Version/m);
});

test('passenger-status shows a process being spawned and one shutting down, with why', async (t) => {
  const starting = await startServer(t, appCopy(t, 'never-listens'), ['--start-timeout', '120'], { waitFor: 'none' });
  await eventually(() => /never-listens \d+:/.test(starting.output()), 20_000, 'the app to boot');
  const a = await eventually(async () => { const r = await runCli(BIN.status, ['--instance-registry-dir', starting.registry]); return r.code === 0 ? r : null; }, 20_000, 'an answer');
  assert.match(a.stdout, /^  Spawning: 1 process\(es\)$/m);

  // A process that ignores TERM stays "shutting down" through the grace period (30 s).
  const s = await startServer(t, appCopy(t, 'stubborn'), ['--app-start-command', `exec ${process.execPath} server.js`, '--min-instances', '1']);
  const pid = Number((await request(s.port, '/')).body.split(' ')[0]);
  assert.equal((await runCli(BIN.config, ['detach-process', String(pid), '--instance-registry-dir', s.registry])).code, 0);
  const b = await runCli(BIN.status, ['--instance-registry-dir', s.registry]);
  assert.match(b.stdout, new RegExp(`^  \\* PID: ${pid} .*\\(shutting down: detached\\)$`, 'm'));
  const doc = await s.status();
  const leaving = doc.groups[0].processes.find((p) => p.pid === pid);
  assert.deepEqual([leaving?.state, leaving?.leave_reason], ['shutting_down', 'detached']);
});

test('passenger-status --show=json follows the documented schema', async (t) => {
  const s = await startServer(t, appCopy(t, 'basic'), ['--min-instances', '1']);
  await eventually(async () => (await s.appPids()).length === 1, 20_000, 'a process');
  await request(s.port, '/');
  const doc = await s.status();
  assert.equal(doc.schema, 1);
  assert.equal(doc.instance.watchdog_pid, s.child.pid);
  const g = doc.groups[0];
  assert.equal(g.app_root, s.appDir);
  assert.equal(g.queue, 0);
  const p = g.processes[0];
  for (const k of ['pid', 'state', 'sessions', 'processed', 'spawned_at', 'uptime_s', 'last_used', 'cpu_percent', 'private_dirty_kb', 'rss_kb']) assert.ok(k in p, `process field ${k}`);
  assert.equal(p.state, 'alive');
  assert.ok(p.processed >= 1);
  assert.ok((p.private_dirty_kb ?? 0) > 0);
});

test('with several servers, passenger-status lists them and asks for a name', async (t) => {
  const a = await startServer(t, appCopy(t, 'basic'));
  const reg = a.registry;
  const b = await startServer(t, appCopy(t, 'basic'), ['--instance-registry-dir', reg]);
  void b;
  const r = await runCli(BIN.status, ['--instance-registry-dir', reg]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /several servers are running; name one/);
  const names = [...r.stderr.matchAll(/^ {2}(\S+) {2}pid/gm)].map((m) => m[1]);
  assert.equal(names.length, 2);
  const named = await runCli(BIN.status, ['--instance-registry-dir', reg, names[0]]);
  assert.equal(named.code, 0, named.stderr);
  assert.match(named.stdout, new RegExp(`Instance: ${names[0]}`));
});

test('passenger-status with no server says where it looked', async (t) => {
  const reg = tmpDir(t, 'ptest-empty-');
  const r = await runCli(BIN.status, ['--instance-registry-dir', reg]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, new RegExp(`no running server found in ${reg}`));
});

test('the tools write all of their output into a pipe: a status bigger than 64 KiB arrives whole', async (t) => {
  // One process taking one request at a time: the rest wait in the agent's queue, listed by the tools.
  const s = await startServer(t, appCopy(t, 'basic'), ['--min-instances', '1', '--max-pool-size', '1',
    '--force-max-concurrent-requests-per-process', '1', '--max-request-queue-size', '0']);
  await eventually(async () => (await s.appPids()).length === 1, 20_000, 'a process');
  const n = 1000;
  const pending: http.ClientRequest[] = [];
  t.after(() => { for (const r of pending) r.destroy(); });
  for (let i = 0; i < n; i++) {
    const req = http.get({ host: '127.0.0.1', port: s.port, path: `/sleep?ms=600000&pad=${'x'.repeat(60)}&i=${i}`, agent: false });
    req.on('error', () => undefined);
    pending.push(req);
  }
  await eventually(async () => (await s.status()).groups[0].queue === n - 1, 60_000, 'the requests to queue');
  // `tool | cat`: a pipe(2), whose 64 KiB buffer the tools used to fill and then exit, dropping the rest.
  const piped = (bin: string, args: string[]): { code: number | null; stdout: string; stderr: string } => {
    const r = spawnSync('bash', ['-o', 'pipefail', '-c', '"$0" "$@" | cat', process.execPath, bin, ...args], { encoding: 'utf8', maxBuffer: 64 << 20, timeout: 60_000 });
    return { code: r.status, stdout: r.stdout, stderr: r.stderr };
  };
  const json = piped(BIN.config, ['api-call', 'GET', '/requests.json', '--instance-registry-dir', s.registry]);
  assert.equal(json.code, 0, json.stderr);
  assert.ok(json.stdout.length > 64 * 1024, `${json.stdout.length} bytes`);
  assert.equal((JSON.parse(json.stdout) as { requests: unknown[] }).requests.length, n);
  const text = piped(BIN.status, ['--show=requests', '--instance-registry-dir', s.registry]);
  assert.equal(text.code, 0, text.stderr);
  assert.ok(text.stdout.length > 64 * 1024, `${text.stdout.length} bytes`);
  assert.equal(text.stdout.trimEnd().split('\n').length, n + 1, 'a heading and one line per request');
});
