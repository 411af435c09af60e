// The snippet for one app, for nginx or Apache: its root, the URI it is
// mounted at, and its options, which the web server hands the agent in
// X-Passenger-App-Root, X-Passenger-Base-URI and X-Passenger-App-Options.
// Several such snippets go in one server block or VirtualHost, one per app.
import { createHash } from 'node:crypto';
import * as path from 'node:path';
import { APP_OPTION_SPECS, type Options } from '../../config';
import { die } from '../common';

export interface AppSnippetSpec {
  appRoot: string;
  /** '' for an app at the root of the site. */
  baseUri: string;
  /** The app's options (the agent checks them again). */
  options: Partial<Options>;
  /** nginx's client_max_body_size syntax (e.g. 1024m); 0 for no limit. */
  maxBodySize: string;
}

/** Paths and URIs go into both servers' configuration unquoted: only characters no config language treats specially. */
const SAFE_PATH = /^\/[A-Za-z0-9._~@+=,/-]*$/;

export function checkAppRoot(raw: string): string {
  const root = path.resolve(raw);
  if (!SAFE_PATH.test(root)) die(`--app-root ${raw}: use a path of letters, digits and . _ ~ @ + = , / - only`, 'a link with such a name to the app works');
  return root;
}

export function checkBaseUri(raw: string): string {
  const uri = raw.replace(/\/+$/, '');
  if (uri !== '' && (!SAFE_PATH.test(uri) || uri.includes('//') || /(^|\/)\.\.?(\/|$)/.test(uri))) {
    die(`--base-uri ${raw}: expected a path like /blog, of letters, digits and . _ ~ @ + = , - only`);
  }
  return uri;
}

/** A size as nginx writes it (digits, then k, m or g), in bytes (Apache's LimitRequestBody). */
export function sizeBytes(size: string): number {
  const m = /^(\d+)([kmg]?)$/i.exec(size);
  if (!m) die(`--max-body-size ${size}: expected a size like 1024m, 500k or 0 (no limit)`);
  return Number(m[1]) * ({ '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 } as Record<string, number>)[m[2].toLowerCase()];
}

/**
 * Apache: a body larger than `bytes` gets 413; its LimitRequestBody does not
 * apply to proxied requests. Apache checks the Content-Length a client
 * declares; the agent counts a body without one against the limit sent in
 * X-Passenger-Max-Body-Size. The rule only under URIs matching `uriRe`, when
 * given; the header only on requests `on` (an `expr=` condition) selects.
 * For 0 (no limit) no rule, and the header is removed (a client's too).
 */
export function bodyLimitRule(uriRe: string, bytes: number, on: string): string {
  if (bytes === 0) return `RequestHeader unset X-Passenger-Max-Body-Size ${on}\n`;
  return `RequestHeader set X-Passenger-Max-Body-Size ${bytes} ${on}\n${uriRe ? `RewriteCond %{REQUEST_URI} ${uriRe}\n` : ''}`
    + `RewriteCond expr "%{HTTP:Content-Length} -gt ${bytes}"\nRewriteRule ^ - [R=413,L]\n`;
}

/** The shipped snippet's limit for requests no app snippet marked (PASSENGER_APP). */
export const SHIPPED_LIMIT_ON = `"expr=-z reqenv('PASSENGER_APP')"`;

/** The shipped snippet's body limit lines, as bodyLimitRule() writes them. */
export const SHIPPED_LIMIT_RE = /^RequestHeader (?:set|unset) X-Passenger-Max-Body-Size .*\n(?:RewriteCond expr "%\{HTTP:Content-Length\} -gt \d+"\nRewriteRule .*\n)?/m;

/**
 * The app's options as the JSON of X-Passenger-App-Options, with every
 * character of a string outside a plain set written as \uXXXX: the text
 * then needs no escaping in nginx's or Apache's quotes, holds no `$` or `%`
 * either would expand, and stays ASCII in an HTTP header.
 */
export function optionsJson(options: Partial<Options>): string {
  const str = (s: string): string => `"${s.replace(/[^A-Za-z0-9 _./:,=+@-]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)}"`;
  const value = (v: unknown): string => {
    if (typeof v === 'string') return str(v);
    if (typeof v === 'number' || typeof v === 'boolean') return String(v);
    return `{${Object.entries(v as Record<string, string>).map(([k, x]) => `${str(k)}:${str(x)}`).join(',')}}`;
  };
  const parts: string[] = [];
  for (const spec of APP_OPTION_SPECS) {
    const v = options[spec.prop];
    if (v === undefined || (spec.prop === 'envvars' && Object.keys(v as object).length === 0)) continue;
    parts.push(`${str(spec.key)}:${value(v)}`);
  }
  return `{${parts.join(',')}}`;
}

/** A name for the app's locations and markers, the same each time the snippet is printed. */
function appId(s: AppSnippetSpec): string {
  const slug = s.baseUri.replace(/[^A-Za-z0-9]+/g, '_').replace(/^_|_$/g, '') || 'root';
  return `passenger_${slug}_${createHash('sha256').update(`${s.appRoot}\n${s.baseUri}`).digest('hex').slice(0, 8)}`;
}

function banner(server: string, s: AppSnippetSpec, argv: readonly string[]): string {
  return `# passenger-ts for ${server}: the app at ${s.appRoot}, served at ${s.baseUri || '/'}.
# Printed by: passenger-config ${server}-snippet ${argv.join(' ').replace(/[\x00-\x1f\x7f]/g, '?')}
`;
}

/**
 * nginx: the app's URI prefix serves files under its public/ and sends the
 * rest to a named location that forwards to the agent (the proxy settings of
 * the shipped snippet `location`, whose app headers are filled in).
 */
export function nginxAppSnippet(shipped: string, s: AppSnippetSpec, argv: readonly string[]): string {
  const id = appId(s);
  const start = shipped.indexOf('location @passenger {');
  if (start === -1) throw new Error('the shipped nginx snippet has no location @passenger');
  const headers: Record<string, string> = {
    'X-Passenger-Document-Root': '""',
    'X-Passenger-App-Root': s.appRoot,
    'X-Passenger-Base-URI': s.baseUri === '' ? '""' : s.baseUri,
    'X-Passenger-App-Options': `'${optionsJson(s.options)}'`,
  };
  let proxy = shipped.slice(start).trimEnd().replace('location @passenger {', `location @${id} {\n    client_max_body_size ${s.maxBodySize};`);
  for (const [name, value] of Object.entries(headers)) {
    proxy = proxy.replace(new RegExp(`proxy_set_header ${name} [^;]*;`), `proxy_set_header ${name} ${value};`);
  }
  const pub = path.join(s.appRoot, 'public');
  const files = s.baseUri === ''
    ? `location / {
    root ${pub};
    client_max_body_size ${s.maxBodySize};
    try_files $uri @${id};
}
`
    : `# ${s.baseUri} itself, and everything under ${s.baseUri}/: files under public/ from nginx, the rest from the app.
location = ${s.baseUri} {
    alias ${pub};
    client_max_body_size ${s.maxBodySize};
    try_files $uri @${id};
}
location ^~ ${s.baseUri}/ {
    alias ${pub}/;
    client_max_body_size ${s.maxBodySize};
    try_files $uri @${id};
}
`;
  return `${banner('nginx', s, argv)}# Include it inside a server block; several apps' snippets may share one.
# The largest request body is client_max_body_size (--max-body-size).

${files}
${proxy}
`;
}

/**
 * Apache: the app's URI prefix maps to its public/ (Alias); what is no file
 * there goes to the agent, marked with PASSENGER_APP so that this app's
 * headers are set on it and no other's.
 */
export function apacheAppSnippet(shipped: string, s: AppSnippetSpec, socket: string, argv: readonly string[]): string {
  const id = appId(s);
  const pub = path.join(s.appRoot, 'public');
  const on = `"expr=reqenv('PASSENGER_APP') == '${id}'"`;
  const uriRe = s.baseUri.replace(/[.+=,~@-]/g, (c) => `\\${c}`);
  // The shipped snippet's settings for every forwarded request: the proxy worker, headers, limits.
  const common = shipped.slice(shipped.indexOf('AllowEncodedSlashes'))
    .replace(/^# The largest request body.*\n(?:#.*\n)*/m, '')
    .replace(SHIPPED_LIMIT_RE, '')
    .replace(/^RewriteCond %\{DOCUMENT_ROOT\}.*\n/m, '')
    .replace(/^RewriteCond %\{THE_REQUEST\}.*\n/m, '')
    .replace(/^RewriteRule .*\n/m, '');
  return `${banner('apache', s, argv)}# Include it inside a <VirtualHost>; several apps' snippets may share one
# (before the shipped passenger.conf, if that is included too).
# Request bodies larger than --max-body-size get 413.

${s.baseUri === '' ? `Alias / ${pub}/` : `Alias ${s.baseUri} ${pub}`}
<Directory ${pub}>
    Require all granted
</Directory>
${common.trimEnd()}
${bodyLimitRule(`^${uriRe}(/.*)?$`, sizeBytes(s.maxBodySize), on)}# ${s.baseUri || '/'} and below: what is no file under public/ goes to the app
# as the client sent it (see the shipped snippet), marked as this app's.
RewriteCond %{REQUEST_URI} ^${uriRe}(/.*)?$
RewriteCond ${pub}%1 !-f
RewriteCond %{THE_REQUEST} "^\\S+\\s+(?:[a-z][a-z0-9+.-]*://[^/\\s]*)?(/[^\\s?]*)" [NC]
RewriteRule ^ "unix:${socket}|http://localhost%1" [P,NE,L,E=PASSENGER_APP:${id}]
RequestHeader set X-Passenger-App-Root "${s.appRoot}" ${on}
${s.baseUri === '' ? `RequestHeader unset X-Passenger-Base-URI ${on}` : `RequestHeader set X-Passenger-Base-URI "${s.baseUri}" ${on}`}
RequestHeader set X-Passenger-App-Options '${optionsJson(s.options)}' ${on}
`;
}
