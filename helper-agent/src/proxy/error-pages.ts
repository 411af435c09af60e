// The pages the agent itself answers with: queue full, and the app that
// could not start (the friendly page shows the failed step, the app's output
// and a hint; it is only shown where friendly_error_pages is on).
import { PassengerError, SpawnError } from '../errors';
import type { Group } from '../pool/group';

function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

export function queueFullPage(): string {
  return '<!DOCTYPE html>\n<html><head><title>This website is under heavy load</title></head>'
    + '<body><h1>This website is under heavy load (queue full)</h1>'
    + '<p>We are sorry for the inconvenience. Please try again in a moment.</p></body></html>\n';
}

const STEP_TEXT: Record<string, string> = {
  user: 'choosing the user the app runs as',
  fork: 'starting the process',
  load: 'loading the app',
  listen: 'waiting for the app to listen',
  timeout: 'waiting for the app to listen (timed out)',
};

export function spawnErrorPage(err: Error, group: Group | null): string {
  const step = err instanceof SpawnError ? STEP_TEXT[err.step] ?? err.step : 'starting the app';
  const output = err instanceof SpawnError ? err.output : '';
  const hint = (err as { hint?: string }).hint;
  return `<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>The application could not start</title>
<style>body{font-family:sans-serif;max-width:60em;margin:2em auto;padding:0 1em}pre{background:#f4f4f4;padding:1em;overflow:auto}</style></head>
<body><h1>The application could not start</h1>
<p><b>App root:</b> ${esc(group?.appRoot ?? '?')}<br><b>Failed while:</b> ${esc(step)}<br><b>Error:</b> ${esc(err.message)}</p>
${hint ? `<p><b>What to do:</b> ${esc(hint)}</p>` : ''}
<h2>App output</h2><pre>${esc(output || '(the app printed nothing)')}</pre>
<p><small>This page is shown because friendly error pages are on (the development environment). In production the visitor sees a plain error and the details go to the log.</small></p>
</body></html>
`;
}

export interface AgentResponse {
  status: number;
  type: string;
  body: string;
  /** The server stops: the client's connection ends with this answer (Connection: close). */
  close?: boolean;
}

/** What the agent answers itself when a request cannot be forwarded. */
export function agentErrorResponse(err: Error, group: Group | null): AgentResponse {
  const code = (err as { code?: string }).code;
  if (code === 'E_QUEUE_FULL') return { status: group?.options.requestQueueOverflowStatusCode ?? 503, type: 'text/html; charset=utf-8', body: queueFullPage() };
  // A failure at the app's side (retry.ts): the details go to the log, not to the client.
  if (code === 'E_APP_UNREACHABLE' || code === 'E_APP_CONNECTION_LOST' || code === 'E_APP_BAD_RESPONSE') return agentErrorResponse(new PassengerError('E_BAD_GATEWAY', err.message), group);
  if (code === 'E_QUEUE_TIMEOUT' || code === 'E_REQUEST_TIMEOUT') return { status: 504, type: 'text/plain; charset=utf-8', body: `Gateway Timeout: ${err.message}.\n` };
  if (code === 'E_APP_ROOT_DENIED') return { status: 403, type: 'text/plain; charset=utf-8', body: `${err.message}\n` };
  if (code === 'E_NO_APP') return { status: 404, type: 'text/plain; charset=utf-8', body: `${err.message}\n` };
  if (code === 'E_SHUTTING_DOWN') return { status: 503, type: 'text/plain; charset=utf-8', body: 'Service Unavailable: the server is shutting down.\n', close: true };
  if (code === 'E_BODY_TOO_LARGE') return { status: 413, type: 'text/plain; charset=utf-8', body: 'Payload Too Large: the request body is larger than this server takes.\n', close: true };
  if (code === 'E_BAD_GATEWAY') return { status: 502, type: 'text/plain; charset=utf-8', body: 'Bad Gateway: the application process failed to answer.\n' };
  if (group?.options.friendlyErrorPages) return { status: 500, type: 'text/html; charset=utf-8', body: spawnErrorPage(err, group) };
  return { status: 500, type: 'text/plain; charset=utf-8', body: 'Internal Server Error: the application could not be started. The server log says why.\n' };
}
