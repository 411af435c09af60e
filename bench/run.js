#!/usr/bin/env node
// `npm run bench`: the shared side-by-side harness (../shared/bench) on this
// checkout, with the targets this project is measured against, and the
// `ours-nginx` / `ours-apache` targets wired in (bench/web-targets.js).
// Extra arguments pass through, e.g. `npm run bench -- --quick --scenarios throughput`.
'use strict';
const fs = require('fs');
const path = require('path');

const root = path.resolve(__dirname, '..');
const lib = path.resolve(root, '..', 'shared', 'bench', 'lib');
if (!fs.existsSync(path.join(root, 'dist', 'helper-agent', 'src', 'cli', 'passenger.js'))) {
  console.error('bench: build first (npm install, or npm run build)');
  process.exit(2);
}
if (!fs.existsSync(path.join(lib, 'bench.js'))) {
  console.error(`bench: the shared harness is not at ${path.dirname(lib)}`);
  process.exit(2);
}
const args = process.argv.slice(2);
if (!args.some((a) => a === '--targets' || a.startsWith('--targets='))) args.push('--targets', 'direct,passenger,pm2,ours');
require('./web-targets').install(lib, root);
process.env.PROJECT_DIR = root;
process.argv = [process.argv[0], path.join(lib, 'bench.js'), ...args];
require(path.join(lib, 'bench.js'));
