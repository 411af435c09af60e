// Behind real nginx and Apache with the shipped snippets, the agent run as
// root starts each app as its user: an app owned by a user as that user (its
// groups included), a root-owned one as nobody; so it stays across a core
// kill -9 (adoption) and restart-app.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { BIN, IS_ROOT, eventually, giveTo, idsOf, request, runCli, testUser } from '../helpers';
import { APACHE, NGINX, appPidsOf, sharedDir, startAgent, startApache, startNginx, webApp } from './web-servers';

const NOBODY = 65534;

for (const kind of ['nginx', 'apache'] as const) {
  const installed = kind === 'nginx' ? NGINX !== null : APACHE !== null;
  const opts = !IS_ROOT ? { skip: 'needs root: only root can run apps as other users' }
    : !installed ? { skip: `${kind} is not installed (.ci/run installs it)` } : {};

  test(`${kind}: each app runs as its user, and keeps it across a core kill -9 and restart-app`, opts, async (t) => {
    const u = testUser(t);
    const dir = sharedDir(t, `ptest-users-${kind}-`);
    const mine = webApp(t, dir);
    giveTo(mine, u.uid, u.gid);
    const rooted = webApp(t, dir);
    const agent = await startAgent(t, dir, dir, ['--min-instances', '1', '--max-pool-size', '4']);
    const web = kind === 'nginx' ? await startNginx(t, dir, agent.socket, [mine, rooted]) : await startApache(t, dir, agent.socket, [mine, rooted]);
    const [minePort, rootedPort] = web.ports;

    const pidVia = async (port: number): Promise<number> => {
      const r = await request(port, '/pid');
      assert.equal(r.status, 200, r.body);
      return Number(r.body);
    };
    const isMine = (pid: number): boolean => {
      const ids = idsOf(pid);
      return ids.uid.every((x) => x === u.uid) && ids.gid.every((x) => x === u.gid)
        && ids.groups.join() === [u.gid, u.groupGid].sort((a, b) => a - b).join();
    };
    const minePid = await pidVia(minePort);
    assert.ok(isMine(minePid), JSON.stringify(idsOf(minePid)));
    const rootedPid = await pidVia(rootedPort);
    assert.deepEqual(idsOf(rootedPid).uid, [NOBODY, NOBODY, NOBODY, NOBODY]);
    assert.equal((await request(minePort, '/hello.txt')).body, 'static file\n', 'static files still come from the web server');

    const core = Number(fs.readFileSync(path.join(agent.instanceDir(), 'core.pid'), 'utf8'));
    process.kill(core, 'SIGKILL');
    await eventually(() => /adopted \d+ live app process\(es\)/.test(agent.output()), 30_000, 'the new core to adopt the apps');
    t.diagnostic(agent.output().match(/adopted \d+ live app process\(es\)/)?.[0] ?? '');
    assert.equal(await pidVia(minePort), minePid, 'the same process serves');
    assert.ok(isMine(minePid), 'and keeps its user');

    const restarted = await runCli(BIN.config, ['restart-app', mine, '--instance-registry-dir', agent.registry]);
    assert.equal(restarted.code, 0, restarted.stderr);
    const fresh = await eventually(async () => {
      const p = await pidVia(minePort);
      return p !== minePid ? p : null;
    }, 30_000, 'a new process');
    assert.ok(isMine(fresh), JSON.stringify(idsOf(fresh)));
    assert.ok((await appPidsOf(agent.registry)).includes(rootedPid), `the other app was left alone; agent output:\n${agent.output().slice(-3000)}`);
  });
}
