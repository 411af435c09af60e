// Real nginx and Apache in front of a real agent, with the shipped snippets.
// Each instance is private: own config, pid file, logs and ports; nothing of
// the system's web servers is read or changed.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import type { TestContext } from 'node:test';
import { BIN, ROOT, alivePids, eventually, freePort, isAlive, killEverything, poolStatus, stopAfter, tmpDir, untilPrinted, type HttpResult } from '../helpers';

export const NGINX = ['/usr/sbin/nginx', '/usr/bin/nginx'].find((f) => fs.existsSync(f)) ?? null;
export const APACHE = ['/usr/sbin/apache2', '/usr/sbin/httpd'].find((f) => fs.existsSync(f)) ?? null;
const APACHE_MODULES = '/usr/lib/apache2/modules';

/** A directory the web server's user (www-data) can traverse and read. */
export function sharedDir(t: TestContext, prefix: string): string {
  const d = tmpDir(t, prefix);
  fs.chmodSync(d, 0o755);
  return d;
}

export function chmodTree(dir: string): void {
  fs.chmodSync(dir, 0o755);
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) chmodTree(p);
    else fs.chmodSync(p, 0o644);
  }
}

/** A copy of a fixture app with a public/ directory holding hello.txt, readable by www-data. */
export function webApp(t: TestContext, under: string, fixture = 'basic'): string {
  const dir = path.join(under, `app-${Math.random().toString(36).slice(2, 8)}`);
  fs.cpSync(path.join(ROOT, 'test', 'fixtures', 'apps', fixture), dir, { recursive: true });
  fs.mkdirSync(path.join(dir, 'public'));
  fs.writeFileSync(path.join(dir, 'public', 'hello.txt'), 'static file\n');
  fs.mkdirSync(path.join(dir, 'tmp'));
  chmodTree(dir);
  return dir;
}

/** The inodes of the sockets listening on 127.0.0.1:`port` (/proc/net/tcp). */
function listenerInodes(port: number): string[] {
  const local = `0100007F:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  const out: string[] = [];
  for (const line of fs.readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f[1] === local && f[3] === '0A') out.push(f[9]);
  }
  return out;
}

/** Whether process `pid` holds a socket listening on each of `ports`, not some other program. */
function listensOn(pid: number, ports: number[]): boolean {
  let held: Set<string>;
  try {
    held = new Set(fs.readdirSync(`/proc/${pid}/fd`).map((fd) => { try { return fs.readlinkSync(`/proc/${pid}/fd/${fd}`); } catch { return ''; } }));
  } catch { return false; }
  return ports.every((port) => listenerInodes(port).some((inode) => held.has(`socket:[${inode}]`)));
}

/**
 * Starts a web server on free ports (`start` spawns its master for the ports
 * it is given, its stderr piped) and waits until that master holds every
 * listening socket. A free port can be taken by a test running beside this
 * one before the server binds it, and a connect would then reach the other
 * program: so ownership is checked, and a failed bind means new ports and
 * another start (three at most).
 */
async function listenOnFreePorts(t: TestContext, name: string, count: number, start: (ports: number[]) => ChildProcess, errorLog: () => string): Promise<{ child: ChildProcess; ports: number[] }> {
  for (let attempt = 1; ; attempt++) {
    const ports = await Promise.all(Array.from({ length: count }, () => freePort()));
    const child = start(ports);
    let stderr = '';
    child.stderr?.on('data', (d) => { stderr += d; });
    stopAfter(t, () => stopWebServer(child, name));
    const up = await eventually(() => child.exitCode !== null ? 'exited' : listensOn(child.pid as number, ports) && 'listening', 15_000, `${name} to listen on ${ports.join(', ')}`);
    if (up === 'listening') return { child, ports };
    const log = `${stderr}${errorLog()}`;
    if (attempt === 3 || !/Address already in use/.test(log)) throw new Error(`${name} exited: ${log}`);
  }
}

export interface Agent {
  child: ChildProcess;
  socket: string;
  registry: string;
  output(): string;
  instanceDir(): string;
}

/** Where startAgent() has the agent for `dir` listen: a web server may be set up for it before it starts. */
export function agentSocket(dir: string): string {
  return path.join(dir, 'run', 'agent.sock');
}

/** `passenger agent` on a private socket (agentSocket(dir)), allowing app roots under `allow`. */
export async function startAgent(t: TestContext, dir: string, allow: string, extra: string[] = []): Promise<Agent> {
  const socket = agentSocket(dir);
  const registry = path.join(dir, 'reg');
  fs.mkdirSync(registry, { mode: 0o755 });
  const child = spawn(process.execPath, [BIN.passenger, 'agent', '--socket', socket, '--app-root-allow', allow,
    '--instance-registry-dir', registry, '--min-instances', '2', '--max-pool-size', '2', '--stat-throttle-rate', '1', ...extra], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, PASSENGER_SELF_CHECK: '1' } });
  let out = '';
  child.stdout!.on('data', (d) => { out += d; });
  child.stderr!.on('data', (d) => { out += d; });
  const agent: Agent = {
    child, socket, registry,
    output: () => out,
    instanceDir: () => path.join(registry, fs.readdirSync(registry).find((n) => n.startsWith('passenger-ts.')) as string),
  };
  stopAfter(t, async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      await eventually(() => child.exitCode !== null || child.signalCode !== null, 30_000, 'the agent to stop').catch(() => undefined);
    }
    killEverything(registry, child.pid);
    const broken = /pool invariant violated: .*/.exec(out);
    if (broken) throw new Error(`the agent found a broken invariant: ${broken[0]}`);
  });
  await untilPrinted(child, () => out, 'serving on', 'the agent to start');
  return agent;
}

export interface WebServer {
  port: number;
  masterPid: number;
  reload(): void;
  workerPids(): number[];
  errorLog(): string;
}

function snippet(server: 'nginx' | 'apache', socket: string, dir: string, http = false): string {
  const r = spawnSync(process.execPath, [BIN.config, `${server}-snippet`, '--socket', socket, ...(http ? ['--http'] : [])], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(r.stderr);
  const file = path.join(dir, `${server}-passenger${http ? '-http' : ''}.conf`);
  fs.writeFileSync(file, r.stdout);
  return file;
}

/** A snippet printed by `passenger-config <server>-snippet ARGS...` for the agent's socket, in a file of the test's directory. */
export function printedSnippet(server: 'nginx' | 'apache', socket: string, dir: string, name: string, args: string[]): string {
  const r = spawnSync(process.execPath, [BIN.config, `${server}-snippet`, '--socket', socket, ...args], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(r.stderr);
  const file = path.join(dir, `${server}-${name}.conf`);
  fs.writeFileSync(file, r.stdout);
  return file;
}

function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const n of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(n)) continue;
    try {
      const st = fs.readFileSync(`/proc/${n}/stat`, 'utf8');
      const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
      if (Number(f[1]) === pid && f[0] !== 'Z') out.push(Number(n));
    } catch { /* gone */ }
  }
  return out;
}

/** TERM to the web server's master, KILL if it has not stopped after 15 s. */
async function stopWebServer(child: ChildProcess, name: string): Promise<void> {
  if (!child.pid || !isAlive(child.pid)) return;
  child.kill('SIGTERM');
  await eventually(() => !isAlive(child.pid as number), 15_000, `${name} to stop`).catch(() => child.kill('SIGKILL'));
}

/**
 * nginx with one server block per app root: `root <app>/public; include <snippet>;`.
 * `keepalive`: the keep-alive pair instead (passenger-http.conf at the http
 * level, as `nginx-snippet --http` prints it, and passenger-keepalive.conf).
 */
export async function startNginx(t: TestContext, dir: string, socket: string, appRoots: string[], opts: { keepalive?: boolean } = {}): Promise<WebServer & { ports: number[] }> {
  const inc = opts.keepalive ? path.join(ROOT, 'nginx-conf', 'passenger-keepalive.conf') : snippet('nginx', socket, dir);
  const httpLevel = opts.keepalive ? `  include ${snippet('nginx', socket, dir, true)};\n` : '';
  return startNginxWith(t, dir, appRoots.map((root) => `root ${root}/public;\n    include ${inc};`), { httpLevel });
}

/** nginx with one server block per body (its directives), on free ports. */
export async function startNginxWith(t: TestContext, dir: string, bodies: string[], opts: { httpLevel?: string } = {}): Promise<WebServer & { ports: number[] }> {
  if (!NGINX) throw new Error('nginx is not installed');
  const tmp = path.join(dir, 'nginx-tmp');
  fs.mkdirSync(tmp);
  const conf = path.join(dir, 'nginx.conf');
  const errorLog = (): string => { try { return fs.readFileSync(path.join(dir, 'nginx-error.log'), 'utf8'); } catch { return ''; } };
  const { child, ports } = await listenOnFreePorts(t, 'nginx', bodies.length, (ports) => {
    fs.writeFileSync(conf, `user www-data;
worker_processes 2;
daemon off;
pid ${dir}/nginx.pid;
error_log ${dir}/nginx-error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path ${tmp}/body; proxy_temp_path ${tmp}/proxy; fastcgi_temp_path ${tmp}/fcgi; uwsgi_temp_path ${tmp}/uwsgi; scgi_temp_path ${tmp}/scgi;
${opts.httpLevel ?? ''}${bodies.map((body, i) => `  server {
    listen 127.0.0.1:${ports[i]};
    ${body}
  }`).join('\n')}
}
`);
    return spawn(NGINX, ['-c', conf, '-p', dir, '-e', path.join(dir, 'nginx-error.log')], { stdio: ['ignore', 'ignore', 'pipe'] });
  }, errorLog);
  const masterPid = child.pid as number;
  return {
    port: ports[0], ports, masterPid,
    reload: () => { process.kill(masterPid, 'SIGHUP'); },
    workerPids: () => childrenOf(masterPid),
    errorLog,
  };
}

/** A private Apache with one VirtualHost per app root: DocumentRoot <app>/public and the snippet. */
export async function startApache(t: TestContext, dir: string, socket: string, appRoots: string[]): Promise<WebServer & { ports: number[] }> {
  const inc = snippet('apache', socket, dir);
  return startApacheWith(t, dir, appRoots.map((root) => `DocumentRoot ${root}/public
  <Directory ${root}/public>
    Require all granted
  </Directory>
  Include ${inc}`));
}

/** A private Apache with one VirtualHost per body (its directives), on free ports. */
export async function startApacheWith(t: TestContext, dir: string, bodies: string[]): Promise<WebServer & { ports: number[] }> {
  if (!APACHE) throw new Error('apache2 is not installed');
  for (const sub of ['apache-run', 'apache-lock', 'apache-log']) fs.mkdirSync(path.join(dir, sub));
  const mods = ['mpm_event', 'authz_core', 'mime', 'dir', 'alias', 'proxy', 'proxy_http', 'headers', 'rewrite'];
  const conf = path.join(dir, 'apache2.conf');
  const env = {
    ...process.env,
    APACHE_RUN_DIR: path.join(dir, 'apache-run'), APACHE_PID_FILE: path.join(dir, 'apache-run', 'apache2.pid'),
    APACHE_LOCK_DIR: path.join(dir, 'apache-lock'), APACHE_LOG_DIR: path.join(dir, 'apache-log'),
  };
  const errorLog = (): string => { try { return fs.readFileSync(path.join(dir, 'apache-log', 'error.log'), 'utf8'); } catch { return ''; } };
  const { child, ports } = await listenOnFreePorts(t, 'apache', bodies.length, (ports) => {
    fs.writeFileSync(conf, `ServerRoot ${dir}
DefaultRuntimeDir ${dir}/apache-run
PidFile ${dir}/apache-run/apache2.pid
Mutex file:${dir}/apache-lock default
ErrorLog ${dir}/apache-log/error.log
LogLevel warn
User www-data
Group www-data
ServerName 127.0.0.1
${ports.map((p) => `Listen 127.0.0.1:${p}`).join('\n')}
${mods.map((m) => `LoadModule ${m}_module ${APACHE_MODULES}/mod_${m}.so`).join('\n')}
TypesConfig /etc/mime.types
StartServers 2
${bodies.map((body, i) => `<VirtualHost 127.0.0.1:${ports[i]}>
  ServerName 127.0.0.1
  ${body}
</VirtualHost>`).join('\n')}
`);
    return spawn(APACHE, ['-f', conf, '-k', 'start', '-DFOREGROUND'], { stdio: ['ignore', 'ignore', 'pipe'], env });
  }, errorLog);
  const masterPid = child.pid as number;
  return {
    port: ports[0], ports, masterPid,
    // apachectl graceful = SIGUSR1 to the parent.
    reload: () => { process.kill(masterPid, 'SIGUSR1'); },
    workerPids: () => childrenOf(masterPid),
    errorLog,
  };
}

export async function appPidsOf(registry: string): Promise<number[]> {
  return alivePids(await poolStatus(registry));
}

/**
 * A POST of `bytes` to 127.0.0.1:`port`, chunked or with a Content-Length,
 * written in `slice`-byte writes as the socket takes them; resolves with the
 * answer (a minute at most).
 */
export function upload(port: number, urlPath: string, bytes: number, opts: { chunked: boolean; headers?: Record<string, string>; slice?: number }): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const framing = opts.chunked ? { 'transfer-encoding': 'chunked' } : { 'content-length': String(bytes) };
    const req = http.request({ host: '127.0.0.1', port, path: urlPath, method: 'POST', agent: false, headers: { ...framing, ...opts.headers } }, (res) => {
      const got: Buffer[] = [];
      res.on('data', (c: Buffer) => got.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(got).toString(), headers: res.headers }));
      res.on('error', reject);
    });
    req.setTimeout(60_000, () => req.destroy(new Error(`timeout on ${urlPath}`)));
    req.on('error', reject);
    const slice = Buffer.alloc(opts.slice ?? 64 * 1024, 'b');
    let left = bytes;
    const pump = (): void => {
      while (left > 0) {
        const n = Math.min(left, slice.length);
        left -= n;
        if (!req.write(n === slice.length ? slice : slice.subarray(0, n))) return void req.once('drain', pump);
      }
      req.end();
    };
    pump();
  });
}
