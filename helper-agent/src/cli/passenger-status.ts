#!/usr/bin/env node
// `passenger-status`: what the pool is doing, read from the agent's admin API.
import type { RequestsDocument, StatusDocument } from '../admin/protocol';
import { ANSI_PAINT, NO_PAINT, renderHeader, renderPool, renderRequests, type Paint } from './render-status';
import { renderXml } from './render-xml';
import { adminJson } from '../instance/admin-client';
import { type InstanceDir } from '../instance/instance-dir';
import { registryDirs, selectInstance } from '../instance/registry';
import { parseArgv, type FlagSpec } from '../config';
import { VERSION } from '../version';
import { HELP_FLAG, REGISTRY_FLAG, die, runMain } from './common';

const USAGE = `Usage: passenger-status [options] [INSTANCE_NAME]

Shows the app groups and processes of a running server. With several servers
running, name one (the names are listed when you leave it out).

Options:
  --show=pool          the pool, as text (default)
  --show=json          the pool as JSON (schema documented in README.md)
  --show=xml           the pool as Phusion Passenger's XML document (same
                       elements and nesting, for exporters that parse it)
  --show=server        the request server: its PIDs, address and the
                       requests in flight (JSON after the header)
  --show=requests      the requests in flight: method, path, process, age
  --no-header          leave out the version/date/instance header
  --force-colors       colour the output even when it is not a terminal
  --watch              a live view, refreshed every second (Ctrl-C quits)
  --instance-registry-dir DIR
                       where to look for servers (default
                       $PASSENGER_INSTANCE_REGISTRY_DIR, else $TMPDIR or /tmp
                       and /run/passenger-ts)
  -h, --help           this text

Examples:
  passenger-status
  passenger-status --show=json | jq '.groups[0].processes'`;

/** Redraws the pool every second, like top; leaves on Ctrl-C or when the server goes away. */
async function watch(inst: InstanceDir, paint: Paint): Promise<number> {
  const clear = process.stdout.isTTY ? '\x1b[H\x1b[2J' : '';
  let running = true;
  process.on('SIGINT', () => { running = false; });
  while (running) {
    let text: string;
    try {
      const doc = await adminJson<StatusDocument>(inst, 'GET', '/pool.json');
      const reqs = await adminJson<RequestsDocument>(inst, 'GET', '/requests.json');
      text = `${renderPool(doc, true, paint, Math.max(40, process.stdout.columns ?? 80))}\n${paint.heading('----------- Requests in flight -----------')}\n${renderRequests(reqs.requests.slice(0, 10))}`;
    } catch (e) {
      process.stderr.write(`passenger-status: ${(e as Error).message}\n`);
      return 1;
    }
    process.stdout.write(`${clear}${text}\n\n${paint.dim('Refreshing every second; Ctrl-C quits.')}\n`);
    for (let i = 0; i < 10 && running; i++) await new Promise((r) => setTimeout(r, 100));
  }
  return 0;
}

export const STATUS_FLAGS = [
  { prop: 'show', flag: '--show', kind: 'string', arg: 'WHAT' },
  { prop: 'noHeader', flag: '--no-header', kind: 'bool' },
  { prop: 'forceColors', flag: '--force-colors', kind: 'bool' },
  { prop: 'watch', flag: '--watch', kind: 'bool' },
  REGISTRY_FLAG,
  HELP_FLAG,
  { prop: 'version', flag: '--version', kind: 'bool' },
] as const satisfies readonly FlagSpec[];

export async function statusMain(argv: string[]): Promise<number> {
  const { values: flags, positionals } = parseArgv(argv, STATUS_FLAGS);
  if (flags.help) {
    console.log(USAGE);
    return 0;
  }
  if (flags.version) {
    console.log(`passenger-status ${VERSION}`);
    return 0;
  }
  const show = (flags.show as string | undefined) ?? 'pool';
  if (!['pool', 'json', 'xml', 'server', 'requests'].includes(show)) die(`--show=${show} is not known`, 'use --show=pool, --show=json, --show=xml, --show=server or --show=requests');
  if (positionals.length > 1) die('name at most one instance');
  const inst = selectInstance(registryDirs(flags.instanceRegistryDir as string | undefined), positionals[0]);
  const paint = flags.forceColors || process.stdout.isTTY ? ANSI_PAINT : NO_PAINT;
  if (flags.watch) return watch(inst, paint);
  if (show === 'requests') {
    const r = await adminJson<RequestsDocument>(inst, 'GET', '/requests.json');
    process.stdout.write(`${renderRequests(r.requests)}\n`);
    return 0;
  }
  const doc = await adminJson<StatusDocument>(inst, 'GET', '/pool.json');
  if (show === 'server') {
    const r = await adminJson<RequestsDocument>(inst, 'GET', '/requests.json');
    const server = {
      server: doc.instance.server, pid: doc.instance.core_pid, watchdog_pid: doc.instance.watchdog_pid, server_state: 'ACTIVE',
      active_client_count: r.requests.length, active_clients: r.requests,
    };
    process.stdout.write(`${flags.noHeader ? '' : `${renderHeader(doc)}\n\n`}${JSON.stringify(server, null, 2)}\n`);
    return 0;
  }
  if (show === 'xml') process.stdout.write(renderXml(doc));
  else if (show === 'json') process.stdout.write(`${JSON.stringify(doc, null, 2)}\n`);
  else process.stdout.write(`${renderPool(doc, !flags.noHeader, paint)}\n`);
  return 0;
}

if (require.main === module) runMain('passenger-status', statusMain);
