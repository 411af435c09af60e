// Behind nginx or Apache: which app group a request belongs to. The web
// server names the document root (`X-Passenger-Document-Root`, set by the
// shipped snippet, which also overwrites any such header a client sent); the
// app root is its parent, as in Passenger. Only roots at or below an
// --app-root-allow directory are served, whatever a request says.
import * as fs from 'node:fs';
import type { IncomingMessage } from 'node:http';
import * as path from 'node:path';
import { appFileOptions, groupOptions, readPassengerfile, type GroupOptions, type Options } from '../config';
import { ConfigError, PassengerError } from '../errors';
import type { Group } from '../pool/group';
import type { Pool } from '../pool/pool';

export const DOCUMENT_ROOT_HEADER = 'x-passenger-document-root';
const CACHE_LIMIT = 1000;

export class AppRootResolver {
  private readonly allowed: string[];
  private readonly cache = new Map<string, Group | PassengerError>();

  constructor(private readonly defaults: Options, private readonly pool: Pool, private readonly log: { warn(m: string): void }) {
    this.allowed = defaults.appRootAllow.map((d) => {
      try { return fs.realpathSync(d); } catch { return path.resolve(d); }
    });
  }

  /** The group for a request, or the error to answer with. One Map lookup once a document root was seen. */
  groupFor(req: IncomingMessage): Group | PassengerError {
    const docRoot = req.headers[DOCUMENT_ROOT_HEADER];
    if (typeof docRoot !== 'string' || docRoot === '') {
      return new PassengerError('E_APP_ROOT_DENIED', 'the request names no app: the web server must send X-Passenger-Document-Root (include the shipped snippet)');
    }
    const hit = this.cache.get(docRoot);
    if (hit !== undefined && (hit as Group).forgotten !== true) return hit;
    const result = this.resolve(docRoot);
    // A broken Passengerfile.json may be fixed and a missing app deployed any moment: only settled answers are kept.
    if (!(result instanceof PassengerError && (result.code === 'E_CONFIG' || result.code === 'E_NO_APP'))) {
      if (this.cache.size >= CACHE_LIMIT) this.cache.clear();
      this.cache.set(docRoot, result);
    }
    return result;
  }

  /** The agent's defaults, then the app's Passengerfile.json. Throws ConfigError for a broken file. */
  private optionsOf(appRoot: string): GroupOptions {
    const { options: file, ignored } = appFileOptions(readPassengerfile(appRoot, undefined, (m) => this.log.warn(m)));
    if (ignored.length > 0) {
      this.log.warn(`${path.join(appRoot, 'Passengerfile.json')}: ${ignored.join(', ')} ${ignored.length === 1 ? 'applies' : 'apply'} to passenger start or the whole agent, not to one app behind a web server: ignored`);
    }
    return groupOptions({ ...this.defaults, ...file, appRoot, envvars: { ...this.defaults.envvars, ...(file.envvars ?? {}) } });
  }

  /** Options for an app root a previous core served, or null if it is no longer allowed or readable. */
  optionsFor(appRoot: string): GroupOptions | null {
    if (!this.isAllowed(appRoot)) return null;
    try { return this.optionsOf(appRoot); } catch { return null; }
  }

  private isAllowed(appRoot: string): boolean {
    return this.allowed.some((a) => appRoot === a || appRoot.startsWith(a.endsWith('/') ? a : `${a}/`));
  }

  /**
   * The app root a document root names, by real path: the parent of the
   * document root, or, when the document root does not exist (an app without
   * public/), the real path of its parent. Null when neither exists. Every
   * link is resolved before the allowed roots are checked, so a link inside
   * an allowed root cannot lead out of it.
   */
  private appRootOf(docRoot: string): string | null {
    if (!path.isAbsolute(docRoot) || docRoot.includes('\0')) return null;
    try {
      return path.dirname(fs.realpathSync(docRoot));
    } catch { /* no document root: the app root itself may exist */ }
    try {
      const root = fs.realpathSync(path.dirname(docRoot));
      return fs.statSync(root).isDirectory() ? root : null;
    } catch {
      return null;
    }
  }

  private resolve(docRoot: string): Group | PassengerError {
    const appRoot = this.appRootOf(docRoot);
    if (appRoot === null) {
      return new PassengerError('E_NO_APP', `Not Found: no app at ${path.dirname(docRoot)}`);
    }
    if (!this.isAllowed(appRoot)) {
      this.log.warn(`refused a request for app root ${appRoot}: not under an --app-root-allow directory (${this.allowed.join(', ') || 'none given'})`);
      return new PassengerError('E_APP_ROOT_DENIED', `Forbidden: this server does not serve the app at ${appRoot}`);
    }
    const existing = this.pool.groups.get(appRoot);
    if (existing) return existing;
    try {
      return this.pool.group(this.optionsOf(appRoot));
    } catch (e) {
      if (e instanceof ConfigError) {
        this.log.warn(e.message);
        return e;
      }
      throw e;
    }
  }
}
