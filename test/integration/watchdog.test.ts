// The watchdog restarts a dead agent core; the new core adopts the live app
// processes, and requests that arrive meanwhile wait instead of failing.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { CORE_SESSION_NICE, CORE_THREAD_NICE, sessionGroupOf } from '../../helper-agent/src/platform/cpu-share';
import { BIN, IS_ROOT, appCopy, assertLogged, eventually, isAlive, request, runCli, startServer, steadyLoad } from '../helpers';

test('kill -9 of the agent core: a new core adopts the apps; requests meanwhile are held, not failed', async (t) => {
  const s = await startServer(t, appCopy(t, 'basic'), ['--min-instances', '2', '--max-pool-size', '2', '--sticky-sessions']);
  const apps = await eventually(async () => { const p = await s.appPids(); return p.length === 2 ? p : null; }, 20_000, 'two processes');
  const first = await request(s.port, '/pid');
  const route = String(first.headers['set-cookie']).split(';')[0];
  const pidFile = path.join(s.instanceDir(), 'core.pid');
  const oldCore = Number(fs.readFileSync(pidFile, 'utf8'));

  process.kill(oldCore, 'SIGKILL');
  // Sent while no core runs: they wait in the listening socket's backlog.
  const during = await Promise.all(Array.from({ length: 5 }, () => request(s.port, '/pid')));
  for (const r of during) assert.equal(r.status, 200, r.body);

  const newCore = await eventually(() => {
    const p = Number(fs.readFileSync(pidFile, 'utf8'));
    return p !== oldCore && isAlive(p) ? p : null;
  }, 20_000, 'a new core');
  assert.ok(isAlive(s.child.pid as number), 'the watchdog lives on');
  assert.deepEqual(await s.appPids(), apps, 'the same app processes serve');
  for (const pid of apps) assert.ok(isAlive(pid));
  await assertLogged(() => s.output(), /agent core .* died \(signal SIGKILL\); restarting it/);
  await assertLogged(() => s.output(), /adopted 2 live app process\(es\)/);
  // A sticky client still reaches its process: ids survive adoption.
  assert.equal((await request(s.port, '/pid', { headers: { cookie: route } })).body, first.body);
  assert.ok(isAlive(newCore));

  // Adopted processes are still supervised: killed, they are replaced.
  process.kill(apps[0], 'SIGKILL');
  await eventually(async () => { const p = await s.appPids(); return p.length === 2 && !p.includes(apps[0]); }, 20_000, 'a replacement');
  // And stopped with the server.
  assert.equal(await s.stop(), 0);
  await eventually(() => apps.every((p) => !isAlive(p)), 10_000, 'the adopted apps to stop');
});

/**
 * Whether a new session gets a group of its own in the autogroup scheduler
 * here: not where the kernel lacks it, nor on machines (some sandboxes) where
 * every session stays in the default group and /proc/PID/autogroup reads empty.
 */
function newSessionsGetAGroup(): boolean {
  const r = spawnSync('setsid', ['cat', '/proc/self/autogroup'], { encoding: 'utf8' });
  return r.status === 0 && /^\/autogroup-\d+ nice/.test(r.stdout);
}

/** The nice value of process `pid`'s session group. */
function sessionNiceOf(pid: number): number {
  const g = sessionGroupOf(pid);
  assert.ok(g, `process ${pid} has a session group`);
  return g.nice;
}

/** The nice value of each thread of process `pid` (field 19 of /proc/PID/task/TID/stat): its main thread's, and the others'. */
function threadNices(pid: number): { main: number; others: number[] } {
  const niceOf = (tid: string): number => {
    const stat = fs.readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]);
  };
  const others = fs.readdirSync(`/proc/${pid}/task`).filter((tid) => tid !== String(pid));
  return { main: niceOf(String(pid)), others: others.map(niceOf) };
}

/** Whether this machine lets us lower a nice value: root, and, in a container, the CAP_SYS_NICE it may have been denied. */
function mayLowerNice(): boolean {
  return IS_ROOT && spawnSync(process.execPath, ['-e', 'require("os").setPriority(-5)']).status === 0;
}

test("the core's event loop thread and session weigh more than an app's on a contended CPU, a restarted core's too", { skip: !mayLowerNice() && 'lowering a nice value needs root with CAP_SYS_NICE' }, async (t) => {
  const sessions = newSessionsGetAGroup();
  if (!sessions) t.diagnostic('new sessions get no autogroup of their own here: session weights are not checked');
  const s = await startServer(t, appCopy(t, 'basic'), ['--min-instances', '2', '--max-pool-size', '2']);
  const apps = await eventually(async () => { const p = await s.appPids(); return p.length === 2 ? p : null; }, 20_000, 'two processes');
  const pidFile = path.join(s.instanceDir(), 'core.pid');
  const weighed = (core: number): void => {
    const { main, others } = threadNices(core);
    assert.equal(main, CORE_THREAD_NICE, "the core's event loop thread");
    assert.ok(others.length > 0, 'the core has other threads');
    assert.deepEqual(others.filter((n) => n !== 0), [], "the core's other threads keep the default");
    if (sessions) assert.equal(sessionNiceOf(core), CORE_SESSION_NICE);
  };
  const atDefault = (pid: number, what: string): void => {
    const { main, others } = threadNices(pid);
    assert.deepEqual([main, ...others].filter((n) => n !== 0), [], `${what}: every thread at the default weight`);
    if (sessions) assert.equal(sessionNiceOf(pid), 0, `${what}: its session at the default weight`);
  };
  const core = Number(fs.readFileSync(pidFile, 'utf8'));
  weighed(core);
  // Started by the weighed thread, the apps still begin at 0.
  for (const pid of apps) atDefault(pid, `app ${pid}`);
  if (sessions) {
    for (const pid of apps) assert.notEqual(sessionGroupOf(pid)?.group, sessionGroupOf(core)?.group, 'each app leads a session of its own');
  }
  assert.notEqual(sessionGroupOf(s.child.pid as number)?.nice, CORE_SESSION_NICE, "the watchdog's session is the caller's, left as it was");
  assert.equal(os.getPriority(s.child.pid as number), 0, "the watchdog's own thread is left as it was");

  process.kill(core, 'SIGKILL');
  const again = await eventually(() => {
    const p = Number(fs.readFileSync(pidFile, 'utf8'));
    return p !== core && isAlive(p) ? p : null;
  }, 20_000, 'a new core');
  weighed(again);
  for (const pid of apps) atDefault(pid, `adopted app ${pid}`);
  // An app the new core starts begins at 0 too.
  process.kill(apps[0], 'SIGKILL');
  const [fresh] = await eventually(async () => { const p = await s.appPids(); return p.length === 2 && !p.includes(apps[0]) ? p.filter((q) => q !== apps[1]) : null; }, 20_000, 'a replacement');
  atDefault(fresh, 'the replacement');
});

test('an app process that dies while no core runs: the new core adopts the live one and brings the group back to min_instances', async (t) => {
  const s = await startServer(t, appCopy(t, 'basic'), ['--min-instances', '2', '--max-pool-size', '2']);
  const apps = await eventually(async () => { const p = await s.appPids(); return p.length === 2 ? p : null; }, 20_000, 'two processes');
  const core = Number(fs.readFileSync(path.join(s.instanceDir(), 'core.pid'), 'utf8'));
  process.kill(core, 'SIGKILL');
  process.kill(apps[0], 'SIGKILL');
  await eventually(() => /adopted 1 live app process\(es\)/.test(s.output()), 20_000, 'a new core to adopt the live process');
  await eventually(async () => { const p = await s.appPids(); return p.length === 2 && p.includes(apps[1]) && !p.includes(apps[0]); }, 20_000, 'a second process again, with no request asking for it');
});

test('kill -9 of the core while an app process starts: the process is stopped, not left running where no core knows it', async (t) => {
  const s = await startServer(t, appCopy(t, 'never-listens'), ['--start-timeout', '120']);
  const records = path.join(s.instanceDir(), 'processes');
  const pid = await eventually(() => { const names = fs.readdirSync(records); return names.length === 1 ? Number(names[0]) : null; }, 20_000, 'a starting process, recorded');
  assert.equal(JSON.parse(fs.readFileSync(path.join(records, String(pid)), 'utf8')).starting, true);
  assert.ok(isAlive(pid));
  process.kill(Number(fs.readFileSync(path.join(s.instanceDir(), 'core.pid'), 'utf8')), 'SIGKILL');
  await eventually(() => !isAlive(pid), 20_000, 'the starting process to be stopped');
  await assertLogged(() => s.output(), new RegExp(`stopped app process ${pid} left behind by the agent core`));
});

test('kill -9 of the core while a process leaves: the new core sends it on its way, stops it at shutdown_timeout and never serves from it', async (t) => {
  const s = await startServer(t, appCopy(t, 'stubborn'), ['--startup-file', 'server.js', '--min-instances', '1', '--shutdown-timeout', '3']);
  const [old] = await eventually(async () => { const p = await s.appPids(); return p.length === 1 ? p : null; }, 20_000, 'a process');
  const core = Number(fs.readFileSync(path.join(s.instanceDir(), 'core.pid'), 'utf8'));
  const restart = runCli(BIN.config, ['restart-app', s.appDir, '--instance-registry-dir', s.registry]);
  // It ignores being told to leave, so it is still leaving beside its replacement when the core dies.
  const fresh = await eventually(async () => {
    const procs = (await s.status()).groups[0].processes;
    const leaving = procs.some((p) => p.pid === old && p.state !== 'alive');
    return leaving ? procs.find((p) => p.pid !== old && p.state === 'alive')?.pid ?? null : null;
  }, 20_000, 'the replacement beside the leaving process');
  process.kill(core, 'SIGKILL');
  await eventually(() => !isAlive(old), 20_000, 'the leaving process to be stopped');
  await assertLogged(() => s.output(), new RegExp(`adopted process ${old} of .*, which was leaving`));
  assert.deepEqual(await s.appPids(), [fresh], 'the replacement alone, and no process more');
  for (let i = 0; i < 5; i++) assert.equal((await request(s.port, '/')).body.split(' ')[0], String(fresh));
  await restart;
});

test('kill -9 of the core with an app_start_command app: the app is stopped and spawned anew', async (t) => {
  const s = await startServer(t, appCopy(t, 'generic'), ['--app-start-command', `${process.execPath} server.js`]);
  const [pid] = await eventually(async () => { const p = await s.appPids(); return p.length === 1 ? p : null; }, 20_000, 'a process');
  const oldCore = Number(fs.readFileSync(path.join(s.instanceDir(), 'core.pid'), 'utf8'));
  process.kill(oldCore, 'SIGKILL');
  assert.equal((await request(s.port, '/')).status, 200);
  await eventually(() => !isAlive(pid), 10_000, 'the old app to be stopped');
});

test('direct mode, kill -9 of the core: the processes serve on, report to the new core, and drain when it restarts them', async (t) => {
  const s = await startServer(t, appCopy(t, 'basic'), ['--direct-mode', '--min-instances', '2', '--max-pool-size', '2']);
  const apps = await eventually(async () => { const p = await s.appPids(); return p.length === 2 ? p : null; }, 20_000, 'two processes');
  const pidFile = path.join(s.instanceDir(), 'core.pid');
  const oldCore = Number(fs.readFileSync(pidFile, 'utf8'));
  const load = steadyLoad(s.port);
  await eventually(() => load.started() >= 20, 20_000, 'load');

  process.kill(oldCore, 'SIGKILL');
  await eventually(() => /adopted 2 live app process\(es\)/.test(s.output()), 20_000, 'a new core to adopt both processes');
  // Their counters reach the new core over the channel they reconnected on.
  const processed = async (): Promise<number> => (await s.status()).groups[0].processes.reduce((a, p) => a + p.processed, 0);
  const before = await eventually(processed, 10_000, 'reported counters');
  await eventually(async () => (await processed()) > before, 10_000, 'the counters to move with the load');

  // Asked to leave over the channel, adopted processes finish what they serve.
  const rolling = await runCli(BIN.config, ['restart-app', s.appDir, '--rolling', '--instance-registry-dir', s.registry]);
  assert.equal(rolling.code, 0, rolling.stderr);
  await eventually(() => apps.every((p) => !isAlive(p)), 20_000, 'the adopted processes to leave');
  const { count, failures } = await load.stop();
  assert.deepEqual(failures, [], `${failures.length} of ${count} failed`);
});
