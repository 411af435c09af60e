// The native addon: peer credentials of a Unix socket connection, a listening
// Unix socket created with its mode.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { getPeerCredentials, listenUnix } from '../../helper-agent/src/platform/native';

test('getPeerCredentials returns the pid, uid and gid of the connecting process', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ptest-native-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const sockPath = path.join(dir, 's.sock');
  const creds = await new Promise<unknown>((resolve, reject) => {
    const server = net.createServer((sock) => {
      const fd = (sock as unknown as { _handle: { fd: number } })._handle.fd;
      try { resolve(getPeerCredentials(fd)); } catch (e) { reject(e); }
      sock.destroy();
      server.close();
    });
    server.listen(sockPath, () => net.connect(sockPath).on('error', () => undefined));
  });
  assert.deepEqual(creds, { pid: process.pid, uid: process.getuid!(), gid: process.getgid!() });
});

test('getPeerCredentials checks its argument and reports errno', () => {
  assert.throws(() => (getPeerCredentials as (x: unknown) => unknown)('3'), TypeError);
  assert.throws(() => getPeerCredentials(-1), TypeError);
  assert.throws(() => getPeerCredentials(0x7fffff), (e: unknown) => (e as { code?: string; syscall?: string }).code === 'EBADF' && (e as { syscall?: string }).syscall === 'getsockopt');
});

test('listenUnix creates the socket file with the mode asked for, whatever the umask, and leaves the umask as it was', (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ptest-native-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const before = process.umask(0o022);
  t.after(() => process.umask(before));
  const fds: number[] = [];
  t.after(() => { for (const fd of fds) fs.closeSync(fd); });
  fds.push(listenUnix(path.join(dir, 'a.sock'), 0o660));
  assert.equal(fs.statSync(path.join(dir, 'a.sock')).mode & 0o777, 0o660);
  fds.push(listenUnix(path.join(dir, 'b.sock'), 0o600));
  assert.equal(fs.statSync(path.join(dir, 'b.sock')).mode & 0o777, 0o600);
  fds.push(listenUnix(path.join(dir, 'c.sock'), null));
  assert.equal(fs.statSync(path.join(dir, 'c.sock')).mode & 0o777, 0o755);
  assert.equal(process.umask(), 0o022);
  assert.throws(() => listenUnix(path.join(dir, 'a.sock'), 0o660), (e: unknown) => (e as { code?: string }).code === 'EADDRINUSE');
});
