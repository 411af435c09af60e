#!/usr/bin/env node
// `passenger-status`: what the pool is doing, read from the agent's admin API.
import type { StatusDocument } from '../admin/admin-api';
import type { RequestSnapshot } from '../router/forward-direct';
import { renderPool, renderRequests } from './render-status';
import { adminJson } from '../instance/admin-client';
import { registryDir, selectInstance } from '../instance/instance-dir';
import { VERSION } from '../version';
import { die, parseToolFlags, runMain } from './common';

const USAGE = `Usage: passenger-status [options] [INSTANCE_NAME]

Shows the app groups and processes of a running server. With several servers
running, name one (the names are listed when you leave it out).

Options:
  --show=pool          the pool, as text (default)
  --show=json          the pool as JSON (schema documented in README.md)
  --show=requests      the requests in flight: method, path, process, age
  --no-header          leave out the version/date/instance header
  --instance-registry-dir DIR
                       where to look for servers (default
                       $PASSENGER_INSTANCE_REGISTRY_DIR, $TMPDIR or /tmp)
  -h, --help           this text

Examples:
  passenger-status
  passenger-status --show=json | jq '.groups[0].processes'`;

runMain('passenger-status', async (argv) => {
  const { flags, positionals } = parseToolFlags(argv, {
    '--show': 'value', '--no-header': 'bool', '--instance-registry-dir': 'value', '--help': 'bool', '-h': 'bool', '--version': 'bool',
  });
  if (flags['--help'] || flags['-h']) {
    console.log(USAGE);
    return 0;
  }
  if (flags['--version']) {
    console.log(`passenger-status ${VERSION}`);
    return 0;
  }
  const show = (flags['--show'] as string | undefined) ?? 'pool';
  if (!['pool', 'json', 'requests'].includes(show)) die(`--show=${show} is not known`, 'use --show=pool, --show=json or --show=requests');
  if (positionals.length > 1) die('name at most one instance');
  const inst = selectInstance(registryDir(flags['--instance-registry-dir'] as string | undefined), positionals[0]);
  if (show === 'requests') {
    const r = await adminJson<{ requests: RequestSnapshot[] }>(inst, 'GET', '/requests.json');
    process.stdout.write(`${renderRequests(r.requests)}\n`);
    return 0;
  }
  const doc = await adminJson<StatusDocument>(inst, 'GET', '/pool.json');
  if (show === 'json') process.stdout.write(`${JSON.stringify(doc, null, 2)}\n`);
  else process.stdout.write(`${renderPool(doc, !flags['--no-header'])}\n`);
  return 0;
});
