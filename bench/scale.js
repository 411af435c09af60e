#!/usr/bin/env node
// `npm run bench:scale`: how the agent's cost grows with its work, on
// 127.0.0.1 and Unix sockets only, bounded in time, every process stopped by PID.
//   groups: N app groups (--groups, 50) behind one `passenger agent`, with
//           nginx in front (one server block per app, each including the
//           shipped nginx-conf/passenger-keepalive.conf), min 1 process each;
//           wrk's requests go to every app in turn (by Host). Against the same
//           setup with 1 group: req/s, the core's private dirty memory and its
//           CPU per request; the cost of a group in KB and us.
//   idle:   M idle keep-alive client connections (--idle, 5000,10000: one
//           count or several, comma-separated) held open to
//           `passenger start` (2 processes) while wrk runs its usual load
//           beside them. Against 0 idle connections: req/s, the core's memory
//           and CPU per request; the cost of an idle connection in KB and us.
//           --rounds (3) times in turn, 0 then each M idle, so that the
//           machine's drift falls on both sides: the cost is the median of
//           the rounds. Two counts show whether the cost per connection stays
//           the same as their number grows.
// Only ratios and differences from one run count (the machine is shared).
//
//   npm run bench:scale -- [--scenarios groups,idle] [--groups 50] [--idle 5000,10000] [--rounds 3] [--seconds 10]
'use strict';
const fs = require('fs');
const net = require('net');
const os = require('os');
const path = require('path');
const { spawn, spawnSync } = require('child_process');

const ROOT = path.resolve(__dirname, '..');
const PASSENGER = path.join(ROOT, 'dist', 'helper-agent', 'src', 'cli', 'passenger.js');
const PASSENGER_CONFIG = path.join(ROOT, 'dist', 'helper-agent', 'src', 'cli', 'passenger-config.js');
const KEEPALIVE_SNIPPET = path.join(ROOT, 'nginx-conf', 'passenger-keepalive.conf');
const APP = path.join(__dirname, 'ws-app', 'app.js');
const TICK_US = 1e6 / (Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout) || 100);

function parseArgs(argv) {
  const a = { groups: 50, idle: [5000, 10000], rounds: 3, seconds: 10, scenarios: ['groups', 'idle'] };
  for (let i = 0; i < argv.length; i++) {
    const [k, v] = argv[i].includes('=') ? argv[i].split('=') : [argv[i], argv[++i]];
    if (k === '--groups') a.groups = Number(v);
    else if (k === '--idle') a.idle = v.split(',').map(Number);
    else if (k === '--rounds') a.rounds = Number(v);
    else if (k === '--seconds') a.seconds = Number(v);
    else if (k === '--scenarios') a.scenarios = v.split(',');
    else { console.error(`unknown argument ${k}`); process.exit(2); }
  }
  for (const k of ['groups', 'idle', 'rounds', 'seconds']) {
    if (![a[k]].flat().every((x) => Number.isInteger(x) && x >= 1)) { console.error(`--${k} takes a positive whole number${k === 'idle' ? ' (or several, comma-separated)' : ''}`); process.exit(2); }
  }
  return a;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const log = (m) => process.stderr.write(`[bench:scale] ${m}\n`);
const alive = (pid) => { try { process.kill(pid, 0); return true; } catch { return false; } };

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
  });
}

/** One GET over a connection of its own: the status, 0 on failure. */
function get(port, host) {
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1');
    let head = '';
    const done = (status) => { sock.destroy(); resolve(status); };
    sock.setTimeout(10_000, () => done(0));
    sock.on('error', () => done(0));
    sock.on('connect', () => sock.write(`GET / HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`));
    sock.on('data', (d) => {
      head += d.toString('latin1');
      const m = /^HTTP\/1\.1 (\d{3})/.exec(head);
      if (m) done(Number(m[1]));
    });
  });
}

async function waitFor(what, ms, fn) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await fn()) return;
    await sleep(200);
  }
  throw new Error(`${what}: not within ${ms / 1000} s`);
}

function privateDirtyKB(pid) {
  try {
    const txt = fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
    let kb = 0;
    for (const m of txt.matchAll(/^Private_(?:Dirty|Hugetlb):\s+(\d+) kB/gm)) kb += Number(m[1]);
    return kb;
  } catch { return 0; }
}

/** utime + stime in microseconds. */
function cpuUs(pid) {
  try {
    const st = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) * TICK_US;
  } catch { return 0; }
}

/** Stops processes by PID: TERM, then KILL after `ms`. */
async function stopPids(pids, ms = 20_000) {
  for (const p of pids) { try { process.kill(p, 'SIGTERM'); } catch { /* gone */ } }
  const end = Date.now() + ms;
  while (pids.some(alive) && Date.now() < end) await sleep(100);
  for (const p of pids) { if (alive(p)) { try { process.kill(p, 'SIGKILL'); } catch { /* gone */ } } }
}

function hardFileLimit() {
  const m = /^Max open files\s+\d+\s+(\d+|unlimited)/m.exec(fs.readFileSync('/proc/self/limits', 'utf8'));
  return m && m[1] !== 'unlimited' ? Number(m[1]) : 1 << 20;
}

/** Runs node with the soft open-file limit raised to the hard one (prlimit, util-linux). */
function spawnNode(args, opts) {
  const n = hardFileLimit();
  return spawn('prlimit', [`--nofile=${n}:${n}`, '--', process.execPath, ...args], opts);
}

/** The agent's watchdog and core PIDs, from its instance directory. */
function agentPids(reg) {
  const inst = fs.readdirSync(reg).find((n) => n.startsWith('passenger-ts.'));
  if (!inst) return null;
  const pid = (f) => { try { return Number(fs.readFileSync(path.join(reg, inst, f), 'utf8')); } catch { return 0; } };
  const processes = () => { try { return fs.readdirSync(path.join(reg, inst, 'processes')).map(Number); } catch { return []; } };
  return { watchdog: pid('watchdog.pid'), core: pid('core.pid'), processes };
}

/** wrk on the given port; hosts: the Host headers to send in turn (one per request). */
function wrk(dir, port, seconds, hosts) {
  const args = ['-t2', '-c64', `-d${seconds}s`, '--timeout', '5s'];
  if (hosts) {
    const script = path.join(dir, 'hosts.lua');
    fs.writeFileSync(script, `local hosts = { ${hosts.map((h) => JSON.stringify(h)).join(', ')} }
local i = 0
request = function()
  i = i % #hosts + 1
  return wrk.format("GET", "/", { Host = hosts[i] })
end
`);
    args.push('-s', script);
  }
  args.push(`http://127.0.0.1:${port}/`);
  return new Promise((resolve, reject) => {
    const child = spawn('wrk', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { out += d; });
    const kill = setTimeout(() => child.kill('SIGKILL'), (seconds + 30) * 1000);
    child.on('error', reject);
    child.on('exit', () => {
      clearTimeout(kill);
      const num = (re) => { const m = re.exec(out); return m ? Number(m[1]) : 0; };
      const requests = num(/(\d+) requests in/);
      if (requests === 0) { reject(new Error(`wrk: ${out.trim().split('\n').pop()}`)); return; }
      resolve({ requests, rps: num(/Requests\/sec:\s+([\d.]+)/), bad: num(/Non-2xx or 3xx responses: (\d+)/) + num(/Socket errors: connect (\d+)/) + num(/read (\d+), write/) + num(/timeout (\d+)/) });
    });
  });
}

/** A measured load: req/s, the core's CPU per request, its memory 300 ms after (as the shared bench's memory scenario). */
async function measure(dir, port, seconds, pids, hosts) {
  await wrk(dir, port, 3, hosts);
  const cpu0 = cpuUs(pids.core);
  const r = await wrk(dir, port, seconds, hosts);
  const cpu1 = cpuUs(pids.core);
  await sleep(300);
  return { rps: r.rps, bad: r.bad, usPerReq: (cpu1 - cpu0) / r.requests, coreKB: privateDirtyKB(pids.core), watchdogKB: privateDirtyKB(pids.watchdog) };
}

// ------------------------------------------------------------------ groups

function nginxBin() {
  return ['/usr/sbin/nginx', '/usr/bin/nginx'].find((f) => fs.existsSync(f)) || null;
}

/** `passenger agent` + nginx with `n` apps, one server block each; requests name the app by Host. */
async function groupsSetup(n, seconds) {
  const nginx = nginxBin();
  if (!nginx) throw new Error('nginx is not installed');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-scale-'));
  fs.chmodSync(dir, 0o755);
  const stops = [];
  const stop = async () => {
    for (const s of stops.reverse()) await s();
    fs.rmSync(dir, { recursive: true, force: true });
  };
  try {
    const apps = path.join(dir, 'apps');
    const hosts = [];
    const servers = [];
    const port = await freePort();
    for (let i = 1; i <= n; i++) {
      const root = path.join(apps, `app${i}`);
      fs.mkdirSync(path.join(root, 'public'), { recursive: true });
      fs.copyFileSync(APP, path.join(root, 'app.js'));
      hosts.push(`app${i}.scale.test`);
      servers.push(`  server {\n    listen 127.0.0.1:${port};\n    server_name app${i}.scale.test;\n    root ${root}/public;\n    include ${KEEPALIVE_SNIPPET};\n  }`);
    }
    const socket = path.join(dir, 'agent.sock');
    const reg = path.join(dir, 'reg');
    fs.mkdirSync(reg);
    const agent = spawnNode([PASSENGER, 'agent', '--socket', socket, '--instance-registry-dir', reg, '--app-root-allow', apps,
      '--min-instances', '1', '--max-pool-size', String(n), '--log-file', path.join(dir, 'agent.log')], { stdio: 'ignore' });
    stops.push(() => stopPids([agent.pid], 30_000));
    const snippet = spawnSync(process.execPath, [PASSENGER_CONFIG, 'nginx-snippet', '--http', '--socket', socket], { encoding: 'utf8' });
    if (snippet.status !== 0) throw new Error(`passenger-config nginx-snippet --http: ${snippet.stderr}`);
    fs.writeFileSync(path.join(dir, 'passenger-http.conf'), snippet.stdout);
    const tmp = path.join(dir, 'nginx-tmp');
    fs.mkdirSync(tmp);
    fs.writeFileSync(path.join(dir, 'nginx.conf'), `${process.getuid() === 0 ? 'user www-data;\n' : ''}worker_processes 2;
daemon off;
pid ${dir}/nginx.pid;
error_log ${dir}/nginx-error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${tmp}/body; proxy_temp_path ${tmp}/proxy; fastcgi_temp_path ${tmp}/fastcgi; uwsgi_temp_path ${tmp}/uwsgi; scgi_temp_path ${tmp}/scgi;
  include ${dir}/passenger-http.conf;
${servers.join('\n')}
}
`);
    await waitFor('the agent socket', 30_000, () => fs.existsSync(socket));
    const ng = spawn(nginx, ['-p', dir, '-c', path.join(dir, 'nginx.conf'), '-e', path.join(dir, 'nginx-error.log')], { stdio: 'ignore' });
    stops.push(() => stopPids([ng.pid], 10_000));
    // Every app's first request spawns its process; a few at a time.
    for (let i = 0; i < n; i += 5) {
      await Promise.all(hosts.slice(i, i + 5).map((h) => waitFor(`${h} to answer`, 90_000, async () => (await get(port, h)) === 200)));
    }
    const pids = agentPids(reg);
    await waitFor(`${n} app processes`, 60_000, () => pids.processes().length >= n);
    await sleep(2000);
    const idleKB = privateDirtyKB(pids.core);
    const m = await measure(dir, port, seconds, pids, hosts);
    return { groups: n, processes: pids.processes().length, idleCoreKB: idleKB, ...m };
  } finally {
    await stop();
  }
}

// ------------------------------------------------------------------ idle

/** The other side of the idle scenario (run as its own process, with a raised file limit): holds `count` keep-alive connections open. */
async function holdConnections(port, count) {
  const socks = [];
  const one = () => new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    s.setTimeout(30_000, () => { s.destroy(); reject(new Error('no answer')); });
    s.once('error', reject);
    s.on('connect', () => s.write('GET / HTTP/1.1\r\nHost: idle\r\n\r\n'));
    // One request, its answer, then nothing more: an idle keep-alive connection.
    s.once('data', () => { s.setTimeout(0); s.on('data', () => undefined); socks.push(s); resolve(); });
  });
  for (let i = 0; i < count; i += 250) await Promise.all(Array.from({ length: Math.min(250, count - i) }, one));
  let closed = 0;
  for (const s of socks) s.on('close', () => { closed++; });
  process.stdout.write(`open ${socks.length}\n`);
  // Until told to end (stdin closes), then report how many the server closed meanwhile.
  process.stdin.resume();
  process.stdin.on('end', () => { process.stdout.write(`closed ${closed}\n`); process.exit(0); });
}

/** Opens `count` idle connections in a holder process; resolves once they are open, with a function that closes them and reports how many the server closed meanwhile. */
async function openIdle(port, count, stops) {
  const holder = spawnNode([__filename, '__hold', String(port), String(count)], { stdio: ['pipe', 'pipe', 'inherit'] });
  stops.push(async () => { if (holder.exitCode === null && holder.signalCode === null) await stopPids([holder.pid], 5000); });
  let out = '';
  holder.stdout.on('data', (d) => { out += d; });
  await waitFor(`${count} idle connections`, 120_000, () => /open \d+/.test(out) || holder.exitCode !== null);
  if (!/open \d+/.test(out)) throw new Error('the connection holder ended before it opened its connections');
  return async () => {
    holder.stdin.end();
    await waitFor('the holder to report', 10_000, () => /closed \d+/.test(out));
    await waitFor('the holder to end', 10_000, () => holder.exitCode !== null);
    return Number(/closed (\d+)/.exec(out)[1]);
  };
}

/**
 * Opens idle connections up to each of `counts` (ascending) in turn, then
 * closes them all. `before(count, added)` runs before a step's connections
 * open and returns the step, which runs 2 s after they did. Resolves with how
 * many the server closed meanwhile.
 */
async function stepThrough(port, counts, stops, before) {
  const closers = [];
  let open = 0;
  for (const count of counts) {
    const step = await before(count, count - open);
    closers.push(await openIdle(port, count - open, stops));
    await sleep(2000);
    await step();
    open = count;
  }
  let closed = 0;
  for (const close of closers) closed += await close();
  // The core closes its side as the holders' connections end.
  await sleep(3000);
  return closed;
}

/**
 * The core's memory per idle connection, on the core as it started (counts
 * opened in turn, each also after a sweep parked them); then `rounds` times:
 * a load with no idle connection, then one beside each of
 * `counts` (ascending) idle connections, opened as the count grows (a holder
 * process per step) and all closed at the round's end.
 */
async function idleScenario(counts, rounds, seconds) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-scale-'));
  fs.chmodSync(dir, 0o755);
  const stops = [];
  try {
    const appDir = path.join(dir, 'app');
    fs.mkdirSync(appDir);
    fs.copyFileSync(APP, path.join(appDir, 'app.js'));
    const reg = path.join(dir, 'reg');
    fs.mkdirSync(reg);
    const port = await freePort();
    const w = spawnNode([PASSENGER, 'start', appDir, '--port', String(port), '--address', '127.0.0.1', '--min-instances', '2',
      '--max-pool-size', '2', '--environment', 'production', '--instance-registry-dir', reg, '--log-file', path.join(dir, 'log')], { stdio: 'ignore' });
    stops.push(() => stopPids([w.pid], 30_000));
    await waitFor('passenger start to answer', 60_000, async () => (await get(port, 'x')) === 200);
    const pids = agentPids(reg);
    await waitFor('2 app processes', 60_000, () => pids.processes().length >= 2);
    // Memory first, on the core as it started: after a load its heap and
    // malloc arenas have room that new connections fill unseen.
    const memory = [];
    await stepThrough(port, counts, stops, async (count, added) => {
      const beforeKB = privateDirtyKB(pids.core);
      return async () => {
        const openedKB = privateDirtyKB(pids.core);
        // Idle through a whole sweep (5 s), each connection lets go of its parser.
        await sleep(11_000);
        const parkedKB = privateDirtyKB(pids.core);
        memory.push({ count, added, beforeKB, openedKB, parkedKB });
        log(`idle: ${count} idle connections, no load: core ${openedKB} KB opened, ${parkedKB} KB once parked`);
      };
    });
    const out = [];
    for (let i = 1; i <= rounds; i++) {
      const base = await measure(dir, port, seconds, pids);
      log(`idle: round ${i}: 0 idle connections: ${Math.round(base.rps)} req/s, core ${base.coreKB} KB, ${base.usPerReq.toFixed(1)} us/request`);
      const steps = [];
      const closedMeanwhile = await stepThrough(port, counts, stops, async (count) => async () => {
        const withIdle = await measure(dir, port, seconds, pids);
        log(`idle: round ${i}: ${count} idle connections: ${Math.round(withIdle.rps)} req/s, core ${withIdle.coreKB} KB, ${withIdle.usPerReq.toFixed(1)} us/request`);
        steps.push({ count, withIdle });
      });
      out.push({ base, steps, closedMeanwhile });
    }
    return { memory, rounds: out };
  } finally {
    for (const s of stops.reverse()) await s();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function median(xs) {
  const v = [...xs].sort((x, y) => x - y);
  const m = v.length >> 1;
  return v.length % 2 === 1 ? v[m] : (v[m - 1] + v[m]) / 2;
}

// ------------------------------------------------------------------ main

const kb = (x) => `${(x / 1024).toFixed(1)} MB`;

async function main() {
  const a = parseArgs(process.argv.slice(2));
  if (!fs.existsSync(PASSENGER)) { console.error('bench:scale: build first (npm run build)'); process.exit(2); }
  const lines = [];
  if (a.scenarios.includes('groups')) {
    log('groups: 1 app');
    const one = await groupsSetup(1, a.seconds);
    log(`groups: 1 app: ${Math.round(one.rps)} req/s; now ${a.groups} apps`);
    const many = await groupsSetup(a.groups, a.seconds);
    const extra = many.groups - one.groups;
    lines.push(`\nApp groups behind one agent (nginx, passenger-keepalive.conf), wrk -t2 -c64 ${a.seconds} s, requests spread over every app`, '',
      '| groups | processes | req/s | errors | core idle | core after load | watchdog | core CPU us/request |', '| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
    for (const r of [one, many]) lines.push(`| ${r.groups} | ${r.processes} | ${Math.round(r.rps)} | ${r.bad} | ${kb(r.idleCoreKB)} | ${kb(r.coreKB)} | ${kb(r.watchdogKB)} | ${r.usPerReq.toFixed(1)} |`);
    lines.push('', `per extra group: ${((many.idleCoreKB - one.idleCoreKB) / extra).toFixed(0)} KB idle, ${((many.coreKB - one.coreKB) / extra).toFixed(0)} KB after load, ${((many.usPerReq - one.usPerReq) / extra).toFixed(3)} us/request; req/s ${(many.rps / one.rps).toFixed(2)}x of 1 group`);
  }
  if (a.scenarios.includes('idle')) {
    const counts = [...new Set(a.idle)].sort((x, y) => x - y);
    const { memory, rounds } = await idleScenario(counts, a.rounds, a.seconds);
    lines.push(`\nIdle keep-alive connections to passenger start (2 processes), wrk -t2 -c64 ${a.seconds} s beside them, ${rounds.length} rounds of 0 then ${counts.join(', then ')} idle`, '',
      '| round | idle connections | req/s | errors | core after load | core CPU us/request |', '| ---: | ---: | ---: | ---: | ---: | ---: |');
    rounds.forEach((r, i) => {
      lines.push(`| ${i + 1} | 0 | ${Math.round(r.base.rps)} | ${r.base.bad} | ${kb(r.base.coreKB)} | ${r.base.usPerReq.toFixed(1)} |`);
      for (const st of r.steps) lines.push(`| ${i + 1} | ${st.count} | ${Math.round(st.withIdle.rps)} | ${st.withIdle.bad} | ${kb(st.withIdle.coreKB)} | ${st.withIdle.usPerReq.toFixed(1)} |`);
    });
    lines.push('');
    counts.forEach((n, k) => {
      const us = rounds.map((r) => r.steps[k].withIdle.usPerReq - r.base.usPerReq);
      const m = memory[k];
      lines.push(`${n} idle: CPU ${us.map((d) => `${d >= 0 ? '+' : ''}${d.toFixed(1)}`).join(', ')} us/request against 0 idle, median ${(median(us) / n * 1000).toFixed(3)} ns/request per idle connection; `
        + `req/s ${median(rounds.map((r) => r.steps[k].withIdle.rps / r.base.rps)).toFixed(2)}x of 0 idle; `
        + `core memory per connection for the ${m.added} opened last, before any load: ${((m.openedKB - m.beforeKB) / m.added).toFixed(2)} KB opened, ${((m.parkedKB - m.beforeKB) / m.added).toFixed(2)} KB once parked`);
    });
    lines.push(`closed by the server meanwhile: ${rounds.map((r) => r.closedMeanwhile).join(', ')}`);
  }
  console.log(lines.join('\n'));
}

if (process.argv[2] === '__hold') void holdConnections(Number(process.argv[3]), Number(process.argv[4])).catch((e) => { console.error(e.message); process.exit(1); });
else main().catch((e) => { console.error(e.stack || e); process.exit(1); });
