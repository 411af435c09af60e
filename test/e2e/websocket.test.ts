// WebSockets through real nginx (the one-line snippet and the keep-alive
// pair) and Apache with the shipped snippets, to a real agent and app.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test, type TestContext } from 'node:test';
import WebSocket from 'ws';
import { BIN, ROOT, eventually, request, runCli } from '../helpers';
import { wsHandshake } from '../websocket-client';
import { APACHE, NGINX, chmodTree, sharedDir, startAgent, startApache, startNginx, webApp, type Agent, type WebServer } from './web-servers';

type Kind = 'nginx' | 'nginx-keepalive' | 'apache';

interface Setup {
  agent: Agent;
  web: WebServer & { ports: number[] };
  appDir: string;
}

async function setUp(t: TestContext, kind: Kind, fixture = 'websocket'): Promise<Setup> {
  const dir = sharedDir(t, `ptest-e2e-ws-${kind}-`);
  const appDir = webApp(t, dir, fixture);
  if (fixture === 'ws-echo') {
    fs.cpSync(path.join(ROOT, 'node_modules', 'ws'), path.join(appDir, 'node_modules', 'ws'), { recursive: true });
    chmodTree(appDir);
  }
  const agent = await startAgent(t, dir, dir, ['--min-instances', '1']);
  const web = kind === 'apache' ? await startApache(t, dir, agent.socket, [appDir])
    : await startNginx(t, dir, agent.socket, [appDir], { keepalive: kind === 'nginx-keepalive' });
  return { agent, web, appDir };
}

async function counts(registry: string): Promise<{ sessions: number; websockets: number }> {
  const r = await runCli(BIN.status, ['--show=json', '--instance-registry-dir', registry]);
  assert.equal(r.code, 0, r.stderr);
  const doc = JSON.parse(r.stdout) as { groups: { processes: { sessions: number; websockets: number }[] }[] };
  let sessions = 0;
  let websockets = 0;
  for (const g of doc.groups) for (const p of g.processes) { sessions += p.sessions; websockets += p.websockets; }
  return { sessions, websockets };
}

/** Connected server-side ends of the agent's request socket (from /proc/net/unix). */
function agentConnections(socket: string): number {
  return fs.readFileSync('/proc/net/unix', 'utf8').split('\n').filter((l) => {
    const f = l.trim().split(/\s+/);
    return f[7] === socket && f[5] === '03';
  }).length;
}

const available: Record<Kind, boolean> = { nginx: NGINX !== null, 'nginx-keepalive': NGINX !== null, apache: APACHE !== null };

for (const kind of ['nginx', 'nginx-keepalive', 'apache'] as const) {
  const opts = available[kind] ? {} : { skip: `${kind.split('-')[0]} is not installed (.ci/run installs it)` };

  test(`${kind}: a WebSocket handshake, short and 64 KB echoes, a request beside it, freed on close`, opts, async (t) => {
    const s = await setUp(t, kind);
    assert.equal((await request(s.web.port, '/')).status, 200);
    const h = await wsHandshake(s.web.port, '/socket');
    assert.equal(h.status, 101, `${await h.body}\n${s.web.errorLog()}`);
    assert.equal(h.headers['sec-websocket-accept'], h.expectedAccept);
    const ws = h.ws!;
    assert.equal((await ws.echo('hello')).data.toString(), 'hello');
    const big = Buffer.alloc(64 * 1024);
    for (let i = 0; i < big.length; i++) big[i] = i % 253;
    const back = await ws.echo(big);
    assert.ok(back.data.equals(big), '64 KB come back unchanged');
    const plain = await request(s.web.port, '/');
    assert.equal(plain.status, 200);
    assert.match(plain.body, /^hello from/);
    assert.equal((await ws.echo('after')).data.toString(), 'after');
    await eventually(async () => { const c = await counts(s.agent.registry); return c.websockets === 1 && c.sessions === 0; }, 10_000, '1 WebSocket, 0 sessions');
    const closing = await ws.close();
    assert.equal(closing?.opcode, 8);
    await eventually(async () => { const c = await counts(s.agent.registry); return c.websockets === 0 && c.sessions === 0; }, 15_000, 'the WebSocket to be freed');
  });

  test(`${kind}: a \`ws\` client against a \`ws\` server app`, opts, async (t) => {
    const s = await setUp(t, kind, 'ws-echo');
    const ws = new WebSocket(`ws://127.0.0.1:${s.web.port}/live`);
    const got: (string | Buffer)[] = [];
    ws.on('message', (d: Buffer, binary: boolean) => got.push(binary ? d : d.toString()));
    await new Promise<void>((resolve, reject) => { ws.once('open', () => resolve()); ws.once('error', reject); });
    ws.send('hello');
    assert.equal(await eventually(() => got.shift(), 20_000, 'the echo'), 'hello');
    const big = Buffer.alloc(64 * 1024, 9);
    ws.send(big);
    assert.ok((await eventually(() => got.shift(), 20_000, 'the 64 KB echo') as Buffer).equals(big));
    const closed = new Promise<number>((r) => ws.once('close', (code: number) => r(code)));
    ws.close(1000);
    assert.equal(await closed, 1000);
    await eventually(async () => (await counts(s.agent.registry)).websockets === 0, 15_000, 'the socket to be freed');
  });
}

test('nginx keep-alive pair: plain requests keep their connections to the agent beside WebSockets', { skip: NGINX ? false : 'nginx is not installed' }, async (t) => {
  const s = await setUp(t, 'nginx-keepalive');
  const h = await wsHandshake(s.web.port, '/');
  assert.equal(h.status, 101);
  for (let i = 0; i < 10; i++) assert.equal((await request(s.web.port, '/')).status, 200);
  // The tunnel holds one connection; the plain requests left theirs open for the next.
  await eventually(() => agentConnections(s.agent.socket) >= 2, 10_000, 'kept-alive connections to the agent');
  await h.ws!.close();
});

test('nginx: an upgrade naming an app root outside --app-root-allow gets 403 as a request does', { skip: NGINX ? false : 'nginx is not installed' }, async (t) => {
  const dir = sharedDir(t, 'ptest-e2e-ws-deny-');
  const allowed = path.join(dir, 'allowed');
  fs.mkdirSync(allowed, { mode: 0o755 });
  const badApp = webApp(t, dir, 'websocket');
  const agent = await startAgent(t, dir, allowed);
  const web = await startNginx(t, dir, agent.socket, [badApp]);
  const h = await wsHandshake(web.port, '/');
  assert.equal(h.status, 403);
  assert.match(await h.body, /does not serve the app/);
});

test('the printed snippets carry WebSockets and say what Apache needs for them', async () => {
  const apache = await runCli(BIN.config, ['apache-snippet', '--socket', '/tmp/x.sock']);
  assert.match(apache.stdout, /ProxySet upgrade=websocket/);
  assert.match(apache.stdout, /Apache 2\.4\.47 or later/);
  assert.match(apache.stdout, /mod_proxy_wstunnel/);
  const help = await runCli(BIN.config, ['apache-snippet', '--help']);
  assert.match(help.stdout, /WebSockets pass through\s+mod_proxy_http/);
  const nginx = await runCli(BIN.config, ['nginx-snippet', '--socket', '/tmp/x.sock']);
  assert.match(nginx.stdout, /proxy_set_header Upgrade \$http_upgrade;/);
  const httpLevel = await runCli(BIN.config, ['nginx-snippet', '--http', '--socket', '/tmp/x.sock']);
  assert.match(httpLevel.stdout, /map \$http_upgrade \$passenger_connection/);
  assert.match(httpLevel.stdout, /server unix:\/tmp\/x\.sock;/);
});
