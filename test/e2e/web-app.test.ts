// One web-app suite, run against standalone, nginx and Apache (real servers,
// the shipped snippets, real app processes), plus what only the web server
// modes have: reloads that drop nothing, refused app roots, front-end PIDs.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { test, type TestContext } from 'node:test';
import { BIN, assertLogged, checkoutSharedWithOthers, eventually, isAlive, request, runCli, startServer, steadyLoad } from '../helpers';
import { APACHE, NGINX, appPidsOf, sharedDir, startAgent, startApache, startNginx, webApp, type WebServer } from './web-servers';

interface Target {
  output(): string;
  port: number;
  appDir: string;
  registry: string;
  web?: WebServer & { ports: number[] };
}

type Kind = 'standalone' | 'nginx' | 'apache';

async function setUp(t: TestContext, kind: Kind, fixture = 'basic'): Promise<Target> {
  const dir = sharedDir(t, `ptest-e2e-${kind}-`);
  const appDir = webApp(t, dir, fixture);
  if (kind === 'standalone') {
    const s = await startServer(t, appDir, ['--min-instances', '2', '--max-pool-size', '2', '--stat-throttle-rate', '1', '--environment', 'production']);
    fs.chmodSync(s.registry, 0o755); // others may look (and be refused by the admin API)
    return { port: s.port, appDir, registry: s.registry, output: s.output };
  }
  const agent = await startAgent(t, dir, dir);
  const web = kind === 'nginx' ? await startNginx(t, dir, agent.socket, [appDir]) : await startApache(t, dir, agent.socket, [appDir]);
  return { port: web.port, appDir, registry: agent.registry, web, output: agent.output };
}

/** A GET with a request target no HTTP client library would send as is; the response body. */
function rawGet(port: number, target: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1', () => sock.write(`GET ${target} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: close\r\n\r\n`));
    let got = '';
    sock.setEncoding('latin1');
    sock.on('data', (d: string) => { got += d; });
    sock.on('error', reject);
    sock.on('close', () => resolve(got));
  });
}

const available: Record<Kind, boolean> = { standalone: true, nginx: NGINX !== null, apache: APACHE !== null };

for (const kind of ['standalone', 'nginx', 'apache'] as const) {
  const opts = available[kind] ? {} : { skip: `${kind} is not installed (.ci/run installs it)` };

  test(`${kind}: dynamic and static requests, a POST body, forwarded headers`, opts, async (t) => {
    const s = await setUp(t, kind);
    const dyn = await request(s.port, '/');
    assert.equal(dyn.status, 200);
    assert.match(dyn.body, /^hello from \d+/);
    const stat = await request(s.port, '/hello.txt');
    assert.equal(stat.status, 200, 'the file under public/ is served (the app itself would answer 404)');
    assert.equal(stat.body, 'static file\n');
    const body = 'x'.repeat(300_000);
    const post = await request(s.port, '/upload', { method: 'POST', body, headers: { 'content-type': 'application/octet-stream' } });
    assert.equal(post.body, String(body.length));
    const h = JSON.parse((await request(s.port, '/headers?a=1', { headers: { 'X-Passenger-Document-Root': '/etc/public', 'X-Passenger-Anything': 'x' } })).body);
    assert.equal(h['x-forwarded-proto'], 'http');
    assert.match(h['x-forwarded-for'], /^127\.0\.0\.1$/);
    assert.equal(h.host, `127.0.0.1:${s.port}`);
    for (const k of Object.keys(h)) assert.ok(!k.startsWith('x-passenger-'), `${k} reached the app`);
  });

  test(`${kind}: the app gets the request target exactly as the client sent it`, opts, async (t) => {
    const s = await setUp(t, kind, 'echo-url');
    const targets = [
      '/a%20b', '/search/%3Fq', '/caf%C3%A9', '/%25x', '/%252e%252e/etc', '/a%2Fb/c%2fd', '/x+y',
      '/q?x=%20y&z=%3F%25&w=a+b&u=caf%C3%A9&s=%2F', '/p%3Bq;r?', '/?a=1',
    ];
    for (const target of targets) {
      const r = await request(s.port, target);
      assert.equal(r.status, 200, `${target}: ${r.body}${s.web ? `\n${s.web.errorLog().split('\n').slice(-5).join('\n')}` : ''}`);
      assert.equal(r.body, target);
    }
    if (s.web) {
      // The absolute form (GET http://host/path) reaches the app as its path and query.
      const abs = await rawGet(s.port, `http://127.0.0.1:${s.port}/abs%20x?y=%25`);
      assert.match(abs, /^HTTP\/1\.1 200 [^]*\r\n\r\n[0-9a-f]+\r\n\/abs%20x\?y=%25\r\n/, abs);
    }
    // What exists under public/ is still the web server's (the app would echo).
    assert.equal((await request(s.port, '/hello.txt')).body, 'static file\n');
  });

  test(`${kind}: a killed app process is replaced and requests keep succeeding`, opts, async (t) => {
    const s = await setUp(t, kind);
    assert.equal((await request(s.port, '/')).status, 200);
    const before = await eventually(async () => { const p = await appPidsOf(s.registry); return p.length === 2 ? p : null; }, 20_000, 'two processes');
    process.kill(before[0], 'SIGKILL');
    for (let i = 0; i < 20; i++) {
      const r = await request(s.port, '/pid');
      assert.equal(r.status, 200, `${r.body}\n${s.output().split('\n').filter((l) => /failed|refused|exited|broke/.test(l)).join('\n')}`);
    }
    await eventually(async () => { const p = await appPidsOf(s.registry); return p.length === 2 && !p.includes(before[0]); }, 20_000, 'a replacement');
  });

  test(`${kind}: tmp/restart.txt restarts the app`, opts, async (t) => {
    const s = await setUp(t, kind);
    assert.equal((await request(s.port, '/')).status, 200);
    const before = await eventually(async () => { const p = await appPidsOf(s.registry); return p.length === 2 ? p : null; }, 20_000, 'two processes');
    fs.writeFileSync(path.join(s.appDir, 'tmp', 'restart.txt'), '');
    await eventually(async () => { const p = await appPidsOf(s.registry); return p.length === 2 && p.every((x) => !before.includes(x)); }, 30_000, 'new processes');
    assert.equal((await request(s.port, '/')).status, 200);
  });

  test(`${kind}: the admin API shows an unprivileged user only the apps that run as them`, opts, async (t) => {
    const s = await setUp(t, kind);
    assert.equal((await request(s.port, '/')).status, 200);
    const asUser = (user: string): { status: number | null; doc: { groups: { app_root: string }[] } | null; stderr: string } => {
      const r = spawnSync('runuser', ['-u', user, '--', process.execPath, BIN.status, '--show=json', '--instance-registry-dir', s.registry], { encoding: 'utf8' });
      return { status: r.status, doc: r.status === 0 ? JSON.parse(r.stdout) : null, stderr: r.stderr };
    };
    if (process.getuid?.() === 0 && !checkoutSharedWithOthers()) t.diagnostic('skipped the tools run as other users: this checkout is not readable by them');
    else if (process.getuid?.() === 0) {
      // As root the agent runs this root-owned app as nobody: nobody sees it, daemon sees nothing.
      const nobody = asUser('nobody');
      assert.equal(nobody.status, 0, nobody.stderr);
      assert.deepEqual(nobody.doc?.groups.map((g) => g.app_root), [s.appDir]);
      const daemon = asUser('daemon');
      assert.equal(daemon.status, 0, daemon.stderr);
      assert.deepEqual(daemon.doc?.groups, []);
      const restart = spawnSync('runuser', ['-u', 'daemon', '--', process.execPath, BIN.config, 'restart-app', s.appDir, '--instance-registry-dir', s.registry], { encoding: 'utf8' });
      assert.equal(restart.status, 1, restart.stdout + restart.stderr);
      assert.match(restart.stderr, /not allowed/);
    }
    const root = await runCli(BIN.status, ['--instance-registry-dir', s.registry]);
    assert.equal(root.code, 0);
  });
}

for (const kind of ['nginx', 'apache'] as const) {
  const opts = available[kind] ? {} : { skip: `${kind} is not installed (.ci/run installs it)` };

  test(`${kind}: a reload under steady load drops no request and keeps the agent and apps`, opts, async (t) => {
    const s = await setUp(t, kind);
    const web = s.web!;
    assert.equal((await request(s.port, '/')).status, 200);
    const apps = await eventually(async () => { const p = await appPidsOf(s.registry); return p.length === 2 ? p : null; }, 20_000, 'two processes');
    const agentFile = path.join(s.registry, fs.readdirSync(s.registry).find((n) => n.startsWith('passenger-ts.')) as string);
    const corePid = Number(fs.readFileSync(path.join(agentFile, 'core.pid'), 'utf8'));
    const oldWorkers = web.workerPids();
    const load = steadyLoad(s.port);
    await eventually(() => load.count() > 50, 20_000, 'load to run');
    web.reload();
    await eventually(() => { const w = web.workerPids(); return w.length > 0 && w.every((p) => !oldWorkers.includes(p)); }, 20_000, 'new workers');
    const after = load.count();
    await eventually(() => load.count() > after + 100, 20_000, 'load after the reload');
    // The front-end PIDs the agent recorded follow the new workers. Checked
    // while the load runs: the server may start more workers after the
    // reload, and one that never takes a request never meets the agent.
    const fe = path.join(agentFile, 'frontends.json');
    await eventually(() => {
      const seen = JSON.parse(fs.readFileSync(fe, 'utf8')) as { pid: number; role: string }[];
      const pids = seen.map((x) => x.pid);
      return pids.includes(web.masterPid) && !oldWorkers.some((p) => pids.includes(p)) && web.workerPids().some((p) => pids.includes(p));
    }, 20_000, 'frontends.json to follow the new workers').catch((e: Error) => {
      let recorded: string;
      try { recorded = fs.readFileSync(fe, 'utf8'); } catch (r) { recorded = (r as Error).message; }
      throw new Error(`${e.message}\nfrontends.json: ${recorded}\nmaster ${web.masterPid}, workers ${web.workerPids().join(' ')} (before: ${oldWorkers.join(' ')})\nagent output:\n${s.output().slice(-3000)}`);
    });
    const { count, failures } = await load.stop();
    assert.deepEqual(failures, [], `${failures.length} of ${count} requests failed`);
    assert.ok(isAlive(corePid), 'the agent core lives on');
    assert.deepEqual(await appPidsOf(s.registry), apps, 'the app processes are the same');
  });

  test(`${kind}: a document root outside --app-root-allow is refused with 403`, opts, async (t) => {
    const dir = sharedDir(t, `ptest-e2e-deny-${kind}-`);
    const allowed = path.join(dir, 'allowed');
    fs.mkdirSync(allowed, { mode: 0o755 });
    const goodApp = webApp(t, allowed);
    const badApp = webApp(t, dir);
    const agent = await startAgent(t, dir, allowed);
    const web = kind === 'nginx' ? await startNginx(t, dir, agent.socket, [goodApp, badApp]) : await startApache(t, dir, agent.socket, [goodApp, badApp]);
    assert.equal((await request(web.ports[0], '/')).status, 200);
    const denied = await request(web.ports[1], '/');
    assert.equal(denied.status, 403);
    assert.match(denied.body, /does not serve the app/);
    // A client's own header cannot name another root.
    const forged = await request(web.ports[1], '/', { headers: { 'X-Passenger-Document-Root': path.join(goodApp, 'public') } });
    assert.equal(forged.status, 403);
    await assertLogged(() => agent.output(), new RegExp(`refused a request for app root ${badApp}`));
    // Files under the refused app's public/ are still the web server's business.
    assert.equal((await request(web.ports[1], '/hello.txt')).status, 200);
  });
}

test('behind nginx, an app\'s Passengerfile.json sets its own options; server-wide keys are ignored and named', { skip: NGINX ? false : 'nginx is not installed' }, async (t) => {
  const dir = sharedDir(t, 'ptest-e2e-appfile-');
  const appDir = webApp(t, dir);
  fs.writeFileSync(path.join(appDir, 'Passengerfile.json'), JSON.stringify({ min_instances: 1, envvars: { GREETING: 'from the file' }, port: 9999, direct_mode: true }));
  fs.chmodSync(path.join(appDir, 'Passengerfile.json'), 0o644);
  const agent = await startAgent(t, dir, dir);
  const web = await startNginx(t, dir, agent.socket, [appDir]);
  const env = JSON.parse((await request(web.port, '/env')).body) as Record<string, string>;
  assert.equal(env.GREETING, 'from the file');
  assert.equal(env.NODE_ENV, 'production');
  await assertLogged(() => agent.output(), /Passengerfile\.json: port, direct_mode apply to passenger start or the whole agent, not to one app behind a web server: ignored/);
});

test('behind nginx, a full pool: the idle process of one app gives way to another app\'s first request', { skip: NGINX ? false : 'nginx is not installed' }, async (t) => {
  const dir = sharedDir(t, 'ptest-e2e-evict-');
  const apps = [webApp(t, dir), webApp(t, dir)];
  const agent = await startAgent(t, dir, dir, ['--max-pool-size', '1']);
  const web = await startNginx(t, dir, agent.socket, apps);
  const first = await request(web.ports[0], '/pid');
  assert.equal(first.status, 200);
  const second = await request(web.ports[1], '/pid');
  assert.equal(second.status, 200, second.body);
  assert.notEqual(second.body, first.body);
  const gaveWay = new RegExp(`process ${first.body} of ${apps[0]} gives way to ${apps[1]} \\(the pool is full\\)`);
  await eventually(() => gaveWay.test(agent.output()), 10_000, 'the log to name the eviction');
  await eventually(() => !isAlive(Number(first.body)), 20_000, 'the evicted process to stop');
  // And back again.
  const again = await request(web.ports[0], '/pid');
  assert.equal(again.status, 200, again.body);
  await eventually(async () => { const p = await appPidsOf(agent.registry); return p.length === 1 && p[0] === Number(again.body); }, 20_000, 'one process, of the first app');
});

test('the request socket of `passenger agent` is reachable by its owner and www-data only', { skip: NGINX ? false : 'nginx is not installed' }, async (t) => {
  const dir = sharedDir(t, 'ptest-e2e-sock-');
  const agent = await startAgent(t, dir, dir);
  const st = fs.statSync(agent.socket);
  assert.equal(st.mode & 0o777, 0o660);
  const wwwGid = Number(fs.readFileSync('/etc/group', 'utf8').split('\n').find((l) => l.startsWith('www-data:'))?.split(':')[2]);
  if (process.getuid?.() === 0) assert.equal(st.gid, wwwGid);
  const r = await runCli(BIN.config, ['nginx-snippet', '--socket', agent.socket]);
  assert.match(r.stdout, new RegExp(`proxy_pass http://unix:${agent.socket}:;`));
});

for (const kind of ['nginx', 'apache'] as const) {
  const opts = available[kind] ? {} : { skip: `${kind} is not installed (.ci/run installs it)` };
  test(`${kind}: kill -9 of the agent core under load: the apps are adopted, at most the requests in flight fail`, opts, async (t) => {
    const s = await setUp(t, kind);
    assert.equal((await request(s.port, '/')).status, 200);
    const apps = await eventually(async () => { const p = await appPidsOf(s.registry); return p.length === 2 ? p : null; }, 20_000, 'two processes');
    const inst = path.join(s.registry, fs.readdirSync(s.registry).find((n) => n.startsWith('passenger-ts.')) as string);
    const oldCore = Number(fs.readFileSync(path.join(inst, 'core.pid'), 'utf8'));
    const conns = 4;
    const load = steadyLoad(s.port, conns);
    await eventually(() => load.count() > 50, 20_000, 'load to run');
    process.kill(oldCore, 'SIGKILL');
    await eventually(() => { const p = Number(fs.readFileSync(path.join(inst, 'core.pid'), 'utf8')); return p !== oldCore && isAlive(p); }, 20_000, 'a new core');
    const mark = load.started();
    const after = load.count();
    await eventually(() => load.count() > after + 100, 20_000, 'load after the restart');
    const { count, failures, failedFrom } = await load.stop();
    if (failures.length > 0) t.diagnostic(`${kind} error log:\n${s.web?.errorLog().split('\n').slice(-12).join('\n')}`);
    // What the dead core held fails: each client's request in flight, and at
    // most one more sent on a kept-alive connection the dying process had not
    // closed yet. Nothing sent once the new core exists may fail: it waits
    // in the socket's backlog for the new core.
    assert.deepEqual(failedFrom(mark), [], 'requests sent after the new core started');
    assert.ok(failures.length <= 2 * conns, `${failures.length} of ${count} failed: ${failures.join('; ')}`);
    assert.deepEqual(await appPidsOf(s.registry), apps, 'the same app processes serve');
    t.diagnostic(`${failures.length} of ${count} requests failed across the core restart`);
  });
}
