// The sticky-session cookie (proxy/sticky.ts): reading the client's, writing ours.
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { test } from 'node:test';
import { cookieFor, cookieValue, overHttps, requestedProcess, stickyCookie } from '../../helper-agent/src/proxy/sticky';

const NAME = '_passenger_route';

function request(headers: Record<string, string>, encrypted = false): IncomingMessage {
  return { headers, socket: { encrypted } } as unknown as IncomingMessage;
}

test('cookie parsing: the named cookie anywhere in the header, not one whose name merely ends or begins with it', () => {
  assert.equal(cookieValue(`${NAME}=3`, NAME), '3');
  assert.equal(cookieValue(`a=1; ${NAME}=12; b=2`, NAME), '12');
  assert.equal(cookieValue(`a=1;${NAME}= 7 `, NAME), '7');
  assert.equal(cookieValue(`x${NAME}=1; ${NAME}x=2`, NAME), null);
  assert.equal(cookieValue(`x${NAME}=1; ${NAME}=5`, NAME), '5');
  assert.equal(cookieValue(`${NAME}`, NAME), null, 'no value');
  assert.equal(cookieValue(`${NAME}=`, NAME), '');
  assert.equal(cookieValue(undefined, NAME), null);
  assert.equal(cookieValue('', NAME), null);
});

test('the cookie written: Path=/ and the attributes, Secure only over HTTPS whatever the attributes say', () => {
  assert.equal(stickyCookie(NAME, 4, 'SameSite=Lax', false), `${NAME}=4; Path=/; SameSite=Lax`);
  assert.equal(stickyCookie(NAME, 4, 'SameSite=Lax', true), `${NAME}=4; Path=/; SameSite=Lax; Secure`);
  assert.equal(stickyCookie(NAME, 4, 'SameSite=Lax; Secure;', false), `${NAME}=4; Path=/; SameSite=Lax`);
  assert.equal(stickyCookie(NAME, 4, 'Secure; SameSite=None', true), `${NAME}=4; Path=/; SameSite=None; Secure`);
  assert.equal(stickyCookie('route', 9, '', false), 'route=9; Path=/');
});

test('HTTPS is the client\'s own TLS connection, or what the web server in front says', () => {
  assert.equal(overHttps(request({})), false);
  assert.equal(overHttps(request({}, true)), true);
  assert.equal(overHttps(request({ 'x-forwarded-proto': 'https' })), true);
  assert.equal(overHttps(request({ 'x-forwarded-proto': 'http' })), false);
});

test('stickiness off: no cookie is read or written; on: written only when the client does not hold this process\'s', () => {
  const off = { stickySessions: false, stickySessionsCookieName: NAME, stickySessionsCookieAttributes: 'SameSite=Lax' };
  const on = { ...off, stickySessions: true };
  const req = request({ cookie: `${NAME}=2` });
  assert.equal(requestedProcess(off, req), null);
  assert.equal(cookieFor(off, 3, null, req), null);
  assert.equal(requestedProcess(on, req), '2');
  assert.equal(cookieFor(on, 2, '2', req), null, 'it already points here');
  assert.equal(cookieFor(on, 3, '2', req), `${NAME}=3; Path=/; SameSite=Lax`, 'its process is gone or full: re-pinned');
});
