// The admin protocol: error bodies keep their code on the way to a tool, and
// the tools' status rendering loads no server code.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { readErrorBody } from '../../helper-agent/src/admin/protocol';
import { PassengerError } from '../../helper-agent/src/errors';
import { adminJson } from '../../helper-agent/src/instance/admin-client';
import type { InstanceDir } from '../../helper-agent/src/instance/instance-dir';

test('an error body is read with its code, message and hint; anything else is not one', () => {
  assert.deepEqual(readErrorBody({ code: 'E_NO_GROUP', message: 'no app group' }), { code: 'E_NO_GROUP', message: 'no app group' });
  assert.deepEqual(readErrorBody({ code: 'E_ADMIN_DENIED', message: 'no', hint: 'use sudo' }), { code: 'E_ADMIN_DENIED', message: 'no', hint: 'use sudo' });
  assert.equal(readErrorBody({ code: 'E_NOT_A_CODE', message: 'x' }), null);
  assert.equal(readErrorBody({ message: 'x' }), null);
  assert.equal(readErrorBody(null), null);
  assert.equal(readErrorBody('E_NO_GROUP'), null);
});

test('the admin client keeps the agent\'s error code, and makes an unknown one E_ADMIN', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'admin-protocol-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const socket = path.join(dir, 'admin.sock');
  const server = http.createServer((req, res) => {
    const body = req.url === '/known'
      ? { code: 'E_NO_GROUP', message: 'no app group named x', hint: 'see passenger-status' }
      : { code: 'E_SOMETHING_ELSE', message: 'odd' };
    res.writeHead(404, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  });
  await new Promise<void>((resolve) => server.listen(socket, resolve));
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const inst = { adminSocket: socket } as InstanceDir;
  await assert.rejects(adminJson(inst, 'POST', '/known'), (e: unknown) =>
    e instanceof PassengerError && e.code === 'E_NO_GROUP' && e.message === 'no app group named x' && e.hint === 'see passenger-status');
  await assert.rejects(adminJson(inst, 'GET', '/unknown'), (e: unknown) =>
    e instanceof PassengerError && e.code === 'E_ADMIN' && e.message === 'odd');
});

test('the status renderers and the admin client load no server module', () => {
  const src = path.join(__dirname, '..', '..', 'helper-agent', 'src');
  const script = `for (const m of ${JSON.stringify(['cli/render-status.js', 'cli/render-xml.js', 'instance/admin-client.js', 'admin/protocol.js'].map((m) => path.join(src, m)))}) require(m);
process.stdout.write(JSON.stringify(Object.keys(require.cache)));`;
  const loaded = JSON.parse(execFileSync(process.execPath, ['-e', script], { encoding: 'utf8' })) as string[];
  const server = loaded.filter((f) => /node_modules\/(fastify|undici|@fastify)\/|\/src\/(router|core|pool|spawn|watchdog)\/|admin-api\.js$/.test(f));
  assert.deepEqual(server, []);
});
