// Shared test helpers: start real servers from the built CLI, wait on
// conditions (never fixed sleeps), talk HTTP, and clean up every process.
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import type { TestContext } from 'node:test';
import { adminJson } from '../helper-agent/src/instance/admin-client';
import { selectInstance } from '../helper-agent/src/instance/registry';

export const ROOT = path.resolve(__dirname, '..', '..');
export const FIXTURES = path.join(ROOT, 'test', 'fixtures', 'apps');
const CLI_DIR = path.join(ROOT, 'dist', 'helper-agent', 'src', 'cli');
export const BIN = {
  passenger: path.join(CLI_DIR, 'passenger.js'),
  status: path.join(CLI_DIR, 'passenger-status.js'),
  config: path.join(CLI_DIR, 'passenger-config.js'),
  memoryStats: path.join(CLI_DIR, 'passenger-memory-stats.js'),
};

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Polls `fn` until it returns a truthy value (returned) or throws after `timeoutMs` with the last error. */
export async function eventually<T>(fn: () => T | Promise<T>, timeoutMs = 20_000, what = 'condition'): Promise<Exclude<T, null | undefined | false | 0 | ''>> {
  const end = Date.now() + timeoutMs;
  let last: unknown = null;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v as Exclude<T, null | undefined | false | 0 | ''>;
      last = null; // an earlier attempt's error no longer says why
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${(last as Error).message ?? last}` : ''}`);
    await sleep(50);
  }
}

/**
 * Waits until what a server printed matches `re`. A line logged after an
 * effect the test saw (a process stopped, an answer sent) can reach the
 * test's pipe after it, so a log line is asserted this way, not at once.
 */
export async function assertLogged(output: () => string, re: RegExp, timeoutMs = 20_000): Promise<void> {
  try {
    await eventually(() => re.test(output()), timeoutMs, `the log to match ${re}`);
  } catch {
    assert.match(output(), re);
  }
}

interface Cleanup {
  stops: (() => unknown)[];
  dirs: string[];
}
const cleanups = new WeakMap<TestContext, Cleanup>();

/**
 * One cleanup per test, run after it whatever happened: every process stop
 * (the last started first), then every temp dir. node:test runs `after` hooks
 * in registration order and skips the rest once one throws, so a directory
 * removed before its server stopped (or a stop that threw) would leave
 * processes running and the test file hanging on their pipes.
 */
function cleanupOf(t: TestContext): Cleanup {
  const known = cleanups.get(t);
  if (known) return known;
  const c: Cleanup = { stops: [], dirs: [] };
  cleanups.set(t, c);
  const report = (e: unknown): void => t.diagnostic(`cleanup: ${(e as Error).message}`);
  t.after(async () => {
    for (const stop of c.stops.reverse()) await Promise.resolve().then(stop).catch(report);
    for (const d of c.dirs) {
      try { fs.rmSync(d, { recursive: true, force: true, maxRetries: 5 }); } catch (e) { report(e); }
    }
  });
  return c;
}

/** Runs `stop` after the test, before any temp dir is removed; a throw is reported, not fatal. */
export function stopAfter(t: TestContext, stop: () => unknown): void {
  cleanupOf(t).stops.push(stop);
}

export function tmpDir(t: TestContext, prefix = 'ptest-'): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  // Run as root, the agent starts apps as other users (nobody for root's
  // files): they must reach the app and the instance registry in here.
  fs.chmodSync(d, 0o755);
  cleanupOf(t).dirs.push(d);
  return d;
}

/** Copies a fixture app into a fresh temp dir (so tests may add Passengerfile.json, tmp/, ...). */
export function appCopy(t: TestContext, fixture: string): string {
  const dir = tmpDir(t, `ptest-${fixture}-`);
  fs.cpSync(path.join(FIXTURES, fixture), dir, { recursive: true });
  return dir;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

export interface HttpResult {
  status: number;
  body: string;
  headers: http.IncomingHttpHeaders;
}

export function request(port: number, urlPath: string, opts: { method?: string; headers?: Record<string, string>; body?: string | Buffer; timeoutMs?: number } = {}): Promise<HttpResult> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: urlPath, method: opts.method ?? 'GET', headers: opts.headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString(), headers: res.headers }));
      res.on('error', reject);
    });
    req.setTimeout(opts.timeoutMs ?? 30_000, () => req.destroy(new Error(`timeout on ${urlPath}`)));
    req.on('error', reject);
    req.end(opts.body);
  });
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs one of our CLIs to completion. */
export function runCli(bin: string, args: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, ...args], { cwd: opts.cwd, env: { ...process.env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => { stdout += d; });
    child.stderr.on('data', (d) => { stderr += d; });
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`${path.basename(bin)} ${args.join(' ')} did not finish`)); }, opts.timeoutMs ?? 60_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

function alive(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0];
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}
export { alive as isAlive };

export interface Server {
  port: number;
  registry: string;
  appDir: string;
  child: ChildProcess;
  /** Everything the server printed (banner, log lines, app output). */
  output(): string;
  url(p?: string): string;
  instanceDir(): string;
  status(): Promise<StatusDoc>;
  appPids(): Promise<number[]>;
  stop(): Promise<number | null>;
}

export interface StatusDoc {
  schema: number;
  max_pool_size: number;
  process_count: number;
  groups: { name: string; app_root: string; queue: number; spawning: number; last_spawn_error: string | null; processes: { pid: number; sessions: number; websockets: number; processed: number; state: string; leave_reason: string | null; private_dirty_kb: number | null; cpu_percent: number | null; uptime_s: number; last_used: number }[] }[];
  instance: { name: string; dir: string; watchdog_pid: number; core_pid: number };
}

/**
 * The pool of the one server in `registry`, straight from its admin API (the
 * document `passenger-status --show=json` prints): polling it costs no
 * process. The CLI itself is tested on its own. While a restarted core has
 * yet to bind its admin socket (it serves requests first), it is asked again.
 */
export async function poolStatus(registry: string): Promise<StatusDoc> {
  const end = Date.now() + 10_000;
  for (;;) {
    try {
      return await adminJson<StatusDoc>(selectInstance(registry), 'GET', '/pool.json');
    } catch (e) {
      if (!/ECONNREFUSED|ENOENT/.test((e as Error).message) || Date.now() > end) throw e;
      await sleep(50);
    }
  }
}

/** The PIDs of the live app processes in a pool document, in order. */
export function alivePids(doc: StatusDoc): number[] {
  return doc.groups.flatMap((g) => g.processes.filter((p) => p.state === 'alive').map((p) => p.pid)).sort((a, b) => a - b);
}

const started = new Set<ChildProcess>();

/** Kills what a server left: the watchdog, its core and every app process group it recorded (pid-exact). */
export function killEverything(registry: string, watchdogPid?: number): void {
  let dirs: string[] = [];
  try { dirs = fs.readdirSync(registry).filter((n) => n.startsWith('passenger-ts.')).map((n) => path.join(registry, n)); } catch { /* none */ }
  for (const d of dirs) {
    for (const f of ['core.pid', 'watchdog.pid']) {
      try {
        const pid = parseInt(fs.readFileSync(path.join(d, f), 'utf8'), 10);
        if (pid > 1 && alive(pid)) process.kill(pid, 'SIGKILL');
      } catch { /* gone */ }
    }
    let recs: string[] = [];
    try { recs = fs.readdirSync(path.join(d, 'processes')); } catch { /* none */ }
    for (const r of recs) {
      const pid = Number(r);
      if (pid > 1 && alive(pid)) { try { process.kill(-pid, 'SIGKILL'); } catch { /* gone */ } }
    }
  }
  if (watchdogPid && alive(watchdogPid)) { try { process.kill(watchdogPid, 'SIGKILL'); } catch { /* gone */ } }
}

/**
 * Starts `passenger start APP --port <free> --address 127.0.0.1 --instance-registry-dir <tmp> ...args`
 * in the foreground and waits until it serves. Stopped and cleaned up after the test.
 */
export async function startServer(t: TestContext, appDir: string, args: string[] = [], opts: { waitFor?: 'ready' | 'none'; env?: NodeJS.ProcessEnv; registry?: string; registryOwner?: { uid: number; gid: number } } = {}): Promise<Server> {
  const port = await freePort();
  const registry = opts.registry ?? tmpDir(t, 'ptest-reg-');
  // A server that runs as another user (--user) writes its instance and PID file there.
  if (opts.registryOwner) fs.chownSync(registry, opts.registryOwner.uid, opts.registryOwner.gid);
  const child = spawn(process.execPath, [BIN.passenger, 'start', appDir, '--port', String(port), '--address', '127.0.0.1',
    '--instance-registry-dir', registry, '--pid-file', path.join(registry, 'server.pid'), ...args], {
    // The agent checks the pool's invariants after every change (a broken one is logged and crashes the core).
    env: { ...process.env, PASSENGER_SELF_CHECK: '1', ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  started.add(child);
  let out = '';
  child.stdout!.on('data', (d) => { out += d; });
  child.stderr!.on('data', (d) => { out += d; });
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  const server: Server = {
    port,
    registry,
    appDir,
    child,
    output: () => out,
    url: (p = '/') => `http://127.0.0.1:${port}${p}`,
    instanceDir() {
      const n = fs.readdirSync(registry).find((x) => x.startsWith('passenger-ts.'));
      if (!n) throw new Error(`no instance dir in ${registry}`);
      return path.join(registry, n);
    },
    status: () => poolStatus(registry),
    appPids: async () => alivePids(await poolStatus(registry)),
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      child.kill('SIGTERM');
      let timer: NodeJS.Timeout | undefined;
      const code = await Promise.race([exited, new Promise<'timeout'>((r) => { timer = setTimeout(() => r('timeout'), 30_000); })]);
      clearTimeout(timer);
      if (code === 'timeout') {
        killEverything(registry, child.pid);
        throw new Error(`server did not stop within 30 s; output:\n${out}`);
      }
      return code;
    },
  };
  stopAfter(t, async () => {
    try { await server.stop(); } catch { /* killed below */ }
    killEverything(registry, child.pid);
    started.delete(child);
    const broken = /pool invariant violated: .*/.exec(out);
    if (broken) throw new Error(`the agent found a broken invariant: ${broken[0]}`);
  });
  if (opts.waitFor !== 'none') await untilPrinted(child, () => out, 'Accessible via', 'the server to start');
  return server;
}

/**
 * Resolves once `child` has printed `marker` (`output()` holds all it
 * printed); rejects with that output as soon as it exits instead, or after
 * `timeoutMs`.
 */
export function untilPrinted(child: ChildProcess, output: () => string, marker: string, what: string, timeoutMs = 30_000): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = (err?: Error): void => {
      clearTimeout(timer);
      child.stdout?.off('data', check);
      child.stderr?.off('data', check);
      child.off('exit', exited);
      if (err) reject(err); else resolve();
    };
    // Listeners added after the caller's own: output() already holds the chunk.
    const check = (): void => { if (output().includes(marker)) done(); };
    // Its last words may still be in the pipes: they are read first (for up to a second).
    const exited = (code: number | null, signal: string | null): void => {
      const fail = (): void => done(new Error(`exited (${signal ?? code}) before ${what}:\n${output()}`));
      const pipes = [child.stdout, child.stderr].filter((p) => p !== null && !p.readableEnded);
      let open = pipes.length;
      for (const p of pipes) p!.once('end', () => { if (--open === 0) fail(); });
      if (open === 0) fail(); else setTimeout(fail, 1000).unref();
    };
    const timer = setTimeout(() => done(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; output so far:\n${output()}`)), timeoutMs);
    child.stdout?.on('data', check);
    child.stderr?.on('data', check);
    child.on('exit', exited);
    if (child.exitCode !== null || child.signalCode !== null) exited(child.exitCode, child.signalCode);
    else check();
  });
}

process.on('exit', () => {
  for (const c of started) if (c.pid && alive(c.pid)) { try { process.kill(c.pid, 'SIGKILL'); } catch { /* gone */ } }
});

export interface SteadyLoad {
  /** Requests done so far. */
  count(): number;
  /** Requests started so far: a mark to tell the failures of requests sent after it (`failedFrom`). */
  started(): number;
  /** Stops the load; resolves with what failed (status and body). */
  stop(): Promise<{ count: number; failures: string[]; failedFrom(mark: number): string[] }>;
}

/**
 * `conns` clients sending GET `urlPath` back to back (a new connection each)
 * until stopped, or at most `limitMs` and 50,000 requests, so a test that fails
 * before stopping it does not load the machine (or keep its file alive) forever.
 */
export function steadyLoad(port: number, conns = 4, urlPath = '/pid', limitMs = 120_000): SteadyLoad {
  let stopped = false;
  let count = 0;
  let started = 0;
  const failed: { seq: number; what: string }[] = [];
  const end = Date.now() + limitMs;
  const loops = Promise.all(Array.from({ length: conns }, async () => {
    while (!stopped && started < 50_000 && Date.now() < end) {
      const seq = started++;
      const r = await request(port, urlPath).catch((e: Error) => ({ status: 0, body: e.message }));
      count++;
      if (r.status !== 200) failed.push({ seq, what: `${r.status} ${r.body.slice(0, 80)}` });
    }
  }));
  const failedFrom = (mark: number): string[] => failed.filter((f) => f.seq >= mark).map((f) => f.what);
  return {
    count: () => count,
    started: () => started,
    stop: async () => {
      stopped = true;
      await loops;
      return { count, failures: failedFrom(0), failedFrom };
    },
  };
}

export const IS_ROOT = process.getuid?.() === 0;
/** For tests that switch users: skipped, with the reason, unless run as root (as CI does). */
export const ROOT_ONLY = IS_ROOT ? {} : { skip: 'needs root: only root can run apps as other users' };

/** What /proc/PID/status says a process runs as: real, effective, saved and fs ids, groups, effective capabilities. */
export function idsOf(pid: number): { uid: number[]; gid: number[]; groups: number[]; capEff: string } {
  const text = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const field = (name: string): string => new RegExp(`^${name}:\\s*(.*)$`, 'm').exec(text)?.[1].trim() ?? '';
  const nums = (v: string): number[] => v.split(/\s+/).filter(Boolean).map(Number);
  return { uid: nums(field('Uid')), gid: nums(field('Gid')), groups: nums(field('Groups')).sort((a, b) => a - b), capEff: field('CapEff') };
}

/** The environment a process started with (as root, any process's). */
export function environOf(pid: number): Record<string, string> {
  const out: Record<string, string> = {};
  for (const kv of fs.readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0')) {
    const eq = kv.indexOf('=');
    if (eq > 0) out[kv.slice(0, eq)] = kv.slice(eq + 1);
  }
  return out;
}

export interface TestUser { name: string; uid: number; gid: number; group: string; groupGid: number }

function run(cmd: string, args: string[]): void {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr || r.error?.message}`);
}

/**
 * A user made for the test (useradd), with its own primary group and one
 * supplementary group; both removed after the test (userdel, groupdel). Root only.
 */
export function testUser(t: TestContext): TestUser {
  const tag = `${process.pid.toString(36)}${Math.random().toString(36).slice(2, 6)}`;
  const name = `pts${tag}`;
  const group = `ptsg${tag}`;
  run('groupadd', [group]);
  try {
    run('useradd', ['--no-create-home', '--home-dir', `/nonexistent-${name}`, '--shell', '/bin/sh', '--user-group', '--groups', group, name]);
  } catch (e) {
    run('groupdel', [group]);
    throw e;
  }
  // After every process of the test has stopped (cleanup runs in reverse).
  cleanupOf(t).stops.unshift(() => { spawnSync('userdel', [name]); spawnSync('groupdel', [group]); });
  const ids = (flag: string, who = name): number => Number(spawnSync('id', [flag, who], { encoding: 'utf8' }).stdout.trim());
  const groupGid = Number(spawnSync('getent', ['group', group], { encoding: 'utf8' }).stdout.split(':')[2]);
  return { name, uid: ids('-u'), gid: ids('-g'), group, groupGid };
}

/** Gives a directory tree to a user (chown -R), readable by others too. */
export function giveTo(dir: string, uid: number, gid: number): void {
  fs.chownSync(dir, uid, gid);
  fs.chmodSync(dir, 0o755);
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) giveTo(p, uid, gid);
    else fs.chownSync(p, uid, gid);
  }
}

/**
 * Copies packages and everything they depend on from this checkout's
 * node_modules into an app's own node_modules, so an app copied to a temp
 * dir (and run as another user) finds them.
 */
export function copyModules(appDir: string, names: string[]): void {
  const seen = new Set<string>();
  const visit = (name: string): void => {
    if (seen.has(name)) return;
    seen.add(name);
    const src = path.join(ROOT, 'node_modules', name);
    if (!fs.existsSync(src)) return; // an optional dependency not installed here
    fs.cpSync(src, path.join(appDir, 'node_modules', name), { recursive: true, dereference: true });
    const pkg = JSON.parse(fs.readFileSync(path.join(src, 'package.json'), 'utf8')) as { dependencies?: Record<string, string> };
    for (const dep of Object.keys(pkg.dependencies ?? {})) visit(dep);
  };
  for (const n of names) visit(n);
}

/**
 * Whether another user (nobody) can run this checkout's tools: every
 * directory down to it passable by others. A checkout under /root is not;
 * the parts of tests that run a tool as another user are skipped there.
 */
export function checkoutSharedWithOthers(): boolean {
  for (let d = ROOT; ; d = path.dirname(d)) {
    try {
      if ((fs.statSync(d).mode & 0o001) === 0) return false;
    } catch {
      return false;
    }
    if (d === path.dirname(d)) return true;
  }
}
