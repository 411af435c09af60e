#!/usr/bin/env node
// `npm run bench:ws`: WebSockets side by side, in one run, on 127.0.0.1 only
// and bounded in time. The same dependency-free echo app (bench/ws-app) under
// `direct` (one plain Node process), `ours` (passenger start, proxy mode, 2
// processes), `ours-direct-mode` (the same with --direct-mode), `nginx-direct`
// (nginx proxying to 2 plain Node processes) and `passenger` (Phusion
// Passenger standalone, builtin engine, 2 processes).
//   echo: N connections, each sending a 32-byte message and waiting for its
//         echo, back to back, for S seconds: messages/s and round-trip p50/p99.
//   idle: M idle WebSockets through `ours`: the agent's private dirty memory
//         (watchdog + core) before and after, per socket; then every socket
//         must still echo.
// Ratios against `direct` are what count (the machine is shared).
//
//   npm run bench:ws -- [--conns 50] [--seconds 10] [--idle 10000] [--targets direct,ours,ours-direct-mode,nginx-direct,passenger] [--scenarios echo,idle]
'use strict';
const crypto = require('crypto');
const fs = require('fs');
const http = require('http');
const net = require('net');
const os = require('os');
const path = require('path');
const { spawn, spawnSync } = require('child_process');

const ROOT = path.resolve(__dirname, '..');
const PASSENGER = path.join(ROOT, 'dist', 'helper-agent', 'src', 'cli', 'passenger.js');
const APP = path.join(__dirname, 'ws-app', 'app.js');

function parseArgs(argv) {
  const a = { conns: 50, seconds: 10, idle: 10000, targets: ['direct', 'ours', 'ours-direct-mode', 'nginx-direct', 'passenger'], scenarios: ['echo', 'idle'] };
  for (let i = 0; i < argv.length; i++) {
    const [k, v] = argv[i].includes('=') ? argv[i].split('=') : [argv[i], argv[++i]];
    if (k === '--conns') a.conns = Number(v);
    else if (k === '--seconds') a.seconds = Number(v);
    else if (k === '--idle') a.idle = Number(v);
    else if (k === '--targets') a.targets = v.split(',');
    else if (k === '--scenarios') a.scenarios = v.split(',');
    else { console.error(`unknown argument ${k}`); process.exit(2); }
  }
  return a;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const log = (m) => process.stderr.write(`[bench:ws] ${m}\n`);

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
  });
}

function get(port) {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/', agent: false, timeout: 2000 }, (res) => { res.resume(); res.on('end', () => resolve(res.statusCode)); });
    req.on('error', () => resolve(0));
    req.on('timeout', () => req.destroy());
  });
}

async function waitUp(port, what) {
  const end = Date.now() + 60_000;
  while (Date.now() < end) {
    if ((await get(port)) === 200) return;
    await sleep(100);
  }
  throw new Error(`${what} did not answer on ${port} within 60 s`);
}

function privateDirtyKB(pid) {
  try {
    const txt = fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
    let kb = 0;
    for (const m of txt.matchAll(/^Private_Dirty:\s+(\d+) kB/gm)) kb += Number(m[1]);
    return kb;
  } catch { return 0; }
}

function maxOpenFiles(pid) {
  try {
    const m = /^Max open files\s+(\d+)/m.exec(fs.readFileSync(`/proc/${pid}/limits`, 'utf8'));
    return m ? Number(m[1]) : 1024;
  } catch { return 1024; }
}

const alive = (pid) => { try { process.kill(pid, 0); return true; } catch { return false; } };

/** Stops what a target started, by PID: TERM, then KILL after 20 s. */
async function stopPids(pids) {
  for (const p of pids) { try { process.kill(p, 'SIGTERM'); } catch { /* gone */ } }
  const end = Date.now() + 20_000;
  while (pids.some(alive) && Date.now() < end) await sleep(100);
  for (const p of pids) { if (alive(p)) { try { process.kill(p, 'SIGKILL'); } catch { /* gone */ } } }
}

function nodeApp(port) {
  const child = spawn(process.execPath, [APP], { env: { ...process.env, PORT: String(port) }, stdio: 'ignore' });
  return child;
}

// ------------------------------------------------------------------ targets

/** A new temp dir (readable by the apps' user) holding app/app.js, the echo app. */
function appCopy(prefix) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  fs.chmodSync(dir, 0o755);
  const appDir = path.join(dir, 'app');
  fs.mkdirSync(appDir);
  fs.copyFileSync(APP, path.join(appDir, 'app.js'));
  return { dir, appDir };
}

const TARGETS = {
  async direct() {
    const port = await freePort();
    const app = nodeApp(port);
    await waitUp(port, 'direct');
    return { port, agentPids: () => [], stop: () => stopPids([app.pid]) };
  },
  ours: (extra = []) => async () => {
    const port = await freePort();
    const { dir, appDir } = appCopy('bench-ws-');
    const reg = path.join(dir, 'reg');
    fs.mkdirSync(reg);
    const w = spawn(process.execPath, [PASSENGER, 'start', appDir, '--port', String(port), '--address', '127.0.0.1', '--min-instances', '2',
      '--max-pool-size', '2', '--environment', 'production', '--instance-registry-dir', reg, '--log-file', path.join(dir, 'log'), ...extra], { stdio: 'ignore' });
    await waitUp(port, 'ours');
    const inst = () => path.join(reg, fs.readdirSync(reg).find((n) => n.startsWith('passenger-ts.')) || '');
    const pidOf = (f) => { try { return Number(fs.readFileSync(path.join(inst(), f), 'utf8')); } catch { return 0; } };
    // Both app processes up, so every target serves with two.
    const end = Date.now() + 60_000;
    while (Date.now() < end) {
      let n = 0;
      try { n = fs.readdirSync(path.join(inst(), 'processes')).length; } catch { /* not yet */ }
      if (n >= 2) break;
      await sleep(100);
    }
    const core = pidOf('core.pid');
    return {
      port,
      agentPids: () => [w.pid, core].filter(Boolean),
      stop: async () => {
        let apps = [];
        try { apps = fs.readdirSync(path.join(inst(), 'processes')).map(Number); } catch { /* none */ }
        await stopPids([w.pid]);
        for (const p of [core, ...apps]) { if (p > 1 && alive(p)) { try { process.kill(p, 'SIGKILL'); } catch { /* gone */ } } }
        fs.rmSync(dir, { recursive: true, force: true });
      },
    };
  },
  async 'nginx-direct'() {
    const nginx = ['/usr/sbin/nginx', '/usr/bin/nginx'].find((f) => fs.existsSync(f));
    if (!nginx) throw new Error('nginx is not installed');
    const [port, a, b] = [await freePort(), await freePort(), await freePort()];
    const apps = [nodeApp(a), nodeApp(b)];
    await waitUp(a, 'app a');
    await waitUp(b, 'app b');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-ws-nginx-'));
    fs.writeFileSync(path.join(dir, 'nginx.conf'), `daemon off;
worker_processes 2;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log;
events { worker_connections 8192; }
http {
  access_log off;
  client_body_temp_path ${dir}/body; proxy_temp_path ${dir}/proxy; fastcgi_temp_path ${dir}/fcgi; uwsgi_temp_path ${dir}/uwsgi; scgi_temp_path ${dir}/scgi;
  map $http_upgrade $connection_upgrade { default upgrade; '' ''; }
  upstream app { server 127.0.0.1:${a}; server 127.0.0.1:${b}; keepalive 64; }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://app;
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
      proxy_read_timeout 3600s;
    }
  }
}
`);
    const ng = spawn(nginx, ['-p', dir, '-c', path.join(dir, 'nginx.conf'), '-e', path.join(dir, 'error.log')], { stdio: 'ignore' });
    await waitUp(port, 'nginx');
    return { port, agentPids: () => [], stop: async () => { await stopPids([ng.pid]); await stopPids(apps.map((x) => x.pid)); fs.rmSync(dir, { recursive: true, force: true }); } };
  },
};

/** The pids the app's `/` names ("hello from PID"), `n` requests at once. */
function appPids(port, n) {
  return Promise.all(Array.from({ length: n }, () => new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/', agent: false, timeout: 2000 }, (res) => {
      let body = '';
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve(Number((/hello from (\d+)/.exec(body) || [])[1]) || 0));
    });
    req.on('error', () => resolve(0));
    req.on('timeout', () => req.destroy());
  }))).then((pids) => new Set(pids.filter(Boolean)));
}

// Phusion Passenger standalone (builtin engine), with the pool flags `ours` has.
TARGETS.passenger = async () => {
  const bin = ['/usr/bin/passenger', '/usr/local/bin/passenger'].find((f) => fs.existsSync(f));
  if (!bin) throw new Error('Phusion Passenger is not installed');
  const port = await freePort();
  const { dir, appDir } = appCopy('bench-ws-psg-');
  fs.mkdirSync(path.join(dir, 'tmp'));
  const launcher = spawn(bin, ['start', appDir, '--engine=builtin', '--app-type', 'node', '--startup-file', 'app.js', '--port', String(port),
    '--address', '127.0.0.1', '--min-instances', '2', '--max-pool-size', '2', '--environment', 'production', '--log-file', path.join(dir, 'log'),
    '--pid-file', path.join(dir, 'passenger.pid'), '--disable-security-update-check', '--disable-anonymous-telemetry'],
  // Its --startup-file is found from the working directory.
  { cwd: appDir, stdio: 'ignore', env: { ...process.env, TMPDIR: path.join(dir, 'tmp') } });
  // One SIGTERM to the launcher stops its watchdog, core and apps.
  const stop = async () => { await stopPids([launcher.pid]); fs.rmSync(dir, { recursive: true, force: true }); };
  try {
    await waitUp(port, 'passenger');
    // It spawns the second process after the first request: wait until both answer.
    const end = Date.now() + 60_000;
    while ((await appPids(port, 16)).size < 2) {
      if (Date.now() > end) throw new Error('passenger did not start its second process within 60 s');
      await sleep(200);
    }
  } catch (e) {
    let tail = '';
    try { tail = fs.readFileSync(path.join(dir, 'log'), 'utf8').trim().split('\n').slice(-5).join('\n'); } catch { /* no log */ }
    await stop();
    throw new Error(`${e.message}${tail ? `; its log ended:\n${tail}` : ''}`);
  }
  return { port, agentPids: () => [], stop };
};
TARGETS['ours-direct-mode'] = TARGETS.ours(['--direct-mode']);
TARGETS.ours = TARGETS.ours();

// ------------------------------------------------------------------ client

/** A WebSocket client connection by hand; messages from the server are counted as they complete. */
function wsOpen(port, urlPath, onMessage) {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    const key = crypto.randomBytes(16).toString('base64');
    let buf = Buffer.alloc(0);
    let open = false;
    const timer = setTimeout(() => { sock.destroy(); reject(new Error('handshake timeout')); }, 30_000);
    sock.setNoDelay(true);
    sock.on('error', (e) => { if (!open) { clearTimeout(timer); reject(e); } });
    sock.on('connect', () => sock.write(`GET ${urlPath} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`));
    sock.on('data', (d) => {
      buf = buf.length === 0 ? d : Buffer.concat([buf, d]);
      if (!open) {
        const end = buf.indexOf('\r\n\r\n');
        if (end === -1) return;
        if (!/^HTTP\/1\.1 101/.test(buf.toString('latin1', 0, 12))) { clearTimeout(timer); sock.destroy(); reject(new Error(`no 101: ${buf.toString('latin1', 0, 40)}`)); return; }
        open = true;
        clearTimeout(timer);
        buf = buf.subarray(end + 4);
        resolve(sock);
      }
      for (;;) {
        if (buf.length < 2) return;
        let len = buf[1] & 0x7f;
        let off = 2;
        if (len === 126) { if (buf.length < 4) return; len = buf.readUInt16BE(2); off = 4; }
        if (buf.length < off + len) return;
        buf = buf.subarray(off + len);
        onMessage(sock);
      }
    });
  });
}

/** A masked text frame (mask key 0: the payload goes as it is). */
const MESSAGE = Buffer.concat([Buffer.from([0x81, 0x80 | 32, 0, 0, 0, 0]), Buffer.alloc(32, 'x')]);

function percentile(sorted, p) {
  return sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

async function echoScenario(port, conns, seconds) {
  const rtts = [];
  let count = 0;
  let stopAt = 0;
  const sentAt = new Map();
  const onMessage = (sock) => {
    const now = performance.now();
    rtts.push(now - sentAt.get(sock));
    count++;
    if (now < stopAt) { sentAt.set(sock, performance.now()); sock.write(MESSAGE); } else sock.end();
  };
  const socks = [];
  for (let i = 0; i < conns; i++) socks.push(await wsOpen(port, `/echo${i}`, onMessage));
  // Warm up for a second, then measure.
  stopAt = performance.now() + 1000 + seconds * 1000;
  for (const s of socks) { sentAt.set(s, performance.now()); s.write(MESSAGE); }
  await sleep(1000);
  const c0 = count;
  rtts.length = 0;
  await sleep(seconds * 1000);
  const done = count - c0;
  const sorted = rtts.slice().sort((x, y) => x - y);
  await sleep(500);
  for (const s of socks) s.destroy();
  return { msgs: done / seconds, p50: percentile(sorted, 50), p99: percentile(sorted, 99) };
}

async function idleScenario(t, wanted) {
  const pids = t.agentPids();
  const core = pids[1];
  // Each socket takes two of the core's descriptors (client and app): stay within its limit.
  const limit = Math.floor((maxOpenFiles(core) - 200) / 2);
  const n = Math.min(wanted, limit);
  if (n < wanted) log(`the core may open ${maxOpenFiles(core)} files: ${n} idle sockets instead of ${wanted}`);
  let echoed = 0;
  const onMessage = () => { echoed++; };
  const warm = await wsOpen(t.port, '/warm', onMessage);
  warm.write(MESSAGE);
  await sleep(1000);
  const before = pids.reduce((s, p) => s + privateDirtyKB(p), 0);
  const socks = [];
  const batch = 200;
  for (let i = 0; i < n; i += batch) {
    const part = await Promise.all(Array.from({ length: Math.min(batch, n - i) }, (_, j) => wsOpen(t.port, `/idle${i + j}`, onMessage)));
    socks.push(...part);
  }
  await sleep(3000);
  const after = pids.reduce((s, p) => s + privateDirtyKB(p), 0);
  echoed = 0;
  for (let i = 0; i < socks.length; i += batch) {
    const target = echoed + Math.min(batch, socks.length - i);
    for (const s of socks.slice(i, i + batch)) s.write(MESSAGE);
    const end = Date.now() + 30_000;
    while (echoed < target && Date.now() < end) await sleep(10);
  }
  const ok = echoed;
  for (const s of socks) s.destroy();
  warm.destroy();
  return { sockets: n, beforeKB: before, afterKB: after, perSocketKB: (after - before) / n, echoed: ok };
}

async function main() {
  const a = parseArgs(process.argv.slice(2));
  if (!fs.existsSync(PASSENGER)) { console.error('bench:ws: build first (npm run build)'); process.exit(2); }
  const results = {};
  for (const name of a.targets) {
    const start = TARGETS[name];
    if (!start) { console.error(`unknown target ${name}`); process.exit(2); }
    log(`${name}: starting`);
    let t;
    try {
      t = await start();
    } catch (e) {
      log(`${name}: ${e.message}`);
      results[name] = { error: e.message };
      continue;
    }
    try {
      results[name] = {};
      if (a.scenarios.includes('echo')) {
        results[name].echo = await echoScenario(t.port, a.conns, a.seconds);
        log(`${name}: ${Math.round(results[name].echo.msgs)} messages/s, p99 ${results[name].echo.p99.toFixed(2)} ms`);
      }
      if (a.scenarios.includes('idle') && name === 'ours') {
        results[name].idle = await idleScenario(t, a.idle);
        log(`${name}: ${JSON.stringify(results[name].idle)}`);
      }
    } finally {
      await t.stop();
    }
  }
  const base = results.direct && results.direct.echo;
  const rows = ['| target | messages/s | vs direct | p50 ms | p99 ms | p99 vs direct |', '| --- | ---: | ---: | ---: | ---: | ---: |'];
  for (const name of a.targets) {
    const e = results[name] && results[name].echo;
    if (!e) { rows.push(`| ${name} | n/a | | | | |`); continue; }
    rows.push(`| ${name} | ${Math.round(e.msgs)} | ${base ? `${(e.msgs / base.msgs).toFixed(2)}x` : ''} | ${e.p50.toFixed(2)} | ${e.p99.toFixed(2)} | ${base ? `${(e.p99 / base.p99).toFixed(2)}x` : ''} |`);
  }
  console.log(`\nWebSocket echo: ${a.conns} connections, ${a.seconds} s, 32-byte messages, one in flight per connection\n`);
  console.log(rows.join('\n'));
  const idle = results.ours && results.ours.idle;
  if (idle) {
    console.log(`\nIdle WebSockets through ours (proxy): ${idle.sockets} open; agent (watchdog + core) private dirty ${Math.round(idle.beforeKB / 1024)} MB before, ${Math.round(idle.afterKB / 1024)} MB after: ${idle.perSocketKB.toFixed(1)} KB per socket; ${idle.echoed} of ${idle.sockets} echoed afterwards`);
  }
}

main().catch((e) => { console.error(e.stack || e); process.exit(1); });
