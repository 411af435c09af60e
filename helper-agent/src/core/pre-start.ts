// --pre-start: apps that start with the agent, and with each core the
// watchdog starts after a crash, so the first visitor after a reboot does not
// wait for a cold start. An app root is started from its Passengerfile.json
// and the agent's defaults; a URL is requested through the web server (as
// Passenger's pre_start does), which brings the web server's settings along.
import * as http from 'node:http';
import * as https from 'node:https';
import * as path from 'node:path';
import type { Pool } from '../pool/pool';
import type { AppRootResolver } from '../proxy/app-roots';

interface PreStartLog {
  notice(m: string): void;
  warn(m: string): void;
}

/** How often, and how many times, a URL is tried while the web server is not up yet. */
const RETRY_MS = 1000;
const ATTEMPTS = 180;
const REQUEST_TIMEOUT_MS = 120_000;

export function preStart(entries: readonly string[], resolver: AppRootResolver, pool: Pool, log: PreStartLog): void {
  for (const entry of entries) {
    if (/^https?:\/\//i.test(entry)) void preStartUrl(entry, log);
    else preStartRoot(entry, resolver, pool, log);
  }
}

function preStartRoot(entry: string, resolver: AppRootResolver, pool: Pool, log: PreStartLog): void {
  const root = path.resolve(entry);
  const options = resolver.optionsFor(root);
  if (options === null) {
    log.warn(`--pre-start ${entry}: not started: no app directory under an --app-root-allow directory, or its Passengerfile.json is broken`);
    return;
  }
  const g = pool.group(options);
  // A group adopted from the previous core may be short of min_instances.
  pool.spawnIfNeeded(g);
  log.notice(`pre-starting ${root}`);
}

/** One GET; resolves with the status, or null when the server could not be reached. */
function get(url: string): Promise<number | null> {
  return new Promise((resolve) => {
    const mod = url.toLowerCase().startsWith('https:') ? https : http;
    const req = mod.get(url, { headers: { 'user-agent': 'passenger-ts pre-start' }, timeout: REQUEST_TIMEOUT_MS }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', () => resolve(null));
  });
}

async function preStartUrl(url: string, log: PreStartLog): Promise<void> {
  for (let attempt = 1; attempt <= ATTEMPTS; attempt++) {
    const status = await get(url);
    if (status !== null) {
      log.notice(`pre-start: ${url} answered ${status}`);
      return;
    }
    await new Promise((r) => setTimeout(r, RETRY_MS).unref());
  }
  log.warn(`pre-start: ${url} could not be reached in ${(ATTEMPTS * RETRY_MS) / 1000} s; the app starts on its first request instead`);
}
