// A Passenger user's commands, files and environment work unchanged: short
// flags, PASSENGER_<KEY> variables, the environment's default, Passenger-only
// keys in Passengerfile.json.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { BIN, FIXTURES, appCopy, assertLogged, copyModules, eventually, freePort, isAlive, killEverything, request, runCli, startServer, stopAfter, tmpDir } from '../helpers';

interface Report { pid: number; env: Record<string, string | undefined>; execPath: string; execArgv: string[]; version: string; remoteAddress: string | null }

async function report(port: number, urlPath = '/'): Promise<Report> {
  const r = await request(port, urlPath);
  assert.equal(r.status, 200, r.body);
  return JSON.parse(r.body) as Report;
}

test('passenger start -p PORT -a HOST -d serves; passenger stop -p PORT stops it', async (t) => {
  const app = appCopy(t, 'dropin');
  const reg = tmpDir(t, 'ptest-reg-');
  const port = await freePort();
  const pidFile = path.join(reg, 'server.pid');
  stopAfter(t, () => {
    let pid: number | undefined;
    try { pid = Number(fs.readFileSync(pidFile, 'utf8')); } catch { /* stopped */ }
    killEverything(reg, pid);
  });
  const started = await runCli(BIN.passenger, ['start', app, '-p', String(port), '-a', '127.0.0.1', '-d', '-e', 'staging',
    '--instance-registry-dir', reg, '--pid-file', pidFile, '--log-file', path.join(reg, 'log')]);
  assert.equal(started.code, 0, started.stderr);
  const pid = Number(fs.readFileSync(pidFile, 'utf8'));
  assert.equal((await report(port)).env.NODE_ENV, 'staging');
  const stopped = await runCli(BIN.passenger, ['stop', '-p', String(port), '--pid-file', pidFile]);
  assert.equal(stopped.code, 0, stopped.stderr);
  assert.ok(!isAlive(pid));
});

test('NODE_ENV=production passenger start runs the app in production; PASSENGER_<KEY> sets options', async (t) => {
  const s = await startServer(t, appCopy(t, 'dropin'), [], { env: { NODE_ENV: 'production', PASSENGER_MIN_INSTANCES: '2' } });
  const r = await report(s.port);
  assert.equal(r.env.NODE_ENV, 'production');
  assert.equal(r.env.PASSENGER_APP_ENV, 'production');
  await assertLogged(() => s.output(), /Environment: +production/);
  await eventually(async () => (await s.appPids()).length === 2, 30_000, 'PASSENGER_MIN_INSTANCES=2 to start two processes');
});

test('a Passengerfile.json with Passenger-only keys starts, with one warning each', async (t) => {
  const app = appCopy(t, 'dropin');
  fs.writeFileSync(path.join(app, 'Passengerfile.json'), JSON.stringify({
    engine: 'builtin', disable_security_update_check: true, disable_anonymous_telemetry: true, spawn_method: 'direct', envvars: { WRAPPED: 'no' }, min_instnces: 1,
  }));
  const s = await startServer(t, app);
  assert.equal((await report(s.port)).env.WRAPPED, 'no');
  const warnings = s.output().split('\n').filter((l) => l.startsWith('passenger start: warning: '));
  assert.equal(warnings.length, 5, s.output());
  assert.ok(warnings.some((w) => /"engine" is accepted and ignored/.test(w)), s.output());
  assert.ok(warnings.some((w) => /did you mean "min_instances"/.test(w)), s.output());
});

test('--version on every binary; passenger-config about version|root', async () => {
  for (const bin of [BIN.passenger, BIN.config, BIN.status, BIN.memoryStats]) {
    const r = await runCli(bin, ['--version']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^[\w-]+ \d+\.\d+\.\d+\n$/);
  }
  assert.match((await runCli(BIN.config, ['about', 'version'])).stdout, /^passenger-ts \d+\.\d+\.\d+\n$/);
  const root = (await runCli(BIN.config, ['about', 'root'])).stdout.trim();
  assert.ok(fs.existsSync(path.join(root, 'package.json')), root);
  assert.equal((await runCli(BIN.config, ['about', 'ruby-libdir'])).code, 2);
});

test('the deploy line restart-app --ignore-app-not-running --ignore-passenger-not-running $APP_DIR: exit 0 with no server', async (t) => {
  const app = appCopy(t, 'dropin');
  const reg = ['--instance-registry-dir', tmpDir(t, 'ptest-reg-')];
  const line = await runCli(BIN.config, ['restart-app', '--ignore-app-not-running', '--ignore-passenger-not-running', app, ...reg]);
  assert.equal(line.code, 0, line.stderr);
  assert.equal((await runCli(BIN.config, ['restart-app', app, ...reg])).code, 1);
  const quiet = await runCli(BIN.config, ['list-instances', '-q', ...reg]);
  assert.deepEqual([quiet.code, quiet.stdout], [0, '']);
  assert.equal((await runCli(BIN.config, ['reopen-logs', '--ignore-logs-not-available', ...reg])).code, 0);
});

test('restart-app selects by path prefix, by ".", by --name; takes --rolling-restart and the ignore flags; detach-process and reopen-logs take theirs', async (t) => {
  const s = await startServer(t, appCopy(t, 'dropin'));
  const reg = ['--instance-registry-dir', s.registry];
  const pids = async (): Promise<number[]> => eventually(async () => { const p = await s.appPids(); return p.length > 0 ? p : null; }, 30_000, 'an app process');
  const restartedBy = async (args: string[], opts: { cwd?: string } = {}): Promise<void> => {
    const before = await pids();
    const r = await runCli(BIN.config, ['restart-app', ...args, ...reg], opts);
    assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
    const after = await pids();
    assert.ok(after.every((p) => !before.includes(p)), `${args.join(' ')}: new processes (${before} -> ${after})`);
  };
  await restartedBy(['--ignore-app-not-running', '--ignore-passenger-not-running', s.appDir]);
  await restartedBy([path.dirname(s.appDir), '--rolling-restart']);
  await restartedBy(['.'], { cwd: s.appDir });
  const name = (await s.status()).groups[0].name;
  await restartedBy(['--name', name]);

  const other = tmpDir(t, 'ptest-other-');
  const none = await runCli(BIN.config, ['restart-app', other, ...reg]);
  assert.equal(none.code, 1);
  assert.match(none.stderr, /no app group at or below/);
  assert.equal((await runCli(BIN.config, ['restart-app', other, '--ignore-app-not-running', ...reg])).code, 0);
  // A prefix is a directory: /x/app2 is not below /x/app.
  assert.equal((await runCli(BIN.config, ['restart-app', `${s.appDir}2`, ...reg])).code, 1);

  assert.equal((await runCli(BIN.config, ['detach-process', '999999', ...reg])).code, 1);
  assert.equal((await runCli(BIN.config, ['detach-process', '999999', '--ignore-nonexistant-pid', ...reg])).code, 0);
  const noLog = await runCli(BIN.config, ['reopen-logs', ...reg]);
  assert.equal(noLog.code, 1);
  assert.match(noLog.stderr, /no log file/);
  assert.equal((await runCli(BIN.config, ['reopen-logs', '--ignore-logs-not-available', ...reg])).code, 0);
  const list = await runCli(BIN.config, ['list-instances', '-q', ...reg]);
  assert.match(list.stdout, /standalone/);
});

/** The element paths of an XML document (info/supergroups/supergroup/...), leaving out the free-form options. */
function xmlPaths(xml: string): Set<string> {
  const stack: string[] = [];
  const out = new Set<string>();
  for (const m of xml.matchAll(/<(\/?)([A-Za-z_][\w.-]*)[^>]*?(\/?)>/g)) {
    if (m[1]) { stack.pop(); continue; }
    stack.push(m[2]);
    if (!stack.slice(0, -1).includes('options')) out.add(stack.join('/'));
    if (m[3]) stack.pop();
  }
  return out;
}

const PASSENGER_XML_PATHS = fs.readFileSync(path.join(FIXTURES, '..', 'passenger-6.0.17-status-xml-paths.txt'), 'utf8').trim().split('\n');

test('passenger-status --show=xml has every element path of Passenger 6.0.17\'s; --show=server answers', async (t) => {
  const s = await startServer(t, appCopy(t, 'dropin'));
  await report(s.port);
  const r = await runCli(BIN.status, ['--show=xml', '--instance-registry-dir', s.registry]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^<\?xml version="1.0" encoding="UTF-8" \?>\n<info version="3">/);
  const ours = xmlPaths(r.stdout);
  assert.deepEqual(PASSENGER_XML_PATHS.filter((p) => !ours.has(p)), [], 'element paths Passenger has and we lack');
  const pid = (await s.appPids())[0];
  assert.match(r.stdout, new RegExp(`<process><pid>${pid}</pid>`));
  assert.match(r.stdout, /<processed>[1-9]\d*<\/processed>/);
  const server = await runCli(BIN.status, ['--show=server', '--instance-registry-dir', s.registry]);
  assert.equal(server.code, 0, server.stderr);
  assert.match(server.stdout, /^Version : /);
  assert.equal(JSON.parse(server.stdout.slice(server.stdout.indexOf('{'))).pid, JSON.parse((await runCli(BIN.status, ['--show=json', '--instance-registry-dir', s.registry])).stdout).instance.core_pid);
});

const PHUSION = '/usr/bin/passenger';

/** Runs one of Phusion Passenger's own commands (Ruby scripts, not ours). */
function runPhusion(file: string, args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(file, args, { env: { ...process.env, ...env }, timeout: 120_000 }, (e, stdout, stderr) => {
      resolve({ code: e ? (typeof e.code === 'number' ? e.code : 1) : 0, stdout, stderr });
    });
  });
}
const hasPhusion = fs.existsSync(PHUSION) && fs.existsSync('/usr/sbin/passenger-status');

test('against real Phusion Passenger: the same app\'s --show=xml element paths match ours', hasPhusion ? {} : { skip: 'Phusion Passenger is not installed (apt-get install passenger)' }, async (t) => {
  const app = appCopy(t, 'dropin');
  const reg = tmpDir(t, 'ptest-phusion-');
  const port = await freePort();
  const pidFile = path.join(reg, 'passenger.pid');
  const env = { PASSENGER_INSTANCE_REGISTRY_DIR: reg };
  stopAfter(t, async () => {
    if (!fs.existsSync(pidFile)) return;
    await runPhusion(PHUSION, ['stop', '--pid-file', pidFile], env);
    const pid = Number(fs.readFileSync(pidFile, 'utf8'));
    if (pid > 1 && isAlive(pid)) process.kill(pid, 'SIGKILL');
  });
  const started = await runPhusion(PHUSION, ['start', app, '--engine', 'builtin', '-p', String(port), '-a', '127.0.0.1', '-d', '--pid-file', pidFile,
    '--log-file', path.join(reg, 'log'), '--instance-registry-dir', reg, '--disable-security-update-check', '--disable-anonymous-telemetry'], env);
  assert.equal(started.code, 0, started.stdout + started.stderr);
  await report(port);
  const theirs = await runPhusion('/usr/sbin/passenger-status', ['--show=xml'], env);
  assert.equal(theirs.code, 0, theirs.stderr);
  const s = await startServer(t, app);
  await report(s.port);
  const ours = xmlPaths((await runCli(BIN.status, ['--show=xml', '--instance-registry-dir', s.registry])).stdout);
  assert.deepEqual([...xmlPaths(theirs.stdout)].filter((p) => !ours.has(p)), []);
});

test('nodejs (a wrapper script) and node_args reach the app; passenger-status shows the Node version; a missing nodejs is a clear spawn error', async (t) => {
  const app = appCopy(t, 'dropin');
  const bin = tmpDir(t, 'ptest-nodejs-');
  const wrapper = path.join(bin, 'my-node');
  fs.writeFileSync(wrapper, `#!/bin/sh\nWRAPPED=yes exec ${JSON.stringify(process.execPath)} "$@"\n`, { mode: 0o755 });
  fs.writeFileSync(path.join(app, '.env'), 'FROM_ENV_FILE=yes\n', { mode: 0o644 });
  fs.writeFileSync(path.join(app, 'Passengerfile.json'), JSON.stringify({ nodejs: wrapper, node_args: ['--env-file=.env', '--max-old-space-size=100'] }));
  const s = await startServer(t, app);
  const r = await report(s.port);
  assert.equal(r.env.WRAPPED, 'yes');
  assert.equal(r.env.FROM_ENV_FILE, 'yes');
  assert.deepEqual(r.execArgv, ['--env-file=.env', '--max-old-space-size=100']);
  const doc = await s.status() as unknown as { groups: { nodejs: string; node_version: string }[] };
  assert.equal(doc.groups[0].nodejs, wrapper);
  assert.equal(doc.groups[0].node_version, r.version);
  const text = await runCli(BIN.status, ['--instance-registry-dir', s.registry]);
  assert.match(text.stdout, new RegExp(`^  Node: ${r.version.replace(/\./g, '\\.')} \\(${wrapper}\\)$`, 'm'));

  // --nodejs on the command line; a missing one fails the spawn at once, naming it.
  const bad = await startServer(t, appCopy(t, 'dropin'), ['--nodejs', path.join(bin, 'no-such-node')]);
  const page = await request(bad.port, '/');
  assert.equal(page.status, 500);
  assert.match(page.body, /no-such-node \(nodejs\) is not an executable file/);
});

test('Express\'s req.ip and morgan\'s :remote-addr are filled (127.0.0.1, as under Passenger\'s loader)', async (t) => {
  const app = tmpDir(t, 'ptest-express-');
  // The app's own node_modules: as root it runs as another user, who may not read this checkout.
  copyModules(app, ['express', 'morgan']);
  fs.writeFileSync(path.join(app, 'app.js'), `
const express = require('express');
const morgan = require('morgan');
const app = express();
app.use(morgan('remote=:remote-addr :method :url'));
app.get('/', (req, res) => res.json({ ip: req.ip, remoteAddress: req.socket.remoteAddress, forwarded: req.get('x-forwarded-for') }));
app.listen(3000);
`, { mode: 0o644 });
  const s = await startServer(t, app);
  const r = await request(s.port, '/');
  assert.equal(r.status, 200, r.body);
  const body = JSON.parse(r.body) as { ip: string; remoteAddress: string; forwarded: string };
  assert.equal(body.remoteAddress, '127.0.0.1');
  assert.equal(body.ip, '127.0.0.1');
  assert.equal(body.forwarded, '127.0.0.1', 'the client\'s own address is in X-Forwarded-For');
  await eventually(() => /stdout: remote=127\.0\.0\.1 GET \//.test(s.output()), 20_000, `morgan's line in the log:\n${s.output()}`);
});

test('an app that forks node:cluster workers fails its spawn at once with a message naming cluster', async (t) => {
  const app = tmpDir(t, 'ptest-cluster-');
  fs.writeFileSync(path.join(app, 'app.js'), `
const cluster = require('node:cluster');
const http = require('node:http');
if (cluster.isPrimary) { for (let i = 0; i < 2; i++) cluster.fork(); }
else http.createServer((req, res) => res.end('worker ' + process.pid)).listen(3000);
`, { mode: 0o644 });
  // With a start timeout far beyond the request's own, only an immediate failure answers.
  const s = await startServer(t, app, ['--start-timeout', '3600']);
  const r = await request(s.port, '/', { timeoutMs: 120_000 });
  assert.equal(r.status, 500);
  assert.match(r.body, /node:cluster/);
  const doc = await s.status() as unknown as { groups: { last_spawn_error: string | null }[] };
  assert.match(doc.groups[0].last_spawn_error ?? '', /it uses node:cluster, which is not supported/);
});

test('app_log_file receives only that app\'s lines and moves with reopen-logs; disable_log_prefix drops the prefix', async (t) => {
  const app = appCopy(t, 'dropin');
  fs.mkdirSync(path.join(app, 'log'), { mode: 0o755 });
  // As root the app runs as nobody (its files are root's) and writes its log with that user's rights.
  if (process.getuid?.() === 0) fs.chownSync(path.join(app, 'log'), 65534, 65534);
  fs.writeFileSync(path.join(app, 'Passengerfile.json'), JSON.stringify({ app_log_file: 'log/app.log' }));
  const s = await startServer(t, app);
  const file = path.join(app, 'log', 'app.log');
  const first = await report(s.port, '/first');
  await eventually(() => fs.existsSync(file) && fs.readFileSync(file, 'utf8').includes(`App ${first.pid} (${app}) stdout: request /first in ${first.pid}`), 20_000, 'the line in the app log');
  assert.doesNotMatch(s.output(), /request \/first/, 'the app\'s lines are not in the server\'s log');

  fs.renameSync(file, `${file}.1`);
  const reopen = await runCli(BIN.config, ['reopen-logs', '--instance-registry-dir', s.registry]);
  assert.equal(reopen.code, 0, reopen.stderr);
  assert.match(reopen.stdout, /app\.log/);
  await report(s.port, '/second');
  await eventually(() => fs.existsSync(file) && fs.readFileSync(file, 'utf8').includes('request /second'), 20_000, 'the line in the reopened app log');
  assert.doesNotMatch(fs.readFileSync(`${file}.1`, 'utf8'), /request \/second/);

  const plain = await startServer(t, appCopy(t, 'dropin'), ['--disable-log-prefix']);
  const r = await report(plain.port, '/plain');
  await eventually(() => plain.output().split('\n').includes(`request /plain in ${r.pid}`), 20_000, `an unprefixed line:\n${plain.output()}`);
});
