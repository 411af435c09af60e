// Talking to a running agent's admin API over its Unix socket.
import * as http from 'node:http';
import { readErrorBody } from '../admin/protocol';
import { PassengerError } from '../errors';
import type { InstanceDir } from './instance-dir';

export interface AdminResponse {
  status: number;
  body: string;
}

export function adminRequest(inst: InstanceDir, method: string, urlPath: string, timeoutMs = 10_000): Promise<AdminResponse> {
  return new Promise((resolve, reject) => {
    const req = http.request({ socketPath: inst.adminSocket, method, path: urlPath, headers: { host: 'admin' } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => { body += c; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`no answer within ${timeoutMs / 1000} s`)));
    req.on('error', (e: NodeJS.ErrnoException) => reject(e.code === 'EACCES'
      ? new PassengerError('E_ADMIN_DENIED', `permission denied on ${inst.adminSocket}: the admin API serves root and the agent's own user only`, 'run this as root (sudo) or as the user the server runs as')
      : new PassengerError('E_ADMIN', `cannot reach the admin API at ${inst.adminSocket}: ${e.message}`, 'is the server still running? is it stopped (kill -STOP)?')));
    req.end();
  });
}

export async function adminJson<T>(inst: InstanceDir, method: string, urlPath: string, timeoutMs?: number): Promise<T> {
  const r = await adminRequest(inst, method, urlPath, timeoutMs);
  let json: unknown;
  try { json = JSON.parse(r.body); } catch { throw new PassengerError('E_ADMIN', `the admin API answered ${r.status} with non-JSON: ${r.body.slice(0, 200)}`); }
  if (r.status >= 400) {
    // The agent's own code is kept (E_NO_GROUP, E_ADMIN_DENIED ...), so a tool
    // can tell "no such app" from "unreachable"; an answer without a known
    // code is E_ADMIN.
    const body = readErrorBody(json);
    const message = body?.message || (json as { message?: string } | null)?.message || `admin API error ${r.status}`;
    throw new PassengerError(body?.code ?? 'E_ADMIN', message, body?.hint);
  }
  return json as T;
}
