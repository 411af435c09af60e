// Pool dynamics with real processes: global queue, scaling, overflow, idle
// shutdown, sticky sessions, limits, restarts, spawn failures, shutdown, logs.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { BIN, appCopy, assertLogged, eventually, isAlive, request, runCli, sleep, startServer, type Server, steadyLoad } from '../helpers';

async function processCount(s: Server): Promise<number> {
  const doc = await s.status();
  return doc.groups[0]?.processes.filter((p) => p.state === 'alive').length ?? 0;
}

async function pidsOf(s: Server, n: number): Promise<number[]> {
  return eventually(async () => { const p = await s.appPids(); return p.length === n ? p : null; }, 20_000, `${n} processes`);
}

test('global queue: with one long request holding a process, short requests never wait behind it', async (t) => {
  const s = await startServer(t, appCopy(t, 'basic'), ['--min-instances', '2', '--max-pool-size', '2', '--force-max-concurrent-requests-per-process', '1']);
  await pidsOf(s, 2);
  let heldDone = false;
  const held = request(s.port, '/sleep?ms=10000').then((r) => { heldDone = true; return r; });
  const busy = await eventually(async () => (await s.status()).groups[0].processes.find((p) => p.sessions === 1)?.pid, 10_000, 'the long request to start');
  // Four clients at once, more than the free process takes at a time: they queue, never behind the long one.
  const served: string[] = [];
  await Promise.all(Array.from({ length: 4 }, async () => {
    for (let i = 0; i < 8; i++) {
      const r = await request(s.port, '/pid');
      assert.equal(r.status, 200);
      served.push(r.body);
    }
  }));
  assert.equal(heldDone, false, 'all short requests were served while the long one still ran');
  assert.ok(!served.includes(String(busy)), 'no short request went to the busy process');
  assert.equal((await held).status, 200);
});

test('waiting requests spawn more processes, several at once, never beyond max_pool_size', async (t) => {
  const s = await startServer(t, appCopy(t, 'basic'), ['--min-instances', '1', '--max-pool-size', '3', '--force-max-concurrent-requests-per-process', '1']);
  await pidsOf(s, 1);
  let done = false;
  const reqs = Promise.all(Array.from({ length: 6 }, () => request(s.port, '/sleep?ms=4000'))).finally(() => { done = true; });
  let max = 0;
  while (!done) {
    const doc = await s.status();
    max = Math.max(max, doc.groups[0].processes.length + doc.groups[0].spawning);
    assert.ok(doc.groups[0].processes.length + doc.groups[0].spawning <= 3, 'over max_pool_size');
  }
  for (const r of await reqs) assert.equal(r.status, 200);
  assert.equal(max, 3);
});

test('a Node group scales with load without a forced concurrency (--scale-at-sessions)', async (t) => {
  const s = await startServer(t, appCopy(t, 'basic'), ['--min-instances', '1', '--max-pool-size', '3', '--scale-at-sessions', '2']);
  await pidsOf(s, 1);
  const reqs = Promise.all(Array.from({ length: 4 }, () => request(s.port, '/sleep?ms=3000')));
  await eventually(async () => (await processCount(s)) >= 2, 15_000, 'a second process under load');
  for (const r of await reqs) assert.equal(r.status, 200);
});

test('a full queue answers 503 "queue full" at once (status configurable); a request waiting too long gets 504', async (t) => {
  // One process taking one request at a time, held by a long one: everything else waits.
  const s = await startServer(t, appCopy(t, 'basic'), ['--min-instances', '1', '--max-pool-size', '1', '--force-max-concurrent-requests-per-process', '1',
    '--max-request-queue-size', '2']);
  await pidsOf(s, 1);
  const held = request(s.port, '/sleep?ms=8000');
  await eventually(async () => (await s.status()).groups[0].processes[0].sessions === 1, 10_000, 'the long request');
  const queued = [request(s.port, '/pid'), request(s.port, '/pid')];
  await eventually(async () => (await s.status()).groups[0].queue === 2, 10_000, 'two waiting');
  const over = await request(s.port, '/pid');
  assert.equal(over.status, 503);
  assert.match(over.body, /under heavy load \(queue full\)/);
  // The waiting ones are served once the long request ends.
  for (const r of await Promise.all(queued)) assert.equal(r.status, 200);
  assert.equal((await held).status, 200);

  const s2 = await startServer(t, appCopy(t, 'basic'), ['--min-instances', '1', '--max-pool-size', '1', '--force-max-concurrent-requests-per-process', '1',
    '--max-request-queue-size', '1', '--request-queue-overflow-status-code', '429', '--max-request-queue-time', '2']);
  await pidsOf(s2, 1);
  const held2 = request(s2.port, '/sleep?ms=15000').catch(() => null);
  await eventually(async () => (await s2.status()).groups[0].processes[0].sessions === 1, 10_000, 'the long request');
  // Two at once: whichever comes first waits and times out (504 after 2 s), the other finds the queue full.
  const statuses = (await Promise.all([request(s2.port, '/pid'), request(s2.port, '/pid')])).map((r) => r.status).sort();
  assert.deepEqual(statuses, [429, 504]);
  void held2;
});

test('idle processes above min_instances are shut down after pool_idle_time; min_instances 0 spawns on demand', async (t) => {
  const s = await startServer(t, appCopy(t, 'basic'), ['--min-instances', '0', '--max-pool-size', '2', '--pool-idle-time', '2', '--force-max-concurrent-requests-per-process', '1']);
  assert.equal(await processCount(s), 0, 'min_instances 0: nothing spawned at start');
  const rs = await Promise.all([request(s.port, '/sleep?ms=500'), request(s.port, '/sleep?ms=500')]);
  for (const r of rs) assert.equal(r.status, 200);
  assert.equal(await processCount(s), 2);
  await eventually(async () => (await processCount(s)) === 0, 20_000, 'idle processes to be shut down');
  await assertLogged(() => s.output(), /was idle for \d+ s: shutting it down/);
});

test('sticky sessions: the cookie pins a client to its process; unknown ids fall back', async (t) => {
  const s = await startServer(t, appCopy(t, 'basic'), ['--min-instances', '2', '--max-pool-size', '2', '--sticky-sessions']);
  await pidsOf(s, 2);
  const first = await request(s.port, '/pid');
  const cookie = String(first.headers['set-cookie']);
  assert.match(cookie, /^_passenger_route=\d+; Path=\/; SameSite=Lax$/, 'no Secure over plain HTTP');
  const route = cookie.split(';')[0];
  // Make the pinned process the busier one: least-busy would pick the other.
  const held = request(s.port, '/sleep?ms=6000', { headers: { cookie: route } });
  await eventually(async () => (await s.status()).groups[0].processes.some((p) => p.sessions === 1), 10_000, 'the held request');
  for (let i = 0; i < 5; i++) {
    const r = await request(s.port, '/pid', { headers: { cookie: `other=1; ${route}` } });
    assert.equal(r.body, first.body, 'the sticky client reached its process');
    assert.equal(r.headers['set-cookie'], undefined, 'no new cookie while it matches');
  }
  assert.match((await held).body, new RegExp(`in ${first.body}$`));
  const unknown = await request(s.port, '/pid', { headers: { cookie: '_passenger_route=99999' } });
  assert.equal(unknown.status, 200);
  assert.match(String(unknown.headers['set-cookie']), /^_passenger_route=\d+;/);
  const https = await request(s.port, '/pid', { headers: { 'x-forwarded-proto': 'https' } });
  assert.match(String(https.headers['set-cookie']), /; Secure$/);
  // The pinned process dies: the client falls back to a live one and is pinned anew.
  process.kill(Number(first.body), 'SIGKILL');
  await eventually(async () => { const p = await s.appPids(); return p.length === 2 && !p.includes(Number(first.body)); }, 20_000, 'a replacement');
  const fallback = await request(s.port, '/pid', { headers: { cookie: route } });
  assert.equal(fallback.status, 200);
  assert.notEqual(fallback.body, first.body);
  assert.match(String(fallback.headers['set-cookie']), /^_passenger_route=\d+;/);
  assert.notEqual(String(fallback.headers['set-cookie']).split(';')[0], route);

  const named = await startServer(t, appCopy(t, 'basic'), ['--min-instances', '1', '--sticky-sessions',
    '--sticky-sessions-cookie-name', 'app_route', '--sticky-sessions-cookie-attributes', 'SameSite=Strict; HttpOnly']);
  const r = await request(named.port, '/pid');
  assert.match(String(r.headers['set-cookie']), /^app_route=\d+; Path=\/; SameSite=Strict; HttpOnly$/);
});

test('max_requests replaces a process after N requests, the new one ready before the old one leaves', async (t) => {
  const s = await startServer(t, appCopy(t, 'basic'), ['--min-instances', '1', '--max-pool-size', '2', '--max-requests', '3']);
  const [first] = await pidsOf(s, 1);
  for (let i = 0; i < 3; i++) assert.equal((await request(s.port, '/pid')).body, String(first));
  await eventually(async () => { const p = await s.appPids(); return p.length === 1 && p[0] !== first; }, 20_000, 'the replacement');
  await assertLogged(() => s.output(), new RegExp(`process ${first} .*max_requests 3`));
  await eventually(() => !isAlive(first), 10_000, 'the old process to exit');
});

test('memory_limit replaces a process whose private memory passes it', async (t) => {
  const s = await startServer(t, appCopy(t, 'basic'), ['--min-instances', '1', '--max-pool-size', '2', '--memory-limit', '80']);
  const [first] = await pidsOf(s, 1);
  assert.match((await request(s.port, '/grow?mb=120')).body, /holding 120 MB/);
  await eventually(async () => { const p = await s.appPids(); return p.length === 1 && p[0] !== first; }, 30_000, 'the replacement');
  await assertLogged(() => s.output(), new RegExp(`process ${first} .*\\(memory_limit 80 MB\\): replacing it`));
});

test('max_request_time answers 504 and replaces the process', async (t) => {
  const s = await startServer(t, appCopy(t, 'basic'), ['--min-instances', '1', '--max-pool-size', '2', '--max-request-time', '1']);
  const [first] = await pidsOf(s, 1);
  const r = await request(s.port, '/sleep?ms=10000');
  assert.equal(r.status, 504);
  await eventually(async () => { const p = await s.appPids(); return p.length === 1 && p[0] !== first; }, 20_000, 'the replacement');
  assert.equal((await request(s.port, '/')).status, 200);
});

test('tmp/restart.txt restarts the app; tmp/always_restart.txt gives every request a fresh process', async (t) => {
  const dir = appCopy(t, 'basic');
  fs.mkdirSync(path.join(dir, 'tmp'));
  const s = await startServer(t, dir, ['--min-instances', '1', '--stat-throttle-rate', '1']);
  const [first] = await pidsOf(s, 1);
  fs.writeFileSync(path.join(dir, 'tmp', 'restart.txt'), '');
  await eventually(async () => { const p = await s.appPids(); return p.length === 1 && p[0] !== first; }, 20_000, 'a restart');
  await assertLogged(() => s.output(), /restart\.txt was touched: restarting/);

  fs.writeFileSync(path.join(dir, 'tmp', 'always_restart.txt'), '');
  await eventually(async () => {
    const a = (await request(s.port, '/pid')).body;
    const b = (await request(s.port, '/pid')).body;
    return a !== b;
  }, 20_000, 'a fresh process per request');
});

test('passenger-config restart-app (blocking) and --rolling under load fail no request', async (t) => {
  const s = await startServer(t, appCopy(t, 'basic'), ['--min-instances', '2', '--max-pool-size', '2']);
  const before = await pidsOf(s, 2);
  const cfgArgs = ['--instance-registry-dir', s.registry];
  const r = await runCli(BIN.config, ['restart-app', s.appDir, ...cfgArgs]);
  assert.equal(r.code, 0, r.stderr);
  const middle = await s.appPids();
  assert.ok(middle.length >= 1 && middle.every((p) => !before.includes(p)), 'all processes are new when restart-app returns');
  await pidsOf(s, 2);

  // Rolling, under steady load.
  const mid = await s.appPids();
  const load = steadyLoad(s.port);
  const rolling = await runCli(BIN.config, ['restart-app', s.appDir, '--rolling', ...cfgArgs]);
  const { count, failures } = await load.stop();
  assert.equal(rolling.code, 0, rolling.stderr);
  assert.deepEqual(failures, [], `${failures.length} of ${count} requests failed`);
  const after = await s.appPids();
  assert.ok(after.every((p) => !mid.includes(p)), 'every process was replaced');
  const bad = await runCli(BIN.config, ['restart-app', '/nonexistent', ...cfgArgs]);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /no app group .*\/nonexistent/);
});

test('passenger-config detach-process stops the process with its children; it is replaced', async (t) => {
  const s = await startServer(t, appCopy(t, 'basic'), ['--min-instances', '1']);
  const [pid] = await pidsOf(s, 1);
  const grandchild = Number((await request(s.port, '/fork')).body);
  assert.ok(isAlive(grandchild));
  const r = await runCli(BIN.config, ['detach-process', String(pid), '--instance-registry-dir', s.registry]);
  assert.equal(r.code, 0, r.stderr);
  await eventually(() => !isAlive(pid) && !isAlive(grandchild), 20_000, 'the process and its child to be gone');
  await eventually(async () => { const p = await s.appPids(); return p.length === 1 && p[0] !== pid; }, 20_000, 'a replacement');
});

test('a process that ignores stdin and TERM is killed, with its children, after shutdown_timeout', async (t) => {
  const s = await startServer(t, appCopy(t, 'stubborn'), ['--app-start-command', `exec ${process.execPath} server.js`, '--min-instances', '1', '--shutdown-timeout', '3']);
  const [pid, child] = (await request(s.port, '/')).body.split(' ').map(Number);
  assert.ok(isAlive(child));
  const r = await runCli(BIN.config, ['detach-process', String(pid), '--instance-registry-dir', s.registry]);
  assert.equal(r.code, 0, r.stderr);
  await eventually(() => s.output().includes(`stubborn ${pid} ignores SIGTERM`), 20_000, 'a TERM');
  await eventually(() => !isAlive(pid) && !isAlive(child), 40_000, 'the process and its child to be killed');
  const killed = new RegExp(`app process ${pid} was still running \\d+ s after SIGTERM: sending SIGKILL`);
  await eventually(() => killed.test(s.output()), 10_000, 'the log to name the SIGKILL');
});

test('a crash-on-boot app is retried with backoff, not in a storm, and the agent stays responsive', async (t) => {
  const s = await startServer(t, appCopy(t, 'crash-on-boot'), ['--environment', 'production', '--min-instances', '1']);
  const until = Date.now() + 10_000;
  let answered = 0;
  while (Date.now() < until) {
    assert.equal((await request(s.port, '/')).status, 500);
    answered++;
    await sleep(200);
  }
  const spawns = (s.output().match(/could not start a process/g) ?? []).length;
  assert.ok(spawns >= 2 && spawns <= 9, `${spawns} spawn attempts in 10 s`);
  assert.ok(answered > 10);
});

test('app output reaches the log prefixed with the app and PID; --show=requests lists requests in flight', async (t) => {
  const s = await startServer(t, appCopy(t, 'basic'), ['--min-instances', '1']);
  const [pid] = await pidsOf(s, 1);
  await request(s.port, '/log?msg=hello-log');
  await eventually(() => s.output().includes(`App ${pid} (${s.appDir}) stderr: to stderr: hello-log`), 10_000, 'the stderr line');
  // Its stdout comes through a pipe of its own: that line may come later.
  await eventually(() => s.output().includes(`App ${pid} (${s.appDir}) stdout: to stdout: hello-log`), 10_000, 'the stdout line');

  const held = request(s.port, '/sleep?ms=6000');
  const shown = await eventually(async () => {
    const r = await runCli(BIN.status, ['--show=requests', '--instance-registry-dir', s.registry]);
    return r.stdout.includes('/sleep?ms=6000') ? r.stdout : null;
  }, 10_000, 'the request in the list');
  assert.match(shown, /^METHOD +PATH +PID +STATE +AGE +CLIENT$/m);
  assert.match(shown, new RegExp(`^GET +/sleep\\?ms=6000 +${pid} +forwarded +\\d+\\.\\ds +127\\.0\\.0\\.1$`, 'm'));
  await held;
});

test('standalone: a restart reads Passengerfile.json again (an edited env var reaches the new processes; flags still win)', async (t) => {
  const app = appCopy(t, 'basic');
  fs.mkdirSync(path.join(app, 'tmp'), { recursive: true });
  fs.writeFileSync(path.join(app, 'Passengerfile.json'), JSON.stringify({ envvars: { GREETING: 'before' }, min_instances: 1 }));
  const s = await startServer(t, app, ['--stat-throttle-rate', '1', '--environment', 'staging']);
  assert.equal(JSON.parse((await request(s.port, '/env')).body).GREETING, 'before');
  fs.writeFileSync(path.join(app, 'Passengerfile.json'), JSON.stringify({ envvars: { GREETING: 'after' }, min_instances: 1, environment: 'production' }));
  const r = await runCli(BIN.config, ['restart-app', app, '--instance-registry-dir', s.registry]);
  assert.equal(r.code, 0, r.stderr);
  const env = JSON.parse((await request(s.port, '/env')).body);
  assert.equal(env.GREETING, 'after');
  assert.equal(env.NODE_ENV, 'staging', 'the flag still wins over the file');
  // A broken file fails the restart and leaves the old process serving.
  const pid = (await request(s.port, '/pid')).body;
  fs.writeFileSync(path.join(app, 'Passengerfile.json'), '{ broken');
  const bad = await runCli(BIN.config, ['restart-app', app, '--instance-registry-dir', s.registry]);
  assert.notEqual(bad.code, 0);
  assert.equal((await request(s.port, '/pid')).body, pid);
});
