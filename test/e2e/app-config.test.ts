// Apps configured from the web server (real nginx and Apache with the shipped
// and printed snippets): several apps under sub-URIs of one server block, app
// roots the agent refuses, headers a client cannot forge, a deploy's
// `current` link switched under load, settings read again at restart, uploads,
// and apps pre-started with the agent.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test, type TestContext } from 'node:test';
import { BIN, ROOT, eventually, idsOf, request, runCli, steadyLoad, type StatusDoc } from '../helpers';
import {
  APACHE, NGINX, agentSocket, chmodTree, printedSnippet, sharedDir, startAgent, startApacheWith, startNginxWith, type WebServer,
} from './web-servers';

type Kind = 'nginx' | 'apache';
const available: Record<Kind, boolean> = { nginx: NGINX !== null, apache: APACHE !== null };

interface Info { pid: number; cwd: string; script: string; url: string; baseUri: string | null; greeting: string | null; fileVar: string | null }

/** A copy of the app-info fixture at `dir`, with public/hello.txt saying `label`. */
function infoApp(dir: string, label: string, startupFile = 'app.js'): string {
  fs.mkdirSync(path.join(dir, 'public'), { recursive: true });
  fs.mkdirSync(path.join(dir, 'tmp'), { recursive: true });
  fs.copyFileSync(path.join(ROOT, 'test', 'fixtures', 'apps', 'app-info', 'app.js'), path.join(dir, startupFile));
  fs.writeFileSync(path.join(dir, 'public', 'hello.txt'), `static ${label}\n`);
  chmodTree(dir);
  return dir;
}

async function info(port: number, urlPath: string, headers: Record<string, string> = {}): Promise<Info> {
  const r = await request(port, urlPath, { headers });
  assert.equal(r.status, 200, `${urlPath}: ${r.status} ${r.body}`);
  return JSON.parse(r.body) as Info;
}

async function status(registry: string): Promise<StatusDoc> {
  const r = await runCli(BIN.status, ['--show=json', '--instance-registry-dir', registry]);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as StatusDoc;
}

/** Server blocks (nginx) or VirtualHosts (Apache): each a list of printed snippets, or the shipped one for a document root. */
type Site = { snippets: string[][] } | { docRoot: string };

async function startWeb(t: TestContext, kind: Kind, dir: string, socket: string, sites: Site[]): Promise<WebServer & { ports: number[] }> {
  let n = 0;
  const bodies = sites.map((site) => {
    if ('docRoot' in site) {
      const shipped = printedSnippet(kind, socket, dir, `shipped-${n++}`, []);
      return kind === 'nginx'
        ? `root ${site.docRoot};\n    include ${shipped};`
        : `DocumentRoot ${site.docRoot}\n  <Directory ${site.docRoot}>\n    Require all granted\n  </Directory>\n  Include ${shipped}`;
    }
    return site.snippets.map((args) => `${kind === 'nginx' ? 'include' : 'Include'} ${printedSnippet(kind, socket, dir, `app-${n++}`, args)}${kind === 'nginx' ? ';' : ''}`).join('\n    ');
  });
  return kind === 'nginx' ? startNginxWith(t, dir, bodies) : startApacheWith(t, dir, bodies);
}

for (const kind of ['nginx', 'apache'] as const) {
  const opts = available[kind] ? {} : { skip: `${kind} is not installed (.ci/run installs it)` };

  test(`${kind}: two apps under /a and /b of one server block, each its own group, root and base URI`, opts, async (t) => {
    const dir = sharedDir(t, `ptest-appconf-${kind}-`);
    const a = infoApp(path.join(dir, 'a'), 'a');
    const b = infoApp(path.join(dir, 'b'), 'b', 'server.js');
    const c = infoApp(path.join(dir, 'c'), 'c');
    const agent = await startAgent(t, dir, dir, ['--max-pool-size', '6']);
    const web = await startWeb(t, kind, dir, agent.socket, [
      { snippets: [
        ['--app-root', a, '--base-uri', '/a', '--envvar', 'GREETING=from a $HOME %{x}e \'"', '--min-instances', '1'],
        ['--app-root', b, '--base-uri', '/b/', '--startup-file', 'server.js', '--min-instances', '1'],
      ] },
      { docRoot: path.join(c, 'public') },
    ]);
    const [port, plainPort] = web.ports;
    const ia = await info(port, '/a/x/y?q=1');
    assert.equal(ia.url, '/a/x/y?q=1', 'the app sees the full path');
    assert.equal(ia.cwd, a);
    assert.equal(ia.baseUri, '/a');
    assert.equal(ia.greeting, 'from a $HOME %{x}e \'"', 'an env var reaches the app as written');
    assert.equal((await info(port, '/a')).url, '/a');
    const ib = await info(port, '/b/');
    assert.equal(ib.cwd, b);
    assert.equal(ib.script, path.join(b, 'server.js'), 'the startup file from the web server');
    assert.equal(ib.baseUri, '/b');
    assert.equal(ib.greeting, null);
    // Files under each app's public/, from the web server.
    assert.equal((await request(port, '/a/hello.txt')).body, 'static a\n');
    assert.equal((await request(port, '/b/hello.txt')).body, 'static b\n');
    // Outside both mounts: neither app.
    assert.equal((await request(port, '/ab')).status, 404);
    const doc = await status(agent.registry);
    assert.deepEqual(doc.groups.map((g) => g.app_root).sort(), [a, b].sort());

    // A client's X-Passenger-* headers are replaced or dropped, in a printed snippet's location and in the shipped snippet's.
    const forged = {
      'X-Passenger-App-Root': c, 'X-Passenger-Base-URI': '/forged', 'X-Passenger-Document-Root': path.join(b, 'public'),
      'X-Passenger-App-Options': '{"envvars":{"GREETING":"forged"}}',
    };
    const fa = await info(port, '/a/', forged);
    assert.deepEqual([fa.cwd, fa.baseUri, fa.greeting], [a, '/a', ia.greeting]);
    const fc = await info(plainPort, '/', { ...forged, 'X-Passenger-App-Root': a });
    assert.deepEqual([fc.cwd, fc.baseUri, fc.greeting], [c, null, null], 'the shipped snippet names the app by its document root alone');
    assert.equal((await status(agent.registry)).groups.length, 3);

    // A 20 MB multipart upload: nginx's own default (1m) would answer 413.
    const boundary = 'x-boundary-x';
    const body = Buffer.concat([
      Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="f"; filename="big.bin"\r\nContent-Type: application/octet-stream\r\n\r\n`),
      Buffer.alloc(20 * 1024 * 1024, 7), Buffer.from(`\r\n--${boundary}--\r\n`),
    ]);
    for (const [p, u] of [[port, '/a/upload'], [plainPort, '/upload']] as const) {
      const up = await request(p, u, { method: 'POST', body, headers: { 'content-type': `multipart/form-data; boundary=${boundary}` }, timeoutMs: 120_000 });
      assert.equal(up.status, 200, `${u}: ${up.status} ${up.body.slice(0, 200)}`);
      assert.equal(up.body, String(body.length));
    }
  });

  test(`${kind}: the user and group a printed snippet names are who the app runs as`, process.getuid?.() === 0 ? opts : { skip: 'needs root (user switching)' }, async (t) => {
    const dir = sharedDir(t, `ptest-appconf-user-${kind}-`);
    const u = infoApp(path.join(dir, 'u'), 'u');
    const agent = await startAgent(t, dir, dir, ['--max-pool-size', '2']);
    const web = await startWeb(t, kind, dir, agent.socket, [
      { snippets: [['--app-root', u, '--base-uri', '/u', '--user', 'daemon', '--group', 'www-data', '--min-instances', '1']] },
    ]);
    const iu = await info(web.ports[0], '/u/');
    const ids = idsOf(iu.pid);
    assert.deepEqual([ids.uid[0], ids.gid[0]], [1, 33], 'daemon with www-data, as the web server said');
    // A client cannot pick the user: the header is the web server's.
    const forged = await info(web.ports[0], '/u/', { 'X-Passenger-App-Options': '{"user":"root"}' });
    assert.equal(idsOf(forged.pid).uid[0], 1);
  });

  test(`${kind}: an app root outside the allowed ones is refused and creates no group`, opts, async (t) => {
    const dir = sharedDir(t, `ptest-appconf-deny-${kind}-`);
    const allowed = path.join(dir, 'allowed');
    fs.mkdirSync(allowed, { mode: 0o755 });
    const inside = infoApp(path.join(allowed, 'in'), 'in');
    const outside = infoApp(path.join(dir, 'outside'), 'out');
    // A link inside the allowed directory that leads out of it.
    fs.symlinkSync(outside, path.join(allowed, 'sneaky'));
    const agent = await startAgent(t, dir, allowed);
    const web = await startWeb(t, kind, dir, agent.socket, [{ snippets: [
      ['--app-root', outside, '--base-uri', '/out'],
      ['--app-root', path.join(allowed, 'sneaky'), '--base-uri', '/sneaky'],
      ['--app-root', inside, '--base-uri', '/in'],
      ['--app-root', path.join(allowed, 'missing'), '--base-uri', '/missing'],
      ['--app-root', inside, '--base-uri', '/small', '--max-body-size', '1m'],
    ] }]);
    assert.equal((await request(web.port, '/out/')).status, 403);
    assert.equal((await request(web.port, '/sneaky/')).status, 403);
    assert.equal((await request(web.port, '/missing/')).status, 404);
    assert.equal((await info(web.port, '/in/')).cwd, inside);
    assert.deepEqual((await status(agent.registry)).groups.map((g) => g.app_root), [inside]);
    // The request body limit a user sets with the snippet.
    const big = await request(web.port, '/small/upload', { method: 'POST', body: Buffer.alloc(2 * 1024 * 1024, 1), timeoutMs: 60_000 }).catch((e: Error) => ({ status: 0, body: e.message }));
    assert.equal(big.status, 413, big.body.slice(0, 200));
    assert.equal((await request(web.port, '/small/upload', { method: 'POST', body: Buffer.alloc(1000, 1) })).body, '1000');
  });

  test(`${kind}: a deploy's current link switched to a new release moves every process there, none failing with --rolling`, opts, async (t) => {
    const dir = sharedDir(t, `ptest-appconf-deploy-${kind}-`);
    const site = path.join(dir, 'site');
    const r1 = infoApp(path.join(site, 'releases', '1'), 'r1');
    const r2 = infoApp(path.join(site, 'releases', '2'), 'r2');
    const current = path.join(site, 'current');
    fs.symlinkSync(r1, current);
    const switchTo = (release: string): void => {
      const tmp = `${current}.new`;
      fs.symlinkSync(release, tmp);
      fs.renameSync(tmp, current);
    };
    const agent = await startAgent(t, dir, site);
    const web = await startWeb(t, kind, dir, agent.socket, [{ docRoot: path.join(current, 'public') }]);
    assert.equal((await info(web.port, '/')).cwd, r1);
    const procs = async (): Promise<number[]> => (await status(agent.registry)).groups.flatMap((g) => g.processes.filter((p) => p.state === 'alive').map((p) => p.pid));
    await eventually(async () => (await procs()).length === 2, 30_000, 'two processes');
    assert.deepEqual((await status(agent.registry)).groups.map((g) => g.app_root), [current], 'the group is named by the configured root');

    switchTo(r2);
    const load = steadyLoad(web.port, 4, '/');
    await eventually(() => load.count() > 20, 30_000, 'load to run');
    const r = await runCli(BIN.config, ['restart-app', current, '--rolling', '--instance-registry-dir', agent.registry], { timeoutMs: 120_000 });
    assert.equal(r.code, 0, r.stderr);
    const done = await load.stop();
    assert.deepEqual(done.failures, [], `${done.failures.length} of ${done.count} requests failed`);
    for (let i = 0; i < 10; i++) assert.equal((await info(web.port, '/')).cwd, r2, 'every process serves the new release');

    // Back to release 1 with restart.txt (in the release current now leads to).
    switchTo(r1);
    fs.writeFileSync(path.join(current, 'tmp', 'restart.txt'), '');
    await eventually(async () => {
      const seen = await Promise.all(Array.from({ length: 6 }, () => info(web.port, '/')));
      return seen.every((s) => s.cwd === r1);
    }, 60_000, 'every process to serve release 1');
    assert.deepEqual((await status(agent.registry)).groups.map((g) => g.app_root), [current]);
  });

  test(`${kind}: an edited env var (Passengerfile.json or the web server's) reaches the app at its restart`, opts, async (t) => {
    const dir = sharedDir(t, `ptest-appconf-fresh-${kind}-`);
    const app = infoApp(path.join(dir, 'app'), 'app');
    const pfile = path.join(app, 'Passengerfile.json');
    fs.writeFileSync(pfile, JSON.stringify({ envvars: { FILE_VAR: 'one' } }));
    fs.chmodSync(pfile, 0o644);
    const agent = await startAgent(t, dir, dir);
    const args = (greeting: string): string[] => ['--app-root', app, '--base-uri', '/app', '--envvar', `GREETING=${greeting}`];
    const web = await startWeb(t, kind, dir, agent.socket, [{ snippets: [args('web one')] }]);
    const first = await info(web.port, '/app/');
    assert.deepEqual([first.fileVar, first.greeting], ['one', 'web one']);

    fs.writeFileSync(pfile, JSON.stringify({ envvars: { FILE_VAR: 'two' } }));
    // The web server's configuration, printed anew and reloaded.
    printedSnippet(kind, agent.socket, dir, 'app-0', args('web two'));
    const oldWorkers = web.workerPids();
    web.reload();
    await eventually(() => {
      const now = web.workerPids();
      return now.length > 0 && now.every((p) => !oldWorkers.includes(p));
    }, 60_000, `${kind} to replace its workers`);
    // Reloading the web server restarts no app: the new settings reach the agent, and wait for the app's restart.
    const still = await info(web.port, '/app/');
    assert.deepEqual([still.fileVar, still.greeting], ['one', 'web one']);
    fs.writeFileSync(path.join(app, 'tmp', 'restart.txt'), '');
    await eventually(async () => {
      const seen = await Promise.all(Array.from({ length: 4 }, () => info(web.port, '/app/')));
      return seen.every((s) => s.fileVar === 'two' && s.greeting === 'web two');
    }, 60_000, 'the new settings in every process');
  });

  test(`${kind}: apps listed with --pre-start run before any request, and after a core restart`, opts, async (t) => {
    const dir = sharedDir(t, `ptest-appconf-prestart-${kind}-`);
    const byRoot = infoApp(path.join(dir, 'byroot'), 'byroot');
    const byUrl = infoApp(path.join(dir, 'byurl'), 'byurl');
    // The URL is requested through the web server, which is up first (on
    // ports it has bound itself) and reaches the agent once it listens.
    const web = await startWeb(t, kind, dir, agentSocket(dir), [{ snippets: [['--app-root', byUrl, '--base-uri', '/u']] }]);
    const agent = await startAgent(t, dir, dir, ['--max-pool-size', '6', '--pre-start', byRoot, '--pre-start', `http://127.0.0.1:${web.port}/u/`]);
    const alive = async (): Promise<Map<string, number[]>> => new Map((await status(agent.registry)).groups.map((g) => [g.app_root, g.processes.filter((p) => p.state === 'alive').map((p) => p.pid)]));
    await eventually(async () => (await alive()).get(byRoot)?.length === 2, 30_000, `${byRoot} pre-started with 2 processes`);
    await eventually(async () => (await alive()).get(byUrl)?.length === 2, 60_000, `${byUrl} pre-started through ${kind}`);

    // The core dies: the next one adopts the processes, knows the web server's settings, and pre-starts again.
    const corePid = Number(fs.readFileSync(path.join(agent.instanceDir(), 'core.pid'), 'utf8'));
    const before = await alive();
    process.kill(before.get(byRoot)![0], 'SIGKILL');
    process.kill(corePid, 'SIGKILL');
    await eventually(() => {
      const now = Number(fs.readFileSync(path.join(agent.instanceDir(), 'core.pid'), 'utf8'));
      return now !== corePid && now > 0;
    }, 30_000, 'a new core');
    await eventually(async () => (await alive()).get(byRoot)?.length === 2, 60_000, `${byRoot} back at 2 processes`);
    const victim = before.get(byUrl)![0];
    process.kill(victim, 'SIGKILL');
    await eventually(async () => {
      const pids = (await alive()).get(byUrl) ?? [];
      return pids.length === 2 && !pids.includes(victim);
    }, 60_000, 'a replacement');
    const fresh = ((await alive()).get(byUrl) ?? []).find((p) => !before.get(byUrl)!.includes(p));
    const env = fs.readFileSync(`/proc/${fresh}/environ`, 'utf8').split('\0');
    assert.ok(env.includes('PASSENGER_BASE_URI=/u'), 'a process started by the new core has the web server\'s settings');
  });
}
