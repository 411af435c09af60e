// The header rules every request path shares (proxy/headers.ts).
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { test } from 'node:test';
import {
  REQUEST_HOP_BY_HOP, RESPONSE_HOP_BY_HOP, appHeaders, clientOf, isResponseHopByHop, rewriteAppHeaders,
  stripResponseHopByHop, stripResponseHopByHopObject,
} from '../../helper-agent/src/proxy/headers';

/** A request as the header rules see it: raw headers, parsed headers, and the peer's address (undefined: a Unix socket). */
function request(raw: string[], remoteAddress?: string): IncomingMessage {
  const headers: Record<string, string> = {};
  for (let i = 0; i < raw.length; i += 2) {
    const n = raw[i].toLowerCase();
    headers[n] = headers[n] === undefined ? raw[i + 1] : `${headers[n]}, ${raw[i + 1]}`;
  }
  return { rawHeaders: raw, headers, socket: { remoteAddress } } as unknown as IncomingMessage;
}

const pairs = (list: string[]): [string, string][] => {
  const out: [string, string][] = [];
  for (let i = 0; i < list.length; i += 2) out.push([list[i], list[i + 1]]);
  return out;
};

test('request headers: hop-by-hop ones of every case are dropped, the rest keep their order and spelling', () => {
  const raw = ['Host', 'example.test', 'Connection', 'keep-alive', 'KEEP-ALIVE', 'timeout=5', 'Transfer-Encoding', 'chunked',
    'Upgrade', 'h2c', 'Expect', '100-continue', 'Proxy-Connection', 'close', 'TE', 'trailers', 'Accept', 'text/html', 'X-Custom', 'a'];
  const out = appHeaders(request(raw, '10.0.0.7'));
  assert.deepEqual(pairs(out), [['Host', 'example.test'], ['Accept', 'text/html'], ['X-Custom', 'a'],
    ['x-forwarded-for', '10.0.0.7'], ['x-forwarded-proto', 'http']]);
});

test('request headers: X-Passenger-* never reaches the app, whatever its case; look-alikes do', () => {
  const raw = ['X-Passenger-App-Root', '/srv/other', 'x-passenger-connect-password', 'p', 'X-PASSENGER-FOO', '1', 'X-Passengers', 'kept', 'X-Passenger', 'kept too'];
  assert.deepEqual(pairs(appHeaders(request(raw, '::1'))).slice(0, 2), [['X-Passengers', 'kept'], ['X-Passenger', 'kept too']]);
});

test('request headers: X-Forwarded-For gains the peer; over a Unix socket the web server\'s value stands; a given proto is kept', () => {
  const tcp = appHeaders(request(['X-Forwarded-For', '1.2.3.4', 'x-forwarded-for', '5.6.7.8', 'X-Forwarded-Proto', 'https'], '127.0.0.1'));
  assert.deepEqual(pairs(tcp), [['X-Forwarded-Proto', 'https'], ['x-forwarded-for', '1.2.3.4, 5.6.7.8, 127.0.0.1']]);
  const unix = appHeaders(request(['X-Forwarded-For', '1.2.3.4'], undefined));
  assert.deepEqual(pairs(unix), [['x-forwarded-for', '1.2.3.4'], ['x-forwarded-proto', 'http']]);
  assert.deepEqual(pairs(appHeaders(request([], undefined))), [['x-forwarded-proto', 'http']], 'no address, no header made up');
});

test('request headers: the object form (reply-from) follows the same rules as the raw form', () => {
  const raw = ['Host', 'h', 'Connection', 'close', 'Expect', '100-continue', 'TE', 'trailers', 'Upgrade', 'x', 'X-Passenger-App-Root', '/x',
    'X-Forwarded-For', '1.2.3.4', 'Accept', '*/*'];
  const req = request(raw, '10.1.1.1');
  const fromObject = rewriteAppHeaders({ ...req.headers }, req);
  const fromRaw: Record<string, string> = {};
  for (const [n, v] of pairs(appHeaders(req))) fromRaw[n.toLowerCase()] = v;
  assert.deepEqual(fromObject, fromRaw);
  for (const name of REQUEST_HOP_BY_HOP) assert.equal(name in fromObject, false, name);
});

test('response headers: connection, keep-alive and transfer-encoding go, in place, whatever their case', () => {
  const list = ['Content-Type', 'text/plain', 'Connection', 'close', 'keep-alive', 'timeout=5', 'TRANSFER-ENCODING', 'chunked', 'Set-Cookie', 'a=1', 'Set-Cookie', 'b=2'];
  const same = stripResponseHopByHop(list);
  assert.equal(same, list);
  assert.deepEqual(list, ['Content-Type', 'text/plain', 'Set-Cookie', 'a=1', 'Set-Cookie', 'b=2']);
  for (const name of RESPONSE_HOP_BY_HOP) assert.ok(isResponseHopByHop(name.toUpperCase()), name);
  assert.equal(isResponseHopByHop('content-length'), false);
  assert.equal(isResponseHopByHop('x-connection!'), false);
  assert.deepEqual(stripResponseHopByHopObject({ connection: 'close', 'keep-alive': 'x', 'transfer-encoding': 'chunked', etag: '"1"' }), { etag: '"1"' });
});

test('the client of a request: its address, or behind a web server the last X-Forwarded-For entry', () => {
  assert.equal(clientOf(request([], '10.0.0.1')), '10.0.0.1');
  assert.equal(clientOf(request(['X-Forwarded-For', '1.1.1.1, 2.2.2.2 '], undefined)), '2.2.2.2');
  assert.equal(clientOf(request([], undefined)), null);
});
