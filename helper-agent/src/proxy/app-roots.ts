// Behind nginx or Apache: which app group a request belongs to, and with what
// settings. The web server names the app: the app root and its settings from
// a generated snippet (`passenger-config nginx-snippet --app-root ...`), or
// only the document root, whose parent is the app root (Passenger's
// convention). The snippets set these X-Passenger-* headers, overwriting or
// clearing any a client sent. A group is named by the app root as configured
// (`/srv/app/current`, not the release it links to), but only roots whose
// real path lies at or below an --app-root-allow directory are served.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { appFileOptions, groupOptions, readPassengerfile, webAppOptions, type GroupOptions, type Options } from '../config';
import { ConfigError, PassengerError } from '../errors';
import type { Group } from '../pool/group';
import type { Pool } from '../pool/pool';
import type { RequestHead } from './headers';

export const DOCUMENT_ROOT_HEADER = 'x-passenger-document-root';
export const APP_ROOT_HEADER = 'x-passenger-app-root';
export const BASE_URI_HEADER = 'x-passenger-base-uri';
export const APP_OPTIONS_HEADER = 'x-passenger-app-options';
const CACHE_LIMIT = 1000;

/** What the web server says about an app besides its root, as sent (kept in process records, re-read at restarts). */
export interface WebSettings {
  baseUri?: string;
  options?: string;
}

interface NamedApp {
  appRoot: string | undefined;
  docRoot: string | undefined;
  baseUri: string | undefined;
  options: string | undefined;
}

/** Appends a repeated header's value as node:http folds it; an empty value is none. */
function fold(had: string | undefined, value: string): string | undefined {
  if (value === '') return had;
  return had === undefined ? value : `${had}, ${value}`;
}

/**
 * The X-Passenger-* headers naming the app, in one pass over the raw list
 * (no header object is built for them). Filled in place: read before the
 * next request's.
 */
const named: NamedApp = { appRoot: undefined, docRoot: undefined, baseUri: undefined, options: undefined };
function namedApp(req: RequestHead): NamedApp {
  named.appRoot = named.docRoot = named.baseUri = named.options = undefined;
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    const n = raw[i];
    // x-passenger-app-root, -document-root, -base-uri, -app-options
    if (n.length < 20 || n.length > 25 || (n.charCodeAt(0) | 32) !== 120 || n.charCodeAt(1) !== 45) continue;
    const name = n.toLowerCase();
    if (name === APP_ROOT_HEADER) named.appRoot = fold(named.appRoot, raw[i + 1]);
    else if (name === DOCUMENT_ROOT_HEADER) named.docRoot = fold(named.docRoot, raw[i + 1]);
    else if (name === BASE_URI_HEADER) named.baseUri = fold(named.baseUri, raw[i + 1]);
    else if (name === APP_OPTIONS_HEADER) named.options = fold(named.options, raw[i + 1]);
  }
  return named;
}

export class AppRootResolver {
  private readonly allowed: string[];
  private readonly cache = new Map<string, Group | PassengerError>();
  /** The latest settings the web server sent for each group: what its next restart applies. */
  private readonly web = new Map<string, WebSettings>();

  constructor(private readonly defaults: Options, private readonly pool: Pool, private readonly log: { warn(m: string): void }) {
    this.allowed = defaults.appRootAllow.map((d) => {
      try { return fs.realpathSync(d); } catch { return path.resolve(d); }
    });
  }

  /** The group for a request, or the error to answer with. One Map lookup once a request like it was seen. */
  groupFor(req: RequestHead): Group | PassengerError {
    const { appRoot, docRoot, baseUri, options } = namedApp(req);
    if (appRoot === undefined && docRoot === undefined) {
      return new PassengerError('E_APP_ROOT_DENIED', 'the request names no app: the web server must send X-Passenger-App-Root or X-Passenger-Document-Root (include the shipped or a generated snippet)');
    }
    const key = appRoot !== undefined ? `${appRoot}\n${baseUri ?? ''}\n${options ?? ''}` : docRoot as string;
    const hit = this.cache.get(key);
    if (hit !== undefined && (hit as Group).forgotten !== true) return hit;
    const result = this.resolve(appRoot, docRoot, { baseUri, options });
    // A broken Passengerfile.json may be fixed and a missing app deployed any moment: only settled answers are kept.
    if (!(result instanceof PassengerError && (result.code === 'E_CONFIG' || result.code === 'E_NO_APP'))) {
      if (this.cache.size >= CACHE_LIMIT) this.cache.clear();
      this.cache.set(key, result);
    }
    return result;
  }

  /** The web server's settings last seen for a group (written to its process records). */
  webSettingsOf(name: string): WebSettings | undefined {
    return this.web.get(name);
  }

  /**
   * The agent's defaults, then the app's Passengerfile.json, then the web
   * server's settings (the server's configuration is the administrator's).
   * Throws ConfigError for a broken file or settings.
   */
  private optionsOf(appRoot: string, web: WebSettings): GroupOptions {
    const { options: file, ignored } = appFileOptions(readPassengerfile(appRoot, undefined, (m) => this.log.warn(m)));
    if (ignored.length > 0) {
      this.log.warn(`${path.join(appRoot, 'Passengerfile.json')}: ${ignored.join(', ')} ${ignored.length === 1 ? 'applies' : 'apply'} to passenger start or the whole agent, not to one app behind a web server: ignored`);
    }
    const fromServer = web.options !== undefined ? webAppOptions(web.options) : {};
    const envvars = { ...this.defaults.envvars, ...(file.envvars ?? {}), ...(fromServer.envvars ?? {}) };
    // As Passenger: an app mounted under a sub-URI is told where.
    if (web.baseUri !== undefined) envvars.PASSENGER_BASE_URI = web.baseUri;
    return groupOptions({ ...this.defaults, ...file, ...fromServer, appRoot, envvars });
  }

  /**
   * Options for an app root a previous core served, or one to pre-start, with
   * the web server's settings it had; null if it is no longer allowed or
   * readable.
   */
  optionsFor(appRoot: string, web: WebSettings = {}): GroupOptions | null {
    if (!this.allows(appRoot)) return null;
    try {
      const o = this.optionsOf(appRoot, web);
      this.web.set(appRoot, web);
      return o;
    } catch { return null; }
  }

  /**
   * The group's options read again (its Passengerfile.json and the web
   * server's latest settings), for a restart. Throws PassengerError when its
   * root is no longer allowed (a link switched to elsewhere) or its settings broke.
   */
  reloadOptions(g: Group): GroupOptions {
    if (!this.allows(g.name)) {
      throw new PassengerError('E_APP_ROOT_DENIED', `${g.name} no longer leads to a directory under an --app-root-allow directory (${this.allowed.join(', ') || 'none given'})`);
    }
    return this.optionsOf(g.name, this.web.get(g.name) ?? {});
  }

  /** Whether the real path of `root` (every link resolved) is an allowed directory. Fails closed. */
  allows(root: string): boolean {
    let real: string;
    try {
      real = fs.realpathSync(root);
      if (!fs.statSync(real).isDirectory()) return false;
    } catch { return false; }
    return this.allowed.some((a) => real === a || real.startsWith(a.endsWith('/') ? a : `${a}/`));
  }

  /**
   * The app root a document root names, as configured: its parent. When the
   * document root is itself a link (Passenger's way of mounting an app under a
   * sub-URI: `/site/blog -> /srv/blog/public`), the parent of what it links to.
   */
  private appRootOfDocRoot(docRoot: string): string | null {
    if (!path.isAbsolute(docRoot) || docRoot.includes('\0')) return null;
    const doc = path.resolve(docRoot);
    try {
      if (fs.lstatSync(doc).isSymbolicLink()) return path.dirname(path.resolve(path.dirname(doc), fs.readlinkSync(doc)));
    } catch { /* no document root: the app root itself may exist */ }
    return path.dirname(doc);
  }

  private resolve(appRootHeader: string | undefined, docRoot: string | undefined, web: WebSettings): Group | PassengerError {
    let root: string | null;
    if (appRootHeader !== undefined) {
      root = path.isAbsolute(appRootHeader) && !appRootHeader.includes('\0') ? path.resolve(appRootHeader) : null;
    } else {
      root = this.appRootOfDocRoot(docRoot as string);
    }
    if (root === null) return new PassengerError('E_NO_APP', `Not Found: no app at ${appRootHeader ?? docRoot}`);
    let real: string;
    try {
      real = fs.realpathSync(root);
      if (!fs.statSync(real).isDirectory()) throw new Error('not a directory');
    } catch {
      return new PassengerError('E_NO_APP', `Not Found: no app at ${root}`);
    }
    if (!this.allows(root)) {
      this.log.warn(`refused a request for app root ${real}${real !== root ? ` (named ${root})` : ''}: not under an --app-root-allow directory (${this.allowed.join(', ') || 'none given'})`);
      return new PassengerError('E_APP_ROOT_DENIED', `Forbidden: this server does not serve the app at ${root}`);
    }
    const existing = this.pool.groups.get(root);
    if (existing) {
      // New settings (the web server was reloaded) wait for the app's next restart.
      const known = this.web.get(root);
      if (known?.baseUri !== web.baseUri || known?.options !== web.options) {
        try {
          if (web.options !== undefined) webAppOptions(web.options);
          this.web.set(root, web);
        } catch (e) {
          if (e instanceof ConfigError) this.log.warn(e.message);
        }
      }
      return existing;
    }
    try {
      const g = this.pool.group(this.optionsOf(root, web));
      this.web.set(root, web);
      return g;
    } catch (e) {
      if (e instanceof ConfigError) {
        this.log.warn(e.message);
        return e;
      }
      throw e;
    }
  }
}
