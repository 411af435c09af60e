// SIGUSR1, which log rotation scripts send, reopens logs where there are logs
// and never opens Node's inspector (127.0.0.1:9229) in a process of ours.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { BIN, appCopy, eventually, isAlive, request, startServer, stopAfter, tmpDir } from '../helpers';

const INSPECTOR_PORT = 9229;

/** Whether anything listens on the port, on any address (IPv4 or IPv6), in this network namespace. */
function listeningOn(port: number): boolean {
  const hex = port.toString(16).toUpperCase().padStart(4, '0');
  for (const f of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text = '';
    try { text = fs.readFileSync(f, 'utf8'); } catch { continue; }
    for (const line of text.split('\n').slice(1)) {
      const cols = line.trim().split(/\s+/);
      if (cols.length > 3 && cols[1].endsWith(`:${hex}`) && cols[3] === '0A') return true;
    }
  }
  return false;
}

const taken = listeningOn(INSPECTOR_PORT);
const opts = taken ? { skip: `port ${INSPECTOR_PORT} is already taken: a debugger opened by the test could not be told apart` } : {};

test('kill -USR1 to the watchdog, the core and an app process reopens the logs and opens no debugger', opts, async (t) => {
  const log = path.join(tmpDir(t, 'ptest-usr1-'), 'server.log');
  const s = await startServer(t, appCopy(t, 'basic'), ['--min-instances', '1', '--log-file', log]);
  const [app] = await eventually(async () => { const p = await s.appPids(); return p.length === 1 ? p : null; }, 20_000, 'an app process');
  const watchdog = Number(fs.readFileSync(path.join(s.instanceDir(), 'watchdog.pid'), 'utf8'));
  const core = Number(fs.readFileSync(path.join(s.instanceDir(), 'core.pid'), 'utf8'));

  // Rotated away: each process that reopens by name creates the file anew.
  fs.renameSync(log, `${log}.1`);
  process.kill(watchdog, 'SIGUSR1');
  await eventually(() => fs.existsSync(log), 20_000, 'the watchdog to reopen its log');
  process.kill(core, 'SIGUSR1');
  await eventually(() => /\/core \]: reopened the log file/.test(fs.readFileSync(log, 'utf8')), 20_000, 'the core to reopen its log');
  // The app (which installs no handler of its own) answers after it got the signal.
  process.kill(app, 'SIGUSR1');
  await eventually(() => !/^(SigPnd|ShdPnd):\s*0*[1-9a-f]/m.test(fs.readFileSync(`/proc/${app}/status`, 'utf8')), 20_000, 'the signal to be delivered');
  assert.equal((await request(s.port, '/pid')).body, String(app));

  for (const pid of [watchdog, core, app]) assert.ok(isAlive(pid), `process ${pid} lives on`);
  assert.equal(listeningOn(INSPECTOR_PORT), false, `something listens on ${INSPECTOR_PORT}`);
  const all = fs.readFileSync(`${log}.1`, 'utf8') + fs.readFileSync(log, 'utf8') + s.output();
  assert.doesNotMatch(all, /Debugger listening/);
  assert.equal((await request(s.port, '/')).status, 200, 'the server still serves');
});

test('kill -USR1 to a tool opens no debugger either', opts, async (t) => {
  const s = await startServer(t, appCopy(t, 'basic'), ['--min-instances', '1']);
  const child = spawn(process.execPath, [BIN.status, '--watch', '--instance-registry-dir', s.registry], { stdio: ['ignore', 'pipe', 'pipe'] });
  stopAfter(t, () => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL'); });
  let out = '';
  child.stdout.on('data', (d) => { out += d; });
  child.stderr.on('data', (d) => { out += d; });
  await eventually(() => out.includes('Refreshing every second'), 20_000, 'the first screen');
  child.kill('SIGUSR1');
  // A screen drawn after the signal: it was handled (or ignored) by then.
  const mark = out.length;
  await eventually(() => out.slice(mark).includes('Refreshing every second'), 20_000, 'another screen');
  assert.equal(listeningOn(INSPECTOR_PORT), false, `something listens on ${INSPECTOR_PORT}`);
  assert.doesNotMatch(out, /Debugger listening/);
  child.kill('SIGINT');
  await eventually(() => child.exitCode !== null, 20_000, 'the tool to quit');
  assert.equal(child.exitCode, 0);
});
