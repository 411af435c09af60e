// The operators' tools, run as binaries against real agents, apps and web servers.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { BIN, appCopy, checkoutSharedWithOthers, eventually, request, runCli, startServer, stopAfter, tmpDir } from '../helpers';
import { APACHE, NGINX, appPidsOf, sharedDir, startAgent, startApache, startNginx, webApp } from './web-servers';

interface Row { pid: number; ppid: number; vmsize_kb: number; private_dirty_kb: number | null; name: string }
interface MemDoc { sections: { title: string; processes: Row[]; count: number; total_private_dirty_kb: number }[] }

function smapsPrivateDirty(pid: number): number {
  let kb = 0;
  for (const m of fs.readFileSync(`/proc/${pid}/smaps`, 'utf8').matchAll(/^Private_Dirty:\s+(\d+) kB/gm)) kb += Number(m[1]);
  return kb;
}

test('passenger-memory-stats: nginx, agent and app processes with their private dirty memory, also while the agent is stopped', { skip: NGINX ? false : 'nginx is not installed' }, async (t) => {
  const dir = sharedDir(t, 'ptest-mem-');
  const app = webApp(t, dir);
  const agent = await startAgent(t, dir, dir);
  const web = await startNginx(t, dir, agent.socket, [app]);
  assert.equal((await request(web.port, '/')).status, 200);
  const apps = await eventually(async () => { const p = await appPidsOf(agent.registry); return p.length === 2 ? p : null; }, 20_000, 'two processes');
  const inst = agent.instanceDir();
  const watchdog = agent.child.pid as number;
  const core = Number(fs.readFileSync(path.join(inst, 'core.pid'), 'utf8'));
  const args = ['--json', '--instance-registry-dir', agent.registry];

  const doc = await eventually(async () => {
    const r = await runCli(BIN.memoryStats, args);
    assert.equal(r.code, 0, r.stderr);
    const d = JSON.parse(r.stdout) as MemDoc;
    const nginx = d.sections.find((s) => s.title === 'Nginx processes')!;
    return nginx.processes.some((p) => p.pid === web.masterPid) && web.workerPids().every((w) => nginx.processes.some((p) => p.pid === w)) ? d : null;
  }, 20_000, 'nginx master and workers in the report');
  const byTitle = Object.fromEntries(doc.sections.map((s) => [s.title, s]));
  assert.deepEqual(Object.keys(byTitle), ['Apache processes', 'Nginx processes', 'Passenger processes', 'Application processes']);
  assert.deepEqual(byTitle['Passenger processes'].processes.map((p) => p.pid).sort((a, b) => a - b), [watchdog, core].sort((a, b) => a - b));
  assert.deepEqual(byTitle['Application processes'].processes.map((p) => p.pid), apps);
  for (const s of doc.sections) {
    assert.equal(s.count, s.processes.length);
    assert.equal(s.total_private_dirty_kb, s.processes.reduce((a, p) => a + (p.private_dirty_kb ?? 0), 0));
  }
  // Each Private figure is the sum of Private_Dirty over /proc/PID/smaps (idle processes: compared exactly).
  for (const pid of [...web.workerPids(), ...apps]) {
    await eventually(async () => {
      const r = JSON.parse((await runCli(BIN.memoryStats, args)).stdout) as MemDoc;
      const row = r.sections.flatMap((s) => s.processes).find((p) => p.pid === pid)!;
      return row.private_dirty_kb === smapsPrivateDirty(pid);
    }, 10_000, `Private of ${pid} to equal its smaps sum`);
  }

  // The text layout, and the sections it leaves out on request.
  const text = await runCli(BIN.memoryStats, ['--no-apache', '--instance-registry-dir', agent.registry]);
  assert.equal(text.code, 0);
  assert.doesNotMatch(text.stdout, /Apache processes/);
  assert.match(text.stdout, /^-+ Nginx processes -+$/m);
  assert.match(text.stdout, /^PID +PPID +VMSize +Private +Name$/m);
  assert.match(text.stdout, /^### Processes: 2$/m);
  assert.match(text.stdout, /^### Total private dirty RSS: \d+\.\d MB$/m);

  // The agent stopped (kill -STOP): the report still comes, straight from /proc and the instance dir.
  process.kill(core, 'SIGSTOP');
  stopAfter(t, () => { try { process.kill(core, 'SIGCONT'); } catch { /* gone */ } });
  const stopped = await runCli(BIN.memoryStats, args, { timeoutMs: 20_000 });
  process.kill(core, 'SIGCONT');
  assert.equal(stopped.code, 0);
  assert.deepEqual((JSON.parse(stopped.stdout) as MemDoc).sections[3].processes.map((p) => p.pid), apps);

  // Not root: a warning, and what could be read.
  if (!checkoutSharedWithOthers()) {
    t.diagnostic('skipped the run as nobody: this checkout is not readable by other users');
    return;
  }
  const nobody = spawnSync('runuser', ['-u', 'nobody', '--', process.execPath, BIN.memoryStats, '--instance-registry-dir', agent.registry], { encoding: 'utf8' });
  assert.equal(nobody.status, 0, nobody.stderr);
  assert.match(nobody.stderr, /not running as root/);
  assert.match(nobody.stdout, /Nginx processes/);
});

test('passenger-config: list-instances, about, reopen-logs, detach-process errors, usage and exit codes', async (t) => {
  const log = path.join(tmpDir(t, 'ptest-log-'), 'server.log');
  const s = await startServer(t, appCopy(t, 'basic'), ['--log-file', log]);
  const reg = ['--instance-registry-dir', s.registry];
  const list = await runCli(BIN.config, ['list-instances', '--json', ...reg]);
  assert.equal(list.code, 0);
  const rows = JSON.parse(list.stdout);
  assert.equal(rows.length, 1);
  assert.equal(rows[0].pid, s.child.pid);
  assert.equal(rows[0].app_root, s.appDir);
  assert.match((await runCli(BIN.config, ['about'])).stdout, /^Version: +\d+\.\d+\.\d+$/m);

  fs.renameSync(log, `${log}.1`);
  const reopen = await runCli(BIN.config, ['reopen-logs', ...reg]);
  assert.equal(reopen.code, 0, reopen.stderr);
  await request(s.port, '/');
  await eventually(() => fs.existsSync(log), 10_000, 'a new log file');
  await runCli(BIN.config, ['detach-process', '999999', ...reg]).then((r) => {
    assert.equal(r.code, 1);
    assert.match(r.stderr, /no app process with PID 999999/);
  });
  await eventually(() => fs.readFileSync(log, 'utf8').length > 0, 10_000, 'lines in the reopened log');

  assert.equal((await runCli(BIN.config, ['detach-process', 'abc', ...reg])).code, 2);
  const api = await runCli(BIN.config, ['api-call', 'get', '/pool.json', ...reg]);
  assert.equal(api.code, 0, api.stderr);
  const doc = JSON.parse(api.stdout) as { schema: number; instance: { core_pid: number }; groups: { app_root: string }[] };
  assert.equal(doc.schema, 1);
  assert.equal(doc.groups[0].app_root, s.appDir);
  const missing = await runCli(BIN.config, ['api-call', 'GET', '/nope', ...reg]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /no admin endpoint GET \/nope/);
  assert.equal((await runCli(BIN.config, ['api-call', 'GET', ...reg])).code, 2);
  const unknown = await runCli(BIN.config, ['frobnicate']);
  assert.equal(unknown.code, 2);
  assert.match(unknown.stderr, /unknown command "frobnicate"/);
  for (const cmd of ['restart-app', 'detach-process', 'list-instances', 'reopen-logs', 'nginx-snippet', 'apache-snippet', 'about', 'api-call']) {
    const h = await runCli(BIN.config, [cmd, '--help']);
    assert.equal(h.code, 0, cmd);
    assert.match(h.stdout, /^Usage: passenger-config /, cmd);
    assert.match(h.stdout, /Example/, cmd);
  }
  for (const bin of [BIN.passenger, BIN.status, BIN.memoryStats, BIN.config]) assert.equal((await runCli(bin, ['--help'])).code, 0, bin);
});

test('passenger-status: --force-colors, and --watch redraws until Ctrl-C within 80 columns', async (t) => {
  // An app root too long for one line: the live view shortens it in the middle.
  const appDir = path.join(tmpDir(t, 'ptest-watch-'), 'srv', 'a-rather-long-directory-name-for-the-company-website', 'current');
  fs.cpSync(appCopy(t, 'basic'), appDir, { recursive: true });
  const s = await startServer(t, appDir);
  const colored = await runCli(BIN.status, ['--force-colors', '--instance-registry-dir', s.registry]);
  assert.match(colored.stdout, /\x1b\[33m----------- General information/);
  const plain = await runCli(BIN.status, ['--instance-registry-dir', s.registry]);
  assert.doesNotMatch(plain.stdout, /\x1b\[/, 'no colour when not a terminal');

  const w = spawn(process.execPath, [BIN.status, '--watch', '--instance-registry-dir', s.registry], { stdio: ['ignore', 'pipe', 'pipe'] });
  stopAfter(t, () => { if (w.exitCode === null) w.kill('SIGKILL'); });
  let out = '';
  w.stdout.on('data', (d) => { out += d; });
  await eventually(() => (out.match(/Refreshing every second/g) ?? []).length >= 2, 15_000, 'two refreshes');
  const code = new Promise((r) => w.on('exit', r));
  w.kill('SIGINT');
  assert.equal(await code, 0);
  for (const line of out.split('\n')) assert.ok(line.replace(/\x1b\[[0-9;]*m/g, '').length <= 80, `over 80 columns: ${line}`);
  assert.match(out, /^  App root: \/tmp\/.*….*\/current$/m);
  // Without --watch the paths print whole, for scripts and copy-paste.
  assert.match(plain.stdout, new RegExp(`^  App root: ${appDir}$`, 'm'));
});

test('the tools find an agent under /run/passenger-ts, as under systemd\'s PrivateTmp, without being told', { skip: process.getuid?.() === 0 ? false : 'needs root' }, async (t) => {
  const dir = sharedDir(t, 'ptest-svc-');
  const socket = path.join(dir, 'agent.sock');
  const child = spawn(process.execPath, [BIN.passenger, 'agent', '--socket', socket, '--app-root-allow', dir], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, PASSENGER_INSTANCE_REGISTRY_DIR: '' } });
  let out = '';
  child.stdout.on('data', (d) => { out += d; });
  stopAfter(t, async () => { child.kill('SIGTERM'); await eventually(() => child.exitCode !== null || child.signalCode !== null, 20_000, 'the agent to stop').catch(() => child.kill('SIGKILL')); });
  await eventually(() => out.includes('serving on'), 20_000, 'the agent');
  const name = fs.readdirSync('/run/passenger-ts').map((n) => path.join('/run/passenger-ts', n))
    .find((d) => { try { return JSON.parse(fs.readFileSync(path.join(d, 'properties.json'), 'utf8')).watchdog_pid === child.pid; } catch { return false; } });
  assert.ok(name, 'the instance is under /run/passenger-ts');
  const privateTmp = tmpDir(t, 'ptest-privatetmp-');
  const r = await runCli(BIN.status, [path.basename(name).replace(/^passenger-ts\./, '')], { env: { TMPDIR: privateTmp, PASSENGER_INSTANCE_REGISTRY_DIR: '' } });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /unix:/);
});

test('passenger-memory-stats: Apache processes, recorded and by program', { skip: APACHE ? false : 'apache2 is not installed' }, async (t) => {
  const dir = sharedDir(t, 'ptest-mem-apache-');
  const app = webApp(t, dir);
  const agent = await startAgent(t, dir, dir);
  const web = await startApache(t, dir, agent.socket, [app]);
  assert.equal((await request(web.port, '/')).status, 200);
  const doc = await eventually(async () => {
    const r = await runCli(BIN.memoryStats, ['--json', '--no-nginx', '--instance-registry-dir', agent.registry]);
    assert.equal(r.code, 0, r.stderr);
    const d = JSON.parse(r.stdout) as MemDoc;
    const apache = d.sections.find((s) => s.title === 'Apache processes')!;
    return apache.processes.some((p) => p.pid === web.masterPid) && web.workerPids().every((w) => apache.processes.some((p) => p.pid === w)) ? d : null;
  }, 20_000, 'Apache master and workers in the report');
  assert.deepEqual(doc.sections.map((s) => s.title), ['Apache processes', 'Passenger processes', 'Application processes']);
  for (const pid of web.workerPids()) {
    await eventually(async () => {
      const r = JSON.parse((await runCli(BIN.memoryStats, ['--json', '--instance-registry-dir', agent.registry])).stdout) as MemDoc;
      return r.sections.flatMap((s) => s.processes).find((p) => p.pid === pid)?.private_dirty_kb === smapsPrivateDirty(pid);
    }, 10_000, `Private of ${pid} to equal its smaps sum`);
  }
  await eventually(() => {
    const recorded = JSON.parse(fs.readFileSync(path.join(agent.instanceDir(), 'frontends.json'), 'utf8')) as { pid: number; role: string }[];
    return recorded.some((r) => r.pid === web.masterPid && r.role === 'master');
  }, 10_000, 'the agent to record Apache\'s master');
});
