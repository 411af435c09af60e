// Behind nginx, an app's Passengerfile.json as a Passenger user writes it:
// Passenger-only keys warn in the agent's log, app_log_file takes the app's lines.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { assertLogged, eventually, request } from '../helpers';
import { NGINX, chmodTree, sharedDir, startAgent, startNginx, webApp } from './web-servers';

test('behind nginx: app_log_file receives the app\'s lines; Passenger-only keys are accepted with a warning in the log', { skip: NGINX ? false : 'nginx is not installed' }, async (t) => {
  const dir = sharedDir(t, 'ptest-e2e-dropin-');
  const appDir = webApp(t, dir, 'dropin');
  fs.mkdirSync(path.join(appDir, 'log'));
  // As root the app runs as nobody (its files are root's) and writes its log with that user's rights.
  if (process.getuid?.() === 0) fs.chownSync(path.join(appDir, 'log'), 65534, 65534);
  fs.writeFileSync(path.join(appDir, 'Passengerfile.json'), JSON.stringify({ app_log_file: 'log/app.log', engine: 'builtin', disable_anonymous_telemetry: true }));
  chmodTree(appDir);
  const agent = await startAgent(t, dir, dir);
  const web = await startNginx(t, dir, agent.socket, [appDir]);
  const r = await request(web.port, '/behind-nginx');
  assert.equal(r.status, 200, r.body);
  const pid = (JSON.parse(r.body) as { pid: number }).pid;
  const file = path.join(appDir, 'log', 'app.log');
  await eventually(() => fs.existsSync(file) && fs.readFileSync(file, 'utf8').includes(`App ${pid} (${appDir}) stdout: request /behind-nginx in ${pid}`), 20_000, 'the line in the app log');
  assert.doesNotMatch(agent.output(), /request \/behind-nginx/);
  await assertLogged(() => agent.output(), /Passengerfile\.json: "engine" is accepted and ignored: the built-in HTTP server is the only engine/);
});
