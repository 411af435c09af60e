// Bad input gets a clear, one-line error (exit 2) or, for an app that fails
// at run time, an error page while the server and passenger-status stay up.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { BIN, appCopy, assertLogged, eventually, isAlive, request, runCli, startServer, tmpDir } from '../helpers';

async function startFails(t: Parameters<typeof appCopy>[0], args: string[]): Promise<{ code: number | null; stderr: string }> {
  const reg = tmpDir(t, 'ptest-reg-');
  const r = await runCli(BIN.passenger, ['start', ...args, '--port', '1', '--instance-registry-dir', reg]);
  assert.equal(r.stdout, '', 'nothing started');
  assert.equal(r.stderr.trimEnd().split('\n').length, 1, `one line: ${r.stderr}`);
  return r;
}

test('an unknown flag: exit 2 and one line naming it', async (t) => {
  const r = await startFails(t, [appCopy(t, 'basic'), '--max-pool-sise', '3']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /^passenger: unknown flag --max-pool-sise \(did you mean --max-pool-size\? run with --help to see the flags\)\n$/);
});

test('a bad value: exit 2 naming the flag', async (t) => {
  const r = await startFails(t, [appCopy(t, 'basic'), '--min-instances', 'many']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /--min-instances: expected a whole number, got "many"/);
  const port = await startFails(t, [appCopy(t, 'basic'), '--port', '70000']);
  assert.equal(port.code, 2);
  assert.match(port.stderr, /--port: must be at most 65535, got 70000/);
  const status = await startFails(t, [appCopy(t, 'basic'), '--request-queue-overflow-status-code', '1000']);
  assert.equal(status.code, 2);
  assert.match(status.stderr, /--request-queue-overflow-status-code: must be at most 599, got 1000/);
  const sticky = await startFails(t, [appCopy(t, 'basic'), '--forwarder', 'reply-from', '--sticky-sessions']);
  assert.equal(sticky.code, 2);
  assert.match(sticky.stderr, /sticky_sessions cannot be used with forwarder reply-from/);
});

test('passenger agent: bad socket settings and app roots exit 2 naming them, before anything starts', async (t) => {
  const dir = tmpDir(t, 'ptest-agent-bad-');
  const base = ['agent', '--socket', path.join(dir, 'agent.sock'), '--instance-registry-dir', dir];
  for (const [flags, message] of [
    [['--socket-owner', 'no-such-user-here'], /--socket-owner no-such-user-here: no such user/],
    [['--socket-group', 'no-such-group-here'], /--socket-group no-such-group-here: no such group/],
    [['--socket-mode', 'rw-rw----'], /--socket-mode: expected an octal mode like 0660/],
    [['--app-root-allow', path.join(dir, 'missing')], /--app-root-allow .*missing: no such directory/],
  ] as const) {
    const r = await runCli(BIN.passenger, [...base, ...flags]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, message);
    assert.equal(r.stderr.trimEnd().split('\n').length, 1, `one line: ${r.stderr}`);
  }
  assert.equal(fs.existsSync(path.join(dir, 'agent.sock')), false);
});

test('a broken Passengerfile.json: exit 2 naming the file', async (t) => {
  const dir = appCopy(t, 'basic');
  fs.writeFileSync(path.join(dir, 'Passengerfile.json'), '{ "min_instances": 2, ');
  const r = await startFails(t, [dir]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, new RegExp(`${path.join(dir, 'Passengerfile.json').replace(/[/.]/g, '\\$&')} is not valid JSON`));
  // A Passenger option whose absence would change what the user gets is refused by name.
  fs.writeFileSync(path.join(dir, 'Passengerfile.json'), '{ "ssl": true }');
  const r2 = await startFails(t, [dir]);
  assert.equal(r2.code, 2);
  assert.match(r2.stderr, /"ssl" is not supported yet/);
});

test('a missing startup file: exit 2 naming the file and the fix', async (t) => {
  const r = await startFails(t, [appCopy(t, 'basic'), '--startup-file', 'server.js']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /the startup file .*server\.js does not exist/);
  assert.match(r.stderr, /--startup-file/);
});

test('an app that throws on boot: 500 in production, the log says why, passenger-status answers', async (t) => {
  const s = await startServer(t, appCopy(t, 'crash-on-boot'), ['--environment', 'production']);
  const r = await request(s.port, '/');
  assert.equal(r.status, 500);
  assert.doesNotMatch(r.body, /boom/, 'no details for visitors in production');
  await assertLogged(() => s.output(), /boom: database unreachable/);
  await assertLogged(() => s.output(), /could not start a process/);
  const st = await runCli(BIN.status, ['--instance-registry-dir', s.registry]);
  assert.equal(st.code, 0, st.stderr);
  assert.match(st.stdout, /Last spawn error: the app exited \(exit code 1\) before it listened/);
  // The agent stays responsive while it backs off.
  for (let i = 0; i < 5; i++) assert.equal((await request(s.port, '/')).status, 500);
});

test('an app that never listens: start_timeout ends its spawn with 500, the stuck process is killed, the log says why', async (t) => {
  const s = await startServer(t, appCopy(t, 'never-listens'), ['--environment', 'production', '--start-timeout', '1'], { waitFor: 'none' });
  const pid = Number(await eventually(() => /never-listens (\d+):/.exec(s.output())?.[1], 20_000, 'the app to boot'));
  const r = await request(s.port, '/');
  assert.equal(r.status, 500);
  await assertLogged(() => s.output(), /did not listen within 1 s \(start_timeout\)/);
  await eventually(() => !isAlive(pid), 20_000, 'the stuck process to be killed');
  const st = await runCli(BIN.status, ['--instance-registry-dir', s.registry]);
  assert.equal(st.code, 0, st.stderr);
  assert.match(st.stdout, /Last spawn error: the app did not listen within 1 s/);
  // Stopping the server while a retry is still starting leaves nothing behind.
  const retry = Number(await eventually(() => [...s.output().matchAll(/never-listens (\d+):/g)].map((m) => m[1]).find((p) => Number(p) !== pid), 20_000, 'a retry to boot'));
  assert.equal(await s.stop(), 0);
  await eventually(() => !isAlive(retry), 10_000, 'the process still starting to be stopped with the server');
});

test('an app that throws on boot: a friendly page with its output in development', async (t) => {
  const s = await startServer(t, appCopy(t, 'crash-on-boot'));
  const r = await request(s.port, '/');
  assert.equal(r.status, 500);
  assert.match(String(r.headers['content-type']), /text\/html/);
  assert.match(r.body, /The application could not start/);
  assert.match(r.body, /boom: database unreachable/);
  assert.match(r.body, /connecting to the database/);
});

test('a startup file removed while running: spawn error, server stays up', async (t) => {
  const dir = appCopy(t, 'basic');
  const s = await startServer(t, dir, ['--environment', 'production', '--min-instances', '1']);
  assert.equal((await request(s.port, '/')).status, 200);
  fs.rmSync(path.join(dir, 'app.js'));
  const [pid] = await s.appPids();
  process.kill(pid, 'SIGKILL');
  await eventually(async () => (await request(s.port, '/')).status === 500, 15_000, 'a 500 for the missing file');
  await assertLogged(() => s.output(), /the startup file .*app\.js does not exist/);
  const st = await runCli(BIN.status, ['--instance-registry-dir', s.registry]);
  assert.equal(st.code, 0);
});

test('a malformed request gets 400 and does not disturb others', async (t) => {
  const s = await startServer(t, appCopy(t, 'basic'));
  const net = await import('node:net');
  const reply = await new Promise<string>((resolve) => {
    const c = net.connect(s.port, '127.0.0.1', () => c.write('GET / HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\n\r\n'));
    let buf = '';
    c.on('data', (d) => { buf += d; });
    c.on('close', () => resolve(buf));
    c.on('error', () => resolve(buf));
  });
  assert.match(reply, /^HTTP\/1\.1 400/);
  assert.equal((await request(s.port, '/')).status, 200);
});
