// The two ends of a WebSocket tunnel (the client's socket and the app's):
// the listeners every tunnel shares for its end, and how an end is closed or
// answered (tunnel-relay.ts moves the bytes between them).
import * as http from 'node:http';
import type { Socket } from 'node:net';
import type { Group } from '../pool/group';
import { agentErrorResponse } from './error-pages';

/** What the shared listeners reach through a socket: the exchange it belongs to (forward-upgrade.ts). */
export interface TunnelOwner {
  close(): void;
}

// Listeners shared by every tunnel (no closures): an idle WebSocket should
// cost the agent as little memory as can be. Each socket names its exchange.
export const kUpgrade = Symbol('passenger.upgrade');
export type Side = Socket & { [kUpgrade]?: TunnelOwner };

/** Either side closing (or ending) ends the exchange: both go, and its session or WebSocket is freed at once. */
export function sideClosed(this: Side): void {
  this[kUpgrade]?.close();
}

export function destroyOnError(this: Socket): void {
  this.destroy();
}

export function headLines(status: number, message: string | undefined, raw: string[], extra: string[]): string {
  let head = `HTTP/1.1 ${status} ${message || http.STATUS_CODES[status] || ''}\r\n`;
  for (let i = 0; i < raw.length; i += 2) head += `${raw[i]}: ${raw[i + 1]}\r\n`;
  for (let i = 0; i < extra.length; i += 2) head += `${extra[i]}: ${extra[i + 1]}\r\n`;
  return `${head}\r\n`;
}

/**
 * Closes a side whose peer went: what was already written to it (a close
 * frame, the end of a response) still goes out first, unless it broke.
 */
export function endThenDestroy(s: Socket): void {
  if (s.destroyed) return;
  if (!s.writableEnded) s.end();
  if (s.writableFinished) s.destroy();
  else s.once('finish', () => s.destroy());
}

/** An upgrade that never reached a process: the agent's error answer, and the connection ends. */
export function sendAgentResponse(client: Socket, err: Error, group: Group | null): void {
  const r = agentErrorResponse(err, group);
  client.end(headLines(r.status, undefined, ['content-type', r.type, 'content-length', String(Buffer.byteLength(r.body)), 'connection', 'close'], []) + r.body);
  client.once('finish', () => client.destroy());
}
