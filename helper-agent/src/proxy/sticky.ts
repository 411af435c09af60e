// The sticky-session cookie: which process a client asks for, and the
// Set-Cookie that pins it to the one that served it. Passenger's cookie is
// `_passenger_route` with SameSite=Lax and Secure; Secure is sent only when
// the request came over HTTPS, else browsers drop the cookie on plain HTTP.
import type { RequestHead } from './headers';
import type { GroupOptions } from '../config';

/** The value of cookie `name` in a Cookie header, or null. */
export function cookieValue(header: string | undefined, name: string): string | null {
  if (header === undefined) return null;
  let i = header.indexOf(name);
  while (i !== -1) {
    const before = i === 0 ? ' ' : header[i - 1];
    if ((before === ' ' || before === ';') && header[i + name.length] === '=') {
      const start = i + name.length + 1;
      const end = header.indexOf(';', start);
      return header.slice(start, end === -1 ? undefined : end).trim();
    }
    i = header.indexOf(name, i + 1);
  }
  return null;
}

/** The request came over HTTPS: to us directly, or to the web server in front. */
export function overHttps(req: RequestHead): boolean {
  return req.socket.encrypted === true || req.headers['x-forwarded-proto'] === 'https';
}

/** The Set-Cookie value pinning a client to process `id`. */
export function stickyCookie(name: string, id: number, attributes: string, https: boolean): string {
  const attrs = attributes.replace(/;?\s*Secure\s*;?/i, ';').replace(/^;|;\s*$/g, '').trim();
  return `${name}=${id}; Path=/${attrs ? `; ${attrs}` : ''}${https ? '; Secure' : ''}`;
}

type StickyOptions = Pick<GroupOptions, 'stickySessions' | 'stickySessionsCookieName' | 'stickySessionsCookieAttributes'>;

/** The process id a request asks for, or null (no cookie, or stickiness off). */
export function requestedProcess(o: StickyOptions, req: RequestHead): string | null {
  return o.stickySessions ? cookieValue(req.headers.cookie, o.stickySessionsCookieName) : null;
}

/** The Set-Cookie for a response from process `id`, or null when the client already holds it (or stickiness is off). */
export function cookieFor(o: StickyOptions, id: number, requested: string | null, req: RequestHead): string | null {
  if (!o.stickySessions || requested === String(id)) return null;
  return stickyCookie(o.stickySessionsCookieName, id, o.stickySessionsCookieAttributes, overHttps(req));
}
