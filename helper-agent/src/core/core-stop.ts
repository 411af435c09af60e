// The agent core's stop: what it closes, in which order, and its own bound
// (stop-policy.ts). Parts register as they come up, so a stop that arrives
// while the core starts still stops whatever is already running.
import * as fs from 'node:fs';
import type { Options } from '../config';
import type { InstanceDir } from '../instance/instance-dir';
import type { Logger } from '../log';
import type { AdminSocket } from '../admin/admin-socket';
import type { Pool } from '../pool/pool';
import { STOP_FLUSH_MS, coreStopBoundMs } from '../pool/stop-policy';
import type { LoaderChannel } from '../spawn/loader-channel';
import type { RequestServer } from './request-server';

export class CoreStop {
  stopping = false;
  channel: LoaderChannel | null = null;
  pool: Pool | null = null;
  server: RequestServer | null = null;
  admin: AdminSocket | null = null;

  constructor(
    private readonly o: Options,
    private readonly inst: InstanceDir,
    private readonly log: Logger,
    /** Direct mode: our copy of the listening socket the apps accept from. */
    private readonly listenFd: number | null,
  ) {}

  /** SIGTERM, SIGINT, and the watchdog gone (nobody would restart or stop us: we leave with our apps). */
  listen(): void {
    process.on('SIGTERM', () => void this.stop('SIGTERM'));
    process.on('SIGINT', () => void this.stop('SIGINT'));
    process.on('disconnect', () => void this.stop('watchdog gone'));
  }

  /**
   * No new connection is taken and WebSockets are closed; requests in flight
   * run for the stop's drain window; every app is told to leave and gets
   * shutdown_timeout to exit by itself, then KILL; what is still open on the
   * client side then has no process behind it and is closed. It all ends
   * within coreStopBoundMs, whatever the apps do: past it, what is left is
   * killed and the core exits all the same. Safe to call twice.
   */
  async stop(why: string): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    this.log.notice(`shutting down (${why})`);
    const last = setTimeout(() => this.killWhatIsLeft(), coreStopBoundMs(this.o.shutdownTimeout));
    last.unref();
    // In direct mode the apps accept, not us: our copy of the listening socket
    // goes now, so that new connections are refused once the watchdog's and the
    // apps' copies are closed too (the request server closes its own in close()).
    if (this.o.directMode && this.listenFd !== null) { try { fs.closeSync(this.listenFd); } catch { /* closed */ } }
    const closed = this.server?.close() ?? Promise.resolve();
    await this.pool?.close(this.o.shutdownTimeout * 1000);
    // Every process is gone: responses still being written get a moment to go out.
    await Promise.race([closed, new Promise((r) => setTimeout(r, STOP_FLUSH_MS).unref())]);
    this.server?.destroy();
    await this.admin?.close().catch(() => undefined);
    this.channel?.close();
    this.removePidFile();
    process.exit(0);
  }

  private killWhatIsLeft(): void {
    this.log.warn('the apps did not stop in time: killing what is left');
    for (const g of this.pool?.groups.values() ?? []) for (const p of g.processes) { try { process.kill(-p.pid, 'SIGKILL'); } catch { /* gone */ } }
    this.removePidFile();
    process.exit(0);
  }

  private removePidFile(): void {
    try { fs.rmSync(this.inst.corePidFile, { force: true }); } catch { /* gone */ }
  }
}
