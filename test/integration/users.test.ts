// Apps never run as root: as root, the agent runs each app as its user (the
// owner of its startup file, or its `user`/`group`; root's files mean nobody),
// with that user's groups and environment, and an app cannot reach another
// app's socket or the instance directory's records. Also `passenger start
// --user`, and user switching across a core crash and every kind of restart.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { test } from 'node:test';
import {
  BIN, FIXTURES, ROOT_ONLY, appCopy, assertLogged, checkoutSharedWithOthers, environOf, eventually, giveTo, idsOf, isAlive, request, runCli, startServer, testUser, tmpDir,
} from '../helpers';
import { startAgent, type Agent } from '../e2e/web-servers';

const NOBODY = 65534;

/** A request to the agent's socket for the app at `appRoot`, as the web server's snippet sends it. */
function agentRequest(agent: Agent, appRoot: string, urlPath: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath: agent.socket, path: urlPath, headers: { 'x-passenger-document-root': path.join(appRoot, 'public') } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => { body += c; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.setTimeout(30_000, () => req.destroy(new Error(`timeout on ${urlPath}`)));
    req.on('error', reject);
    req.end();
  });
}

/** A copy of the basic app with a public/ dir, under `dir` (traversable by all). */
function appUnder(dir: string, name: string): string {
  const app = path.join(dir, name);
  fs.cpSync(path.join(FIXTURES, 'basic'), app, { recursive: true });
  fs.mkdirSync(path.join(app, 'public'));
  fs.mkdirSync(path.join(app, 'tmp'));
  return app;
}

/** Runs a small node script as `uid:gid` (with those groups) and returns what it printed. */
function runAs(uid: number, gid: number, script: string): string {
  const r = spawnSync('setpriv', ['--reuid', String(uid), '--regid', String(gid), '--clear-groups', '--', process.execPath, '-e', script], { encoding: 'utf8', timeout: 20_000 });
  if (r.status !== 0) throw new Error(`script failed: ${r.stderr}`);
  return r.stdout.trim();
}

test('an app owned by a user runs as that user: uid, gid, its supplementary groups, its environment, no capabilities', ROOT_ONLY, async (t) => {
  const u = testUser(t);
  const app = appCopy(t, 'basic');
  giveTo(app, u.uid, u.gid);
  const s = await startServer(t, app);
  const pid = Number((await request(s.port, '/pid')).body);
  const ids = idsOf(pid);
  assert.deepEqual(ids.uid, [u.uid, u.uid, u.uid, u.uid], 'real, effective, saved and fs uid');
  assert.deepEqual(ids.gid, [u.gid, u.gid, u.gid, u.gid]);
  assert.deepEqual(ids.groups, [u.gid, u.groupGid].sort((a, b) => a - b), 'its own group and its supplementary one');
  assert.equal(ids.capEff, '0000000000000000');
  const env = environOf(pid);
  assert.equal(env.USER, u.name);
  assert.equal(env.LOGNAME, u.name);
  assert.equal(env.HOME, `/nonexistent-${u.name}`);
  assert.equal(env.SHELL, '/bin/sh');
  // Its socket lives in a directory of its own, which only its user may enter.
  const apps = path.join(s.instanceDir(), 'apps');
  assert.equal(fs.statSync(apps).mode & 0o777, 0o711);
  const [own] = fs.readdirSync(apps);
  const st = fs.statSync(path.join(apps, own));
  assert.deepEqual([st.uid, st.mode & 0o777], [u.uid, 0o700]);
  // The full record replaces the starting one before the process takes its
  // first request (a core killed after that adopts it).
  const rec = JSON.parse(fs.readFileSync(path.join(s.instanceDir(), 'processes', String(pid)), 'utf8'));
  assert.equal(rec.starting, undefined, 'the record is the full one');
  assert.deepEqual([rec.uid, rec.gid], [u.uid, u.gid], 'the record keeps who it runs as');
});

test('an app owned by root runs as nobody; --no-user-switching runs every app as the default user', ROOT_ONLY, async (t) => {
  const s = await startServer(t, appCopy(t, 'basic'));
  const pid = Number((await request(s.port, '/pid')).body);
  const ids = idsOf(pid);
  assert.deepEqual(ids.uid, [NOBODY, NOBODY, NOBODY, NOBODY]);
  assert.deepEqual(ids.gid, [NOBODY, NOBODY, NOBODY, NOBODY]);
  assert.deepEqual(ids.groups, [NOBODY]);

  const u = testUser(t);
  const app = appCopy(t, 'basic');
  giveTo(app, u.uid, u.gid);
  const off = await startServer(t, app, ['--no-user-switching', '--default-user', 'daemon']);
  const ids2 = idsOf(Number((await request(off.port, '/pid')).body));
  assert.deepEqual([ids2.uid[0], ids2.gid[0], ids2.groups], [1, 1, [1]], 'daemon, not the owner');
});

test('the default user must exist and not be root: exit 2 before anything starts', ROOT_ONLY, async (t) => {
  const reg = tmpDir(t, 'ptest-reg-');
  for (const [flags, message] of [
    [['--default-user', 'no-such-user-pts'], /the default user "no-such-user-pts" does not exist/],
    [['--default-user', 'root'], /the default user must not be root/],
    [['--user', 'no-such-user-pts'], /--user no-such-user-pts: no such user/],
  ] as const) {
    const r = await runCli(BIN.passenger, ['start', appCopy(t, 'basic'), '--port', '1', '--instance-registry-dir', reg, ...flags]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, message);
  }
});

test('behind the agent: user and group keys, root-owned apps as nobody, a missing user is a clear error with no process, and no app reaches another\'s socket or the records', ROOT_ONLY, async (t) => {
  const u = testUser(t);
  const dir = tmpDir(t, 'ptest-users-agent-');
  const mine = appUnder(dir, 'mine');
  giveTo(mine, u.uid, u.gid);
  const keyed = appUnder(dir, 'keyed');
  fs.writeFileSync(path.join(keyed, 'Passengerfile.json'), JSON.stringify({ user: 'daemon', group: 'www-data' }));
  const rooted = appUnder(dir, 'rooted');
  const missing = appUnder(dir, 'missing');
  fs.writeFileSync(path.join(missing, 'Passengerfile.json'), JSON.stringify({ user: 'no-such-user-pts' }));
  const agent = await startAgent(t, dir, dir, ['--min-instances', '1', '--max-pool-size', '6', '--environment', 'development']);

  const pidOf = async (app: string): Promise<number> => {
    const r = await agentRequest(agent, app, '/pid');
    assert.equal(r.status, 200, r.body);
    return Number(r.body);
  };
  const minePid = await pidOf(mine);
  assert.deepEqual(idsOf(minePid).uid, [u.uid, u.uid, u.uid, u.uid]);
  const keyedIds = idsOf(await pidOf(keyed));
  assert.deepEqual([keyedIds.uid[0], keyedIds.gid[0], keyedIds.groups], [1, 33, [33]], 'daemon with www-data (and the groups initgroups gives it)');
  const rootedPid = await pidOf(rooted);
  assert.deepEqual([idsOf(rootedPid).uid[0], idsOf(rootedPid).gid[0]], [NOBODY, NOBODY]);

  const bad = await agentRequest(agent, missing, '/');
  assert.equal(bad.status, 500);
  assert.match(bad.body, /the user &#34;no-such-user-pts&#34; the app is to run as .* does not exist/);
  assert.match(bad.body, /choosing the user the app runs as/);
  await eventually(() => /no-such-user-pts.*does not exist/.test(agent.output()), 10_000, 'the log to say why');
  const status = JSON.parse((await runCli(BIN.status, ['--show=json', '--instance-registry-dir', agent.registry])).stdout);
  const group = status.groups.find((g: { app_root: string }) => g.app_root === missing);
  assert.equal(group.processes.length, 0, 'nothing was spawned');
  assert.match(group.last_spawn_error, /does not exist/);

  // From the account of one app: the others' sockets, the socket list and the records are out of reach.
  const inst = agent.instanceDir();
  const rec = (pid: number): { endpoint: { socketPath: string } } => JSON.parse(fs.readFileSync(path.join(inst, 'processes', String(pid)), 'utf8'));
  const probe = `
    const fs = require('fs'), net = require('net');
    const tryIt = (f) => { try { f(); return 'ok'; } catch (e) { return e.code; } };
    const connect = (p) => new Promise((r) => { const s = net.connect(p); s.on('connect', () => { s.destroy(); r('ok'); }); s.on('error', (e) => r(e.code)); });
    const http = require('http');
    const admin = (method, p) => new Promise((r) => {
      const req = http.request({ socketPath: ${JSON.stringify(path.join(inst, 'admin.sock'))}, method, path: p }, (res) => {
        let b = ''; res.on('data', (d) => { b += d; }); res.on('end', () => r({ status: res.statusCode, body: JSON.parse(b) }));
      });
      req.on('error', (e) => r({ status: e.code })); req.end();
    });
    (async () => {
      const pool = await admin('GET', '/pool.json');
      const other = await admin('POST', '/restart-app?root=' + encodeURIComponent(${JSON.stringify(rooted)}));
      const detach = await admin('POST', '/detach-process?pid=${rootedPid}');
      const logs = await admin('POST', '/reopen-logs');
      console.log(JSON.stringify({
        listApps: tryIt(() => fs.readdirSync(${JSON.stringify(path.join(inst, 'apps'))})),
        listRecords: tryIt(() => fs.readdirSync(${JSON.stringify(path.join(inst, 'processes'))})),
        writeRecord: tryIt(() => fs.writeFileSync(${JSON.stringify(path.join(inst, 'processes', '1'))}, '{}')),
        otherSocket: await connect(${JSON.stringify(rec(rootedPid).endpoint.socketPath)}),
        otherDir: tryIt(() => fs.readdirSync(${JSON.stringify(path.dirname(rec(rootedPid).endpoint.socketPath))})),
        ownSocket: await connect(${JSON.stringify(rec(minePid).endpoint.socketPath)}),
        channel: await connect(${JSON.stringify(path.join(inst, 'channel.sock'))}),
        poolGroups: pool.body.groups.map((g) => g.app_root),
        restartOther: [other.status, other.body.code],
        detachOther: [detach.status, detach.body.code],
        reopenLogs: [logs.status, logs.body.code],
      }));
    })();`;
  assert.deepEqual(JSON.parse(runAs(u.uid, u.gid, probe)), {
    listApps: 'EACCES', listRecords: 'EACCES', writeRecord: 'EACCES', otherSocket: 'EACCES', otherDir: 'EACCES',
    ownSocket: 'ok', channel: 'ok',
    // The admin API answers another user with that user's apps alone.
    poolGroups: [mine], restartOther: [403, 'E_ADMIN_DENIED'], detachOther: [403, 'E_ADMIN_DENIED'], reopenLogs: [403, 'E_ADMIN_DENIED'],
  });
  assert.ok(idsOf(rootedPid).uid.length > 0, 'the other app was not detached');
  const own = JSON.parse(runAs(u.uid, u.gid, `
    const http = require('http');
    const req = http.request({ socketPath: ${JSON.stringify(path.join(inst, 'admin.sock'))}, method: 'POST', path: '/restart-app?root=' + encodeURIComponent(${JSON.stringify(mine)}) }, (res) => {
      let b = ''; res.on('data', (d) => { b += d; }); res.on('end', () => console.log(JSON.stringify({ status: res.statusCode, body: JSON.parse(b) })));
    });
    req.end();`));
  assert.equal(own.status, 200, JSON.stringify(own.body));
  assert.equal(own.body.restarted, mine);
  // passenger-status as that user shows their own app only.
  const asUser = spawnSync('setpriv', ['--reuid', String(u.uid), '--regid', String(u.gid), '--clear-groups', '--', process.execPath, BIN.status, '--show=json', '--instance-registry-dir', agent.registry], { encoding: 'utf8', timeout: 20_000 });
  if (asUser.status === 0) assert.deepEqual(JSON.parse(asUser.stdout).groups.map((g: { app_root: string }) => g.app_root), [mine]);
  else t.diagnostic(`passenger-status could not run as the test user here (the checkout is not readable by it): ${asUser.stderr.split('\n')[0]}`);
});

test('passenger start --user: the watchdog, the core and the app run as that user, and it stops cleanly',
  checkoutSharedWithOthers() ? ROOT_ONLY : { skip: 'the server itself runs as the user, who cannot read this checkout' }, async (t) => {
  const u = testUser(t);
  const app = appCopy(t, 'basic');
  const s = await startServer(t, app, ['--user', u.name], { registryOwner: { uid: u.uid, gid: u.gid } });
  const pid = Number((await request(s.port, '/pid')).body);
  const inst = s.instanceDir();
  const core = Number(fs.readFileSync(path.join(inst, 'core.pid'), 'utf8'));
  for (const p of [s.child.pid as number, core, pid]) {
    const ids = idsOf(p);
    assert.deepEqual(ids.uid, [u.uid, u.uid, u.uid, u.uid], `pid ${p}`);
    assert.deepEqual(ids.gid, [u.gid, u.gid, u.gid, u.gid], `pid ${p}`);
    assert.deepEqual(ids.groups, [u.gid, u.groupGid].sort((a, b) => a - b), `pid ${p}`);
  }
  assert.equal(fs.statSync(inst).uid, u.uid, 'the instance directory is the server user\'s');
  await assertLogged(() => s.output(), new RegExp(`running as user ${u.name}`));
  // Root's tools trust only root's registry entries: this one is the user's, named as ignored.
  const st = await runCli(BIN.status, ['--instance-registry-dir', s.registry]);
  assert.equal(st.code, 1);
  assert.match(st.stderr, new RegExp(`ignored ${inst}: it belongs to uid ${u.uid}`));
  assert.equal(await s.stop(), 0);
  assert.equal(fs.existsSync(inst), false, 'the instance directory is removed');
  assert.equal(isAlive(pid), false);
});

test('across a core kill -9, restart-app (plain and rolling) and restart.txt, apps keep their user and groups', ROOT_ONLY, async (t) => {
  const u = testUser(t);
  const app = appCopy(t, 'basic');
  fs.mkdirSync(path.join(app, 'tmp'));
  giveTo(app, u.uid, u.gid);
  const s = await startServer(t, app, ['--min-instances', '2', '--max-pool-size', '2', '--stat-throttle-rate', '1']);
  const asUser = (pid: number): boolean => {
    const ids = idsOf(pid);
    return ids.uid.every((x) => x === u.uid) && ids.gid.every((x) => x === u.gid) && ids.groups.includes(u.groupGid);
  };
  const two = async (not: number[] = []): Promise<number[]> => eventually(async () => {
    const p = await s.appPids();
    return p.length === 2 && p.every((x) => !not.includes(x)) ? p : null;
  }, 30_000, 'two new processes');
  const first = await two();
  assert.ok(first.every(asUser));

  const corePid = Number(fs.readFileSync(path.join(s.instanceDir(), 'core.pid'), 'utf8'));
  process.kill(corePid, 'SIGKILL');
  await eventually(() => /adopted 2 live app process\(es\)/.test(s.output()), 20_000, 'the new core to adopt');
  assert.deepEqual(await s.appPids(), first, 'the same processes');
  assert.ok(first.every(asUser), 'adopted processes keep their user');
  assert.equal((await request(s.port, '/')).status, 200);

  const restarted = await runCli(BIN.config, ['restart-app', app, '--instance-registry-dir', s.registry]);
  assert.equal(restarted.code, 0, restarted.stderr);
  const second = await two(first);
  assert.ok(second.every(asUser), 'restart-app');

  const rolling = await runCli(BIN.config, ['restart-app', app, '--rolling', '--instance-registry-dir', s.registry]);
  assert.equal(rolling.code, 0, rolling.stderr);
  const third = await two(second);
  assert.ok(third.every(asUser), 'restart-app --rolling');

  fs.writeFileSync(path.join(app, 'tmp', 'restart.txt'), String(Date.now()));
  const fourth = await two(third);
  assert.ok(fourth.every(asUser), 'restart.txt');
  assert.equal((await request(s.port, '/')).status, 200);
});

test('behind the agent, an app its user cannot reach (under a 0700 directory, as /root is) fails with the directory named, not "cannot find module"', ROOT_ONLY, async (t) => {
  const dir = tmpDir(t, 'ptest-users-closed-');
  const closed = path.join(dir, 'closed');
  fs.mkdirSync(closed, { mode: 0o700 });
  const app = path.join(closed, 'app');
  fs.cpSync(path.join(FIXTURES, 'basic'), app, { recursive: true });
  fs.mkdirSync(path.join(app, 'public'));
  const agent = await startAgent(t, dir, dir, ['--min-instances', '1', '--environment', 'development']);
  const r = await agentRequest(agent, app, '/');
  assert.equal(r.status, 500);
  assert.match(r.body, new RegExp(`nobody cannot start it: ${closed} \\(mode 700, owner uid 0\\) cannot be passed through`));
  assert.match(r.body, /chmod o\+x/);
  const doc = JSON.parse((await runCli(BIN.status, ['--show=json', '--instance-registry-dir', agent.registry])).stdout);
  assert.equal(doc.process_count, 0, 'nothing was spawned');
});

test('passenger start as root refuses at once, naming the directory, when the app\'s user could not reach the app', ROOT_ONLY, async (t) => {
  const closed = tmpDir(t, 'ptest-closed-');
  fs.chmodSync(closed, 0o700);
  const app = path.join(closed, 'app');
  fs.cpSync(path.join(FIXTURES, 'basic'), app, { recursive: true });
  const r = await runCli(BIN.passenger, ['start', app, '--port', '1', '--instance-registry-dir', tmpDir(t, 'ptest-reg-')]);
  assert.equal(r.code, 2, r.stdout + r.stderr);
  assert.match(r.stderr, new RegExp(`the app would run as nobody .* cannot start it: ${closed} \\(mode 700, owner uid 0\\) cannot be passed through`));
});

test('an app\'s own app_log_file is written with its user\'s rights: a root file it names is left alone, its own file is its user\'s', ROOT_ONLY, async (t) => {
  const u = testUser(t);
  const victimDir = tmpDir(t, 'ptest-victim-');
  const victim = path.join(victimDir, 'root-only.conf');
  fs.writeFileSync(victim, 'precious\n', { mode: 0o644 });
  const app = appCopy(t, 'basic');
  fs.writeFileSync(path.join(app, 'Passengerfile.json'), JSON.stringify({ app_log_file: victim }));
  giveTo(app, u.uid, u.gid);
  const s = await startServer(t, app);
  assert.equal((await request(s.port, '/log?msg=planted')).status, 200);
  await eventually(() => /cannot open the app log file .*root-only\.conf: open: Permission denied/.test(s.output()), 20_000, 'the refusal in the log');
  assert.equal(fs.readFileSync(victim, 'utf8'), 'precious\n', 'root wrote nothing into a file the app named');

  const own = appCopy(t, 'basic');
  fs.writeFileSync(path.join(own, 'Passengerfile.json'), JSON.stringify({ app_log_file: 'app.log' }));
  giveTo(own, u.uid, u.gid);
  const s2 = await startServer(t, own);
  assert.equal((await request(s2.port, '/log?msg=mine')).status, 200);
  const file = path.join(own, 'app.log');
  await eventually(() => fs.existsSync(file) && fs.readFileSync(file, 'utf8').includes('mine'), 20_000, 'the app\'s line in its own log');
  assert.equal(fs.statSync(file).uid, u.uid, 'the file is the app user\'s, not root\'s');
});
