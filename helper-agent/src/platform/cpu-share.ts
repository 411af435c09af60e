// The core's share of a busy machine's CPU. Linux's autogroup scheduler
// (kernel.sched_autogroup_enabled, on by default where the kernel has it,
// for every process not placed in a CPU cgroup of its own) splits contended
// CPU time equally between sessions, not processes. The core is a session
// of its own, and so is each app process it starts (each leads its own), as
// is the web server in front: with N app processes busy, the core, which
// carries every request of all of them, would get one share in N + 2. Its
// session gets a little more weight than one app's instead. A leaf module:
// imports nothing of ours.
import * as fs from 'node:fs';

/**
 * The nice value of the core's session group: a weight of 1,586 against
 * 1,024 for each app's session and the web server's. More than this
 * starved nginx's keep-alive connections to the core in the benchmark.
 */
export const CORE_SESSION_NICE = -2;

/**
 * Gives this process's session the weight of `nice` in the autogroup
 * scheduler. Only a privileged process may lower it; new sessions (the apps
 * the core starts) begin at 0 again. Returns null, or why it could not.
 */
export function setSessionNice(nice: number = CORE_SESSION_NICE): string | null {
  try {
    fs.writeFileSync('/proc/self/autogroup', String(nice));
    return null;
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    return err.code === 'ENOENT' ? 'the kernel has no autogroup scheduling' : err.message;
  }
}
