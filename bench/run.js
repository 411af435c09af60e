#!/usr/bin/env node
// `npm run bench`: the shared side-by-side harness (../shared/bench) on this
// checkout, with the targets this project is measured against. Extra
// arguments pass through, e.g. `npm run bench -- --quick --scenarios throughput`.
'use strict';
const fs = require('fs');
const path = require('path');
const { spawnSync } = require('child_process');

const root = path.resolve(__dirname, '..');
const harness = path.resolve(root, '..', 'shared', 'bench', 'run');
if (!fs.existsSync(path.join(root, 'dist', 'helper-agent', 'src', 'cli', 'passenger.js'))) {
  console.error('bench: build first (npm install, or npm run build)');
  process.exit(2);
}
if (!fs.existsSync(harness)) {
  console.error(`bench: the shared harness is not at ${harness}`);
  process.exit(2);
}
const args = process.argv.slice(2);
if (!args.some((a) => a === '--targets' || a.startsWith('--targets='))) args.push('--targets', 'direct,passenger,pm2,ours');
const r = spawnSync(harness, args, { cwd: root, stdio: 'inherit', env: { ...process.env, PROJECT_DIR: root } });
process.exit(r.status === null ? 1 : r.status);
