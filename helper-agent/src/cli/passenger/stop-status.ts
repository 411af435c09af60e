// `passenger stop` and `passenger status`: the server a PID file (or the
// instance registry) names, stopped or reported.
import { PassengerError } from '../../errors';
import { isAlive } from '../../platform/procfs';
import { findServer } from './server-pid';

const STOP_USAGE = `Usage: passenger stop [APP_DIR] [--port NUMBER | --pid-file PATH] [--instance-registry-dir DIR]
       passenger status [APP_DIR] [--port NUMBER | --pid-file PATH] [--instance-registry-dir DIR]

Finds the server by its PID file: --pid-file, else passenger.PORT.pid in
APP_DIR (default: the current directory; the default port is 3000). If that
names no running server, the one standalone server on that port (serving
APP_DIR, when given) is found in the instance registry.

Examples:
  passenger stop                      # passenger.3000.pid here, else the server on port 3000
  passenger stop /srv/app --port 8080
  passenger status --pid-file /run/app.pid`;

export async function stop(argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(STOP_USAGE);
    return 0;
  }
  const found = findServer(argv);
  if (found instanceof PassengerError) throw found;
  const { pid } = found;
  process.kill(pid, 'SIGTERM');
  const deadline = Date.now() + 60_000;
  while (isAlive(pid)) {
    if (Date.now() > deadline) throw new PassengerError('E_NOT_RUNNING', `PID ${pid} did not stop within 60 s`, `kill it with: kill -9 ${pid}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  console.log(`Stopped the server with PID ${pid} (${found.how}).`);
  return 0;
}

export async function status(argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(STOP_USAGE);
    return 0;
  }
  const found = findServer(argv);
  if (found instanceof PassengerError) {
    console.log(`The server is not running (${found.message}).`);
    return 1;
  }
  console.log(`The server is running with PID ${found.pid} (${found.how}).`);
  return 0;
}
