// After a failure at the app's side: the project's code, whether the process
// leaves rotation, whether the request goes to another process, and what the
// client gets (proxy/retry.ts, proxy/error-pages.ts).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ERROR_CODES, PassengerError, SpawnError } from '../../helper-agent/src/errors';
import type { Group } from '../../helper-agent/src/pool/group';
import { agentErrorResponse } from '../../helper-agent/src/proxy/error-pages';
import { MAX_ATTEMPTS, hasBody, mayRetry, rootCode, shouldDetach, upstreamCode, upstreamError } from '../../helper-agent/src/proxy/retry';

const coded = (code: string, cause?: unknown): Error => Object.assign(new Error(code), { code, cause });

test('upstream errors map to the project\'s codes, from any client and through causes', () => {
  assert.equal(upstreamCode(coded('ECONNREFUSED')), 'E_APP_UNREACHABLE');
  assert.equal(upstreamCode(coded('ENOENT')), 'E_APP_UNREACHABLE');
  for (const c of ['UND_ERR_SOCKET', 'ECONNRESET', 'EPIPE', 'UND_ERR_CLOSED', 'UND_ERR_DESTROYED', 'E_APP_CONNECTION_LOST']) {
    assert.equal(upstreamCode(coded(c)), 'E_APP_CONNECTION_LOST', c);
  }
  assert.equal(upstreamCode(coded('HPE_INVALID_CONSTANT')), 'E_APP_BAD_RESPONSE');
  assert.equal(upstreamCode(coded('E_APP_BAD_RESPONSE')), 'E_APP_BAD_RESPONSE');
  assert.equal(upstreamCode(new Error('no code')), 'E_BAD_GATEWAY');
  assert.equal(upstreamCode(coded('UND_ERR_ABORTED')), 'E_BAD_GATEWAY');
  // reply-from wraps undici's error; the innermost code is the one that says what happened.
  const wrapped = coded('FST_REPLY_FROM_INTERNAL_SERVER_ERROR', coded('UND_ERR_SOCKET', coded('ECONNREFUSED')));
  assert.equal(rootCode(wrapped), 'ECONNREFUSED');
  assert.equal(upstreamCode(wrapped), 'E_APP_UNREACHABLE');
  for (const c of ['E_APP_UNREACHABLE', 'E_APP_CONNECTION_LOST', 'E_APP_BAD_RESPONSE', 'E_BAD_GATEWAY']) assert.ok(c in ERROR_CODES, c);
});

test('the error answered keeps its code and the low-level error as its cause', () => {
  const low = coded('ECONNRESET');
  const e = upstreamError(low);
  assert.ok(e instanceof PassengerError);
  assert.equal(e.code, 'E_APP_CONNECTION_LOST');
  assert.equal((e as { cause?: unknown }).cause, low);
  assert.match(e.message, /failed to answer: ECONNRESET/);
});

test('only a refused connection takes the process out of rotation', () => {
  assert.equal(shouldDetach('E_APP_UNREACHABLE'), true);
  for (const c of ['E_APP_CONNECTION_LOST', 'E_APP_BAD_RESPONSE', 'E_BAD_GATEWAY'] as const) assert.equal(shouldDetach(c), false, c);
});

test('retries: a refused connection for any method, a lost one for idempotent methods; never with a body or past the limit', () => {
  assert.equal(mayRetry('E_APP_UNREACHABLE', 'POST', false, 1), true);
  assert.equal(mayRetry('E_APP_UNREACHABLE', 'POST', true, 1), false, 'a body cannot be sent twice');
  assert.equal(mayRetry('E_APP_CONNECTION_LOST', 'GET', false, 1), true);
  assert.equal(mayRetry('E_APP_CONNECTION_LOST', 'DELETE', false, 2), true);
  assert.equal(mayRetry('E_APP_CONNECTION_LOST', 'POST', false, 1), false, 'the app may have acted on it');
  assert.equal(mayRetry('E_APP_CONNECTION_LOST', 'PATCH', false, 1), false);
  assert.equal(mayRetry('E_APP_BAD_RESPONSE', 'GET', false, 1), false, 'it answered, badly');
  assert.equal(mayRetry('E_BAD_GATEWAY', 'GET', false, 1), false);
  assert.equal(mayRetry('E_APP_UNREACHABLE', 'GET', false, MAX_ATTEMPTS), false);
  assert.equal(mayRetry('E_APP_UNREACHABLE', 'GET', false, MAX_ATTEMPTS - 1), true);
});

test('a request has a body when it says so: chunked, or a length other than 0', () => {
  assert.equal(hasBody({}), false);
  assert.equal(hasBody({ 'content-length': '0' }), false);
  assert.equal(hasBody({ 'content-length': '12' }), true);
  assert.equal(hasBody({ 'transfer-encoding': 'chunked' }), true);
});

test('error responses: each code its status; details of a failed start only where friendly pages are on', () => {
  const group = (friendly: boolean, overflow = 503) => ({ appRoot: '/srv/<app>', options: { friendlyErrorPages: friendly, requestQueueOverflowStatusCode: overflow } }) as unknown as Group;
  const full = agentErrorResponse(new PassengerError('E_QUEUE_FULL', 'full'), group(false));
  assert.equal(full.status, 503);
  assert.match(full.body, /under heavy load \(queue full\)/);
  assert.equal(agentErrorResponse(new PassengerError('E_QUEUE_FULL', 'full'), group(false, 429)).status, 429);
  assert.equal(agentErrorResponse(new PassengerError('E_QUEUE_TIMEOUT', 'waited'), null).status, 504);
  assert.equal(agentErrorResponse(new PassengerError('E_REQUEST_TIMEOUT', 'ran'), null).status, 504);
  assert.equal(agentErrorResponse(new PassengerError('E_APP_ROOT_DENIED', 'no'), null).status, 403);
  assert.equal(agentErrorResponse(new PassengerError('E_NO_APP', 'none'), null).status, 404);
  for (const code of ['E_BAD_GATEWAY', 'E_APP_UNREACHABLE', 'E_APP_CONNECTION_LOST', 'E_APP_BAD_RESPONSE'] as const) {
    const r = agentErrorResponse(new PassengerError(code, 'secret detail'), group(true));
    assert.equal(r.status, 502, code);
    assert.doesNotMatch(r.body, /secret detail/, 'the app\'s failure stays in the log');
  }
  const spawn = new SpawnError('load', 'it threw <b>', 'stack <trace>', 'fix the app');
  const plain = agentErrorResponse(spawn, group(false));
  assert.equal(plain.status, 500);
  assert.doesNotMatch(plain.body, /stack|it threw/, 'production shows no output');
  const friendly = agentErrorResponse(spawn, group(true));
  assert.equal(friendly.status, 500);
  assert.match(friendly.type, /html/);
  assert.match(friendly.body, /stack &#60;trace&#62;/, 'output shown, escaped');
  assert.match(friendly.body, /\/srv\/&#60;app&#62;/);
  assert.match(friendly.body, /fix the app/);
});
