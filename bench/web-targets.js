'use strict';
// The `ours-nginx` and `ours-apache` targets of the shared harness, wired as
// its placeholder notes describe: `passenger agent` on a private socket, and a
// private nginx or Apache whose document root is <app>/public with the
// project's snippet included. The harness's own helpers are reused: its
// targets module is loaded with them exported, and the two placeholders in
// its target list are replaced by these.
const fs = require('fs');
const path = require('path');
const Module = require('module');
const { spawnSync } = require('child_process');

const INTERNALS = ['spawnLogged', 'launcherFailFast', 'splitApps', 'pidFilePids', 'writeApacheConf', 'spawnApache', 'apacheProcs', 'stopApache', 'waitExit', 'P'];

/** Loads <harness>/lib/targets.js into the require cache, with its helpers exported. */
function loadTargets(libDir) {
  const file = path.join(libDir, 'targets.js');
  const src = fs.readFileSync(file, 'utf8');
  const m = new Module(file, module);
  m.filename = file;
  m.paths = Module._nodeModulePaths(libDir);
  m._compile(`${src}\nmodule.exports.__internals = { ${INTERNALS.join(', ')} };\n`, file);
  m.loaded = true;
  require.cache[file] = m;
  return m.exports;
}

function install(libDir, projectDir) {
  const T = loadTargets(libDir);
  const H = T.__internals;
  const { P } = H;
  const configBin = path.join(projectDir, 'dist', 'helper-agent', 'src', 'cli', 'passenger-config.js');

  /** Starts the agent as procs[0]; returns its socket. Per-app options go in the app copy's Passengerfile.json. */
  function startAgent(inst, ctx) {
    inst.extra.registry = path.join(inst.dir, 'reg');
    fs.mkdirSync(inst.extra.registry, { recursive: true });
    const socket = path.join(inst.dir, 'agent.sock');
    fs.writeFileSync(path.join(inst.appDir, 'Passengerfile.json'), JSON.stringify({
      app_type: 'node', startup_file: 'app.js', envvars: { BENCH_PID_DIR: inst.pidDir },
    }));
    H.spawnLogged(inst, 'agent', ctx.oursCmd[0], [...ctx.oursCmd.slice(1), 'agent', '--socket', socket,
      '--instance-registry-dir', inst.extra.registry, '--app-root-allow', inst.appDir,
      '--min-instances', '2', '--max-pool-size', '2', '--log-file', path.join(inst.dir, 'agent.log'),
      ...(inst.opts.concurrency1 ? ['--force-max-concurrent-requests-per-process', '1'] : [])]);
    return socket;
  }

  function snippet(kind, socket, inst, extra = []) {
    const r = spawnSync(process.execPath, [configBin, `${kind}-snippet`, '--socket', socket, ...extra], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`passenger-config ${kind}-snippet failed: ${r.stderr}`);
    const file = path.join(inst.dir, `${kind}-passenger${extra.length ? '-http' : ''}.conf`);
    fs.writeFileSync(file, r.stdout);
    return file;
  }

  function managerPids(inst, set, snap) {
    return H.pidFilePids(inst, inst.extra.registry, snap).filter((p) => set.has(p));
  }

  /** As passenger-memory-stats splits them: the web server's processes, the agent's (registry pid files), apps. */
  function classifyWith(frontendOf) {
    return (inst, set, snap) => {
      const manager = managerPids(inst, set, snap);
      const frontend = frontendOf(inst, set, snap).filter((p) => !manager.includes(p));
      const { apps, rest } = H.splitApps(inst, set, snap, [...manager, ...frontend]);
      return { frontend, manager: manager.filter((p) => !apps.includes(p)), apps, other: rest.filter((p) => !manager.includes(p) && !frontend.includes(p)) };
    };
  }

  async function stopAgent(inst) {
    const a = inst.procs[0];
    if (a && !a.exit && P.signalExact(a.pid, inst.tracked.get(a.pid), 'SIGTERM')) await H.waitExit(a, 15000);
  }

  const available = (need) => (ctx) => {
    const r = T.resolveOurs(ctx.projectDir);
    if (!r.cmd) return { ok: false, reason: r.reason };
    if (!ctx.bins[need]) return { ok: false, reason: `${need} not installed` };
    ctx.oursCmd = r.cmd;
    ctx.oursHow = r.how;
    return { ok: true };
  };

  /** nginx in front of the agent: the keep-alive pair of snippets, or (`oneLine`) only the one-line passenger.conf. */
  const nginxTarget = (name, port, oneLine) => ({
    name,
    describe: oneLine
      ? "nginx + the project's one-line nginx-conf/passenger.conf (a connection to the agent per request) + its agent"
      : "nginx + the project's keep-alive pair (passenger-http.conf, passenger-keepalive.conf) + its agent (passenger agent)",
    port: () => port,
    ports: () => [port],
    expectedApps: 2,
    concurrencyKnob: true,
    crashSupported: true,
    available: available('nginx'),
    start(inst, ctx) {
      const socket = startAgent(inst, ctx);
      // The keep-alive variant: the upstream at the http level, the project's server snippet in the server block.
      // The one-line variant: the snippet printed for this socket, nothing at the http level.
      const httpInc = oneLine ? null : snippet('nginx', socket, inst, ['--http']);
      const inc = oneLine ? snippet('nginx', socket, inst) : path.join(projectDir, 'nginx-conf', 'passenger-keepalive.conf');
      const docRoot = path.join(inst.appDir, 'public');
      fs.mkdirSync(docRoot, { recursive: true });
      const tmp = path.join(inst.dir, 'nginx-tmp');
      fs.mkdirSync(tmp, { recursive: true });
      const conf = path.join(inst.dir, 'nginx.conf');
      // As nginx-direct's, but workers run as www-data (the agent's socket is
      // theirs to use) and the snippet's upstream is included at the http level.
      fs.writeFileSync(conf, `# generated by the project's bench/web-targets.js
user www-data;
worker_processes auto;
daemon off;
pid ${inst.dir}/nginx.pid;
error_log ${inst.dir}/nginx-error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${tmp}/body;
  proxy_temp_path ${tmp}/proxy;
  fastcgi_temp_path ${tmp}/fastcgi;
  uwsgi_temp_path ${tmp}/uwsgi;
  scgi_temp_path ${tmp}/scgi;
${httpInc ? `  include ${httpInc};\n` : ''}  server {
    listen 127.0.0.1:${inst.port};
    root ${docRoot};
    include ${inc};
  }
}
`);
      H.spawnLogged(inst, 'nginx', ctx.bins.nginx, ['-p', inst.dir, '-c', conf, '-e', path.join(inst.dir, 'nginx-error.log')]);
    },
    failFast: H.launcherFailFast,
    roots: (inst, snap) => [...inst.procs.map((r) => r.pid), ...H.pidFilePids(inst, inst.extra.registry, snap)],
    classify: classifyWith((inst, set, snap) => {
      const master = inst.procs[1] && inst.procs[1].pid;
      return [...set].filter((p) => p === master || snap.get(p).ppid === master);
    }),
    async stop(inst) {
      const n = inst.procs[1];
      if (n && !n.exit && P.signalExact(n.pid, inst.tracked.get(n.pid), 'SIGTERM')) await H.waitExit(n, 10000);
      await stopAgent(inst);
    },
  });
  const oursNginx = nginxTarget('ours-nginx', T.PORT_BASE + 50, false);
  const oursNginxOneLine = nginxTarget('ours-nginx-1line', T.PORT_BASE + 80, true);

  const oursApache = {
    name: 'ours-apache',
    describe: "Apache 2.4 (mpm_event, 2 x 64 threads) + the project's apache-conf/passenger.conf + its agent",
    port: () => T.PORT_BASE + 70,
    ports: () => [T.PORT_BASE + 70],
    expectedApps: 2,
    concurrencyKnob: true,
    crashSupported: true,
    available: available('apache'),
    start(inst, ctx) {
      const socket = startAgent(inst, ctx);
      const inc = snippet('apache', socket, inst);
      const conf = H.writeApacheConf(inst, { modules: ['proxy', 'proxy_http', 'headers', 'rewrite'], vhost: [`Include ${inc}`] });
      H.spawnApache(inst, ctx, conf);
    },
    failFast: H.launcherFailFast,
    roots: (inst, snap) => [...inst.procs.map((r) => r.pid), ...H.pidFilePids(inst, inst.extra.registry, snap)],
    classify: classifyWith((inst, set, snap) => (inst.procs[1] ? H.apacheProcs(inst.procs[1], set, snap) : [])),
    async stop(inst) {
      await H.stopApache(inst, inst.procs[1]);
      await stopAgent(inst);
    },
  };

  // The one-line snippet's shape with no agent: nginx opens a Unix socket
  // connection per request straight to the app processes (an upstream
  // without keepalive). What any agent behind that snippet can at most reach.
  const nginxOneConn = {
    name: 'nginx-1conn',
    describe: 'nginx -> 2 plain node processes on Unix sockets, a new connection per request (upstream without keepalive): the one-line shape with no agent',
    port: () => T.PORT_BASE + 90,
    ports: () => [T.PORT_BASE + 90],
    expectedApps: 2,
    concurrencyKnob: false,
    crashSupported: false,
    available: (ctx) => (ctx.bins.nginx ? { ok: true } : { ok: false, reason: 'nginx not installed' }),
    start(inst, ctx) {
      const socks = [1, 2].map((i) => path.join(inst.dir, `app${i}.sock`));
      const tmp = path.join(inst.dir, 'nginx-tmp');
      fs.mkdirSync(tmp, { recursive: true });
      const conf = path.join(inst.dir, 'nginx.conf');
      fs.writeFileSync(conf, `# generated by the project's bench/web-targets.js
worker_processes auto;
daemon off;
pid ${inst.dir}/nginx.pid;
error_log ${inst.dir}/nginx-error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${tmp}/body;
  proxy_temp_path ${tmp}/proxy;
  fastcgi_temp_path ${tmp}/fastcgi;
  uwsgi_temp_path ${tmp}/uwsgi;
  scgi_temp_path ${tmp}/scgi;
  upstream bench_app {
${socks.map((p) => `    server unix:${p} max_fails=0;`).join('\n')}
  }
  server {
    listen 127.0.0.1:${inst.port};
    location / {
      proxy_pass http://bench_app;
      proxy_http_version 1.1;
      proxy_set_header Connection close;
      proxy_set_header Host $host;
    }
  }
}
`);
      H.spawnLogged(inst, 'nginx', ctx.bins.nginx, ['-p', inst.dir, '-c', conf, '-e', path.join(inst.dir, 'nginx-error.log')]);
      socks.forEach((sock, i) => H.spawnLogged(inst, `app${i + 1}`, process.execPath,
        ['--require', path.join(__dirname, 'listen-unix.js'), 'app.js'], { env: { BENCH_UNIX_SOCKET: sock } }));
    },
    failFast: H.launcherFailFast,
    roots: (inst) => inst.procs.map((r) => r.pid),
    classify(inst, set, snap) {
      const master = inst.procs[0].pid;
      const frontend = [...set].filter((p) => p === master || snap.get(p).ppid === master);
      const { apps, rest } = H.splitApps(inst, set, snap, frontend);
      return { frontend, manager: [], apps, other: rest.filter((p) => !frontend.includes(p)) };
    },
    async stop(inst) {
      for (const [p, st] of inst.tracked) P.signalExact(p, st, 'SIGTERM');
    },
  };

  for (const t of [oursNginx, oursNginxOneLine, oursApache, nginxOneConn]) {
    const i = T.ALL.findIndex((x) => x.name === t.name);
    if (i !== -1) T.ALL[i] = t;
    else T.ALL.push(t);
    T.BY_NAME[t.name] = t;
  }
}

module.exports = { install };
