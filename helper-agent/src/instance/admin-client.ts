// Talking to a running agent's admin API over its Unix socket.
import * as http from 'node:http';
import { ERROR_CODES, PassengerError, type ErrorCode } from '../errors';
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
    const e = json as { code?: string; message?: string };
    // The agent's own code is kept, so a tool can tell "no such app" from "unreachable".
    const code = typeof e.code === 'string' && Object.prototype.hasOwnProperty.call(ERROR_CODES, e.code) ? e.code as ErrorCode : 'E_ADMIN';
    throw new PassengerError(code, e.message ?? `admin API error ${r.status}`);
  }
  return json as T;
}
