// Root trusts no file it did not make: registry entries planted by another
// user, PID and log files that are links, records naming processes that are
// not ours, a removal raced by link swaps, app roots that lead outside the
// allowed ones. Each scenario is played by a real unprivileged user (nobody).
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { test, type TestContext } from 'node:test';
import { signalRecordedGroup, startTicksOf } from '../../helper-agent/src/instance/instance-dir';
import { cleanStale } from '../../helper-agent/src/instance/registry';
import { AppHandle } from '../../helper-agent/src/spawn/app-handle';
import type { LoaderChannel } from '../../helper-agent/src/spawn/loader-channel';
import { SOFTWARE, VERSION } from '../../helper-agent/src/version';
import { startAgent } from '../e2e/web-servers';
import { BIN, appCopy, assertLogged, eventually, freePort, isAlive, runCli, startServer, stopAfter, tmpDir } from '../helpers';

const ROOT_ONLY = process.getuid?.() !== 0 ? 'needs root (another user plants the files)' : false;
const NOBODY = 65534;

/** A process of root's that nobody may steer us into killing; killed after the test. */
function rootVictim(t: TestContext, leader = true): ChildProcess {
  const child = spawn('sleep', ['600'], { detached: leader, stdio: 'ignore' });
  stopAfter(t, () => { if (child.pid && isAlive(child.pid)) process.kill(child.pid, 'SIGKILL'); });
  return child;
}

function chownTree(p: string, uid: number): void {
  fs.lchownSync(p, uid, uid);
  const st = fs.lstatSync(p);
  if (st.isDirectory()) for (const n of fs.readdirSync(p)) chownTree(path.join(p, n), uid);
}

/** An instance directory as a server of ours would leave it, naming `watchdogPid` and recording `appPids`. */
function plantInstance(registry: string, name: string, watchdogPid: number, appPids: number[], extra: Record<string, unknown> = {}): string {
  const dir = path.join(registry, `passenger-ts.${name}`);
  fs.mkdirSync(path.join(dir, 'processes'), { recursive: true, mode: 0o755 });
  fs.chmodSync(dir, 0o755);
  fs.writeFileSync(path.join(dir, 'properties.json'), JSON.stringify({
    software: SOFTWARE, version: VERSION, name, instance_dir: dir, created_at: new Date().toISOString(),
    watchdog_pid: watchdogPid, watchdog_start_ticks: startTicksOf(watchdogPid), mode: 'standalone',
    server: 'http://127.0.0.1:1', app_root: null, log_file: null, pid_file: null, ...extra,
  }));
  for (const pid of appPids) {
    fs.writeFileSync(path.join(dir, 'processes', String(pid)), JSON.stringify({
      pid, startTicks: startTicksOf(pid), group: '/x', id: 1, spawnedAt: Date.now(), endpoint: { socketPath: '/nowhere' },
    }));
  }
  return dir;
}

/** A registry like /tmp: anyone may create entries, the sticky bit keeps them apart. */
function stickyRegistry(t: TestContext): string {
  const r = tmpDir(t, 'ptest-sticky-');
  fs.chmodSync(r, 0o1777);
  return r;
}

test('a registry entry planted by another user is ignored and named: the process it names is not killed', { skip: ROOT_ONLY }, async (t) => {
  const registry = stickyRegistry(t);
  const victim = rootVictim(t);
  const dead = spawn('true');
  await new Promise((r) => dead.on('exit', r));
  const planted = plantInstance(registry, 'planted', dead.pid as number, [victim.pid as number]);
  chownTree(planted, NOBODY);
  const server = await startServer(t, appCopy(t, 'basic'), [], { registry });
  await eventually(() => server.output().includes(`ignored ${planted}`), 10_000, 'the log to name the ignored entry');
  assert.match(server.output(), /belongs to uid 65534/);
  assert.ok(isAlive(victim.pid as number), 'the process named by the planted record still runs');
  assert.ok(fs.existsSync(planted), 'the planted entry is left alone');
  // The tools ignore it too: the one server they find is ours.
  const list = await runCli(BIN.config, ['list-instances', '--json', '--instance-registry-dir', registry]);
  assert.equal(list.code, 0, list.stderr);
  assert.equal(JSON.parse(list.stdout).length, 1);
});

test('a stale entry of our own: only processes proven ours are killed (start time, own process group, never pid 1)', { skip: ROOT_ONLY }, async (t) => {
  const registry = tmpDir(t, 'ptest-reg-');
  const dead = spawn('true');
  await new Promise((r) => dead.on('exit', r));
  const app = rootVictim(t); // a group leader, as every app process is spawned
  const notLeader = rootVictim(t, false);
  await eventually(() => startTicksOf(app.pid as number) > 0 && startTicksOf(notLeader.pid as number) > 0);
  const dir = plantInstance(registry, 'stale', dead.pid as number, [app.pid as number, notLeader.pid as number, 1]);
  const removed = cleanStale(registry);
  assert.deepEqual(removed, [dir]);
  await eventually(() => !isAlive(app.pid as number), 10_000, 'the recorded app process to be killed');
  assert.ok(isAlive(notLeader.pid as number), 'a process that does not lead its own group is not ours');
  assert.ok(isAlive(1));
  // Nothing at or below pid 1, nothing with another start time.
  assert.equal(signalRecordedGroup({ pid: 1, startTicks: startTicksOf(1) }, 'SIGCONT'), false);
  assert.equal(signalRecordedGroup({ pid: 0, startTicks: 0 }, 'SIGCONT'), false);
  assert.equal(signalRecordedGroup({ pid: -1, startTicks: 0 }, 'SIGCONT'), false);
  const other = rootVictim(t);
  await eventually(() => startTicksOf(other.pid as number) > 0);
  assert.equal(signalRecordedGroup({ pid: other.pid as number, startTicks: startTicksOf(other.pid as number) + 1 }, 'SIGKILL'), false);
  assert.ok(isAlive(other.pid as number));
});

test('passenger stop acts only on a PID that a trusted PID file or registry entry names and that runs our server', { skip: ROOT_ONLY }, async (t) => {
  const registry = stickyRegistry(t);
  const victim = rootVictim(t);
  const port = await freePort();
  await eventually(() => startTicksOf(victim.pid as number) > 0);
  // Another user's entry claims the root process is the server on that port.
  const planted = plantInstance(registry, 'claims', victim.pid as number, [], { server: `http://127.0.0.1:${port}` });
  chownTree(planted, NOBODY);
  const cwd = tmpDir(t, 'ptest-cwd-');
  const r1 = await runCli(BIN.passenger, ['stop', '--port', String(port), '--instance-registry-dir', registry], { cwd });
  assert.notEqual(r1.code, 0, r1.stdout);
  assert.ok(isAlive(victim.pid as number));
  // Root's own entry and PID file naming a process that is no server of ours.
  fs.rmSync(planted, { recursive: true });
  plantInstance(registry, 'stale-pid', victim.pid as number, [], { server: `http://127.0.0.1:${port}` });
  const r2 = await runCli(BIN.passenger, ['stop', '--port', String(port), '--instance-registry-dir', registry], { cwd });
  assert.notEqual(r2.code, 0, r2.stdout);
  fs.writeFileSync(path.join(cwd, `passenger.${port}.pid`), `${victim.pid}\n`);
  const r3 = await runCli(BIN.passenger, ['stop', '--port', String(port), '--instance-registry-dir', registry], { cwd });
  assert.notEqual(r3.code, 0, r3.stdout);
  assert.match(r3.stderr, /not a running server of ours/);
  // A PID file that is another user's link is not read at all.
  fs.rmSync(path.join(cwd, `passenger.${port}.pid`));
  const elsewhere = path.join(tmpDir(t, 'ptest-else-'), 'pid');
  fs.writeFileSync(elsewhere, `${victim.pid}\n`);
  fs.symlinkSync(elsewhere, path.join(cwd, `passenger.${port}.pid`));
  fs.lchownSync(path.join(cwd, `passenger.${port}.pid`), NOBODY, NOBODY);
  const r4 = await runCli(BIN.passenger, ['status', '--port', String(port), '--instance-registry-dir', registry], { cwd });
  assert.equal(r4.code, 1, r4.stdout);
  assert.ok(isAlive(victim.pid as number), 'nothing was signalled');
});

test('PID and log files that are links planted in an app directory another user owns are refused, exit 2', { skip: ROOT_ONLY }, async (t) => {
  const app = appCopy(t, 'basic');
  fs.chmodSync(app, 0o755);
  fs.mkdirSync(path.join(app, 'log'));
  chownTree(app, NOBODY);
  const victim = path.join(tmpDir(t, 'ptest-victim-'), 'victim');
  fs.writeFileSync(victim, 'precious\n');
  const port = await freePort();
  const registry = tmpDir(t, 'ptest-reg-');
  const start = (): ReturnType<typeof runCli> => runCli(BIN.passenger, ['start', app, '--daemonize', '--port', String(port), '--address', '127.0.0.1', '--instance-registry-dir', registry]);

  const pidLink = path.join(app, `passenger.${port}.pid`);
  fs.symlinkSync(victim, pidLink);
  fs.lchownSync(pidLink, NOBODY, NOBODY);
  const r1 = await start();
  assert.equal(r1.code, 2, r1.stdout + r1.stderr);
  assert.match(r1.stderr, /refusing to write .*passenger\.\d+\.pid: it is a symbolic link/);
  fs.rmSync(pidLink);

  const logLink = path.join(app, 'log', `passenger.${port}.log`);
  fs.symlinkSync(victim, logLink);
  fs.lchownSync(logLink, NOBODY, NOBODY);
  const r2 = await start();
  assert.equal(r2.code, 2, r2.stdout + r2.stderr);
  assert.match(r2.stderr, /refusing to write .*passenger\.\d+\.log: it is a symbolic link/);
  fs.rmSync(logLink);

  // A file of another user's under the name is refused too (root would write into it).
  fs.writeFileSync(logLink, '');
  fs.chownSync(logLink, NOBODY, NOBODY);
  const r3 = await start();
  assert.equal(r3.code, 2, r3.stdout + r3.stderr);
  assert.match(r3.stderr, /belongs to uid 65534/);
  assert.equal(fs.readFileSync(victim, 'utf8'), 'precious\n');
  assert.deepEqual(fs.readdirSync(registry), [], 'nothing was started');
});

/**
 * As user nobody, swaps `a` (a directory) and `b` (a symlink to `target`)
 * atomically, over and over, putting the link back whenever it was removed,
 * until killed (or a bounded number of rounds).
 */
function swapper(t: TestContext, a: string, b: string, target: string): ChildProcess {
  const code = [
    'import ctypes, os, sys',
    'libc = ctypes.CDLL(None, use_errno=True)',
    'a, b, target = sys.argv[1].encode(), sys.argv[2].encode(), sys.argv[3]',
    'for _ in range(50_000_000):',
    '    if libc.renameat2(-100, a, -100, b, 2) != 0:',
    '        try: os.symlink(target, b)',
    '        except OSError: pass',
  ].join('\n');
  const child = spawn('setpriv', [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', '/usr/bin/python3', '-c', code, a, b, target], { stdio: 'ignore', cwd: '/' });
  stopAfter(t, () => { if (child.pid && isAlive(child.pid)) process.kill(child.pid, 'SIGKILL'); });
  return child;
}

test('removing an instance directory never follows a link swapped in meanwhile', { skip: ROOT_ONLY }, async (t) => {
  const victim = tmpDir(t, 'ptest-victim-');
  fs.chmodSync(victim, 0o755);
  for (let i = 0; i < 200; i++) fs.writeFileSync(path.join(victim, `f${i}`), 'keep');
  const registry = tmpDir(t, 'ptest-reg-');
  fs.chmodSync(registry, 0o755); // the app's user reaches its directory
  const dead = spawn('true');
  await new Promise((r) => dead.on('exit', r));
  const deadline = Date.now() + 5_000;
  let rounds = 0;
  while (Date.now() < deadline && rounds < 200) {
    rounds++;
    const dir = plantInstance(registry, `race${rounds}`, dead.pid as number, []);
    // A directory an app's user owns inside the instance (as its socket directory is).
    const own = path.join(dir, 'apps', 'g');
    fs.mkdirSync(path.join(own, 'sub'), { recursive: true });
    for (let i = 0; i < 20; i++) fs.writeFileSync(path.join(own, 'sub', `x${i}`), '');
    fs.symlinkSync(victim, path.join(own, 'link'));
    fs.chmodSync(path.join(dir, 'apps'), 0o711);
    chownTree(own, NOBODY);
    const swap = swapper(t, path.join(own, 'sub'), path.join(own, 'link'), victim);
    await eventually(() => fs.lstatSync(path.join(own, 'sub')).isSymbolicLink(), 10_000, 'the swapping to begin');
    cleanStale(registry);
    const exited = new Promise((r) => swap.once('exit', r));
    if (swap.exitCode === null && swap.signalCode === null) swap.kill('SIGKILL');
    await exited;
    assert.equal(swap.signalCode, 'SIGKILL', 'the swapper ran until the removal was done');
  }
  assert.equal(fs.readdirSync(victim).length, 200, `files outside were deleted (${rounds} rounds)`);

});

function agentGet(socket: string, docRoot: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath: socket, path: '/', headers: { 'x-passenger-document-root': docRoot } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode as number, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

test('behind a web server: a root that leads outside the allowed ones through a link is refused; roots that do not exist are 404 and leave no group', async (t) => {
  const dir = tmpDir(t, 'ptest-roots-');
  const allowed = path.join(dir, 'allowed');
  const outside = appCopy(t, 'basic'); // an app, but no public/ directory
  fs.mkdirSync(allowed);
  fs.symlinkSync(outside, path.join(allowed, 'escape'));
  const agent = await startAgent(t, dir, allowed);
  const escaped = await agentGet(agent.socket, path.join(allowed, 'escape', 'public'));
  assert.equal(escaped.status, 403, escaped.body);
  for (let i = 0; i < 30; i++) {
    const r = await agentGet(agent.socket, path.join(allowed, `nope-${i}`, 'public'));
    assert.equal(r.status, 404, r.body);
  }
  const doc = await runCli(BIN.status, ['--show=json', '--instance-registry-dir', agent.registry]);
  assert.equal(doc.code, 0, doc.stderr);
  assert.deepEqual(JSON.parse(doc.stdout).groups, [], 'no group was created');
  await assertLogged(() => agent.output(), new RegExp(`refused a request for app root ${outside}`));
});

test('an adopted process whose PID now runs another user\'s process: neither its stop nor its exit signals that process or its group', { skip: ROOT_ONLY }, async (t) => {
  // nobody's process leads its own group, with a PID our record names but a start time it does not have.
  const victim = spawn('setpriv', [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', 'sleep', '600'], { detached: true, stdio: 'ignore', cwd: '/' });
  stopAfter(t, () => { if (victim.pid && isAlive(victim.pid)) process.kill(victim.pid, 'SIGKILL'); });
  const pid = victim.pid as number;
  await eventually(() => fs.readFileSync(`/proc/${pid}/cmdline`, 'latin1').startsWith('sleep'), 20_000, 'nobody\'s sleep runs');
  const record = { pid, startTicks: 1, group: '/srv/app', id: 1, spawnedAt: Date.now(), endpoint: { host: '127.0.0.1', port: 1 } };
  const noChannel = {} as LoaderChannel;

  const stopped = AppHandle.adopt(record, noChannel);
  await stopped.stop(1000);
  assert.equal(stopped.exited, true, 'a process that is not the recorded one counts as exited');
  assert.ok(isAlive(pid), 'stop signalled nothing');

  const polled = AppHandle.adopt(record, noChannel);
  await eventually(() => polled.exited, 20_000, 'the poll sees the recorded process gone');
  assert.ok(isAlive(pid), 'its exit signalled nothing either');
});
