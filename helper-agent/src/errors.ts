// Every error the agent and its tools report on purpose, each with a stable code.
// The admin API answers `{ code, message }`; the CLIs print the message and the hint.

export const ERROR_CODES = {
  E_CONFIG: 'invalid option or Passengerfile.json',
  E_USAGE: 'unknown command or flag',
  E_SPAWN: 'an app process failed to start',
  E_SPAWN_TIMEOUT: 'an app process did not start listening in time',
  E_NO_INSTANCE: 'no running instance was found',
  E_MANY_INSTANCES: 'several instances run and none was named',
  E_ADMIN: 'the admin API could not be reached or refused the call',
  E_ADMIN_DENIED: 'the admin API refused: the app does not run as the caller, or the call is for root and the agent\'s user only',
  E_NOT_RUNNING: 'the server named by a pid file is not running',
  E_NO_LOG: 'the server logs to its terminal: there is no log file to reopen',
  E_APP_ROOT_DENIED: 'the app root is not allowed',
  E_NO_APP: 'the document root a request names has no app directory (404)',
  E_NO_GROUP: 'no app group has that app root',
  E_NO_PROCESS: 'no app process has that PID',
  E_APP_UNREACHABLE: 'an app process refused the connection: the request never reached it (retried on another process)',
  E_APP_CONNECTION_LOST: 'an app process closed its connection before its response was over',
  E_APP_BAD_RESPONSE: 'an app process sent a malformed response',
  E_QUEUE_FULL: 'the request queue is full',
  E_QUEUE_TIMEOUT: 'a request waited too long for a process (max_request_queue_time)',
  E_REQUEST_TIMEOUT: 'a request ran too long (max_request_time)',
  E_BAD_GATEWAY: 'an app process failed to answer a forwarded request',
  E_SHUTTING_DOWN: 'the server is stopping: a request that no process will serve any more (503)',
  E_BODY_TOO_LARGE: 'a request body passed the limit the web server sent with it (413)',
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export class PassengerError extends Error {
  readonly code: ErrorCode;
  readonly hint: string | undefined;
  constructor(code: ErrorCode, message: string, hint?: string) {
    super(message);
    this.name = 'PassengerError';
    this.code = code;
    this.hint = hint;
  }
  toJSON(): { code: ErrorCode; message: string; hint?: string } {
    return this.hint ? { code: this.code, message: this.message, hint: this.hint } : { code: this.code, message: this.message };
  }
}

/** Bad flags, bad values, a broken Passengerfile.json: the CLIs exit 2 on these. */
export class ConfigError extends PassengerError {
  constructor(message: string, hint?: string) {
    super('E_CONFIG', message, hint);
    this.name = 'ConfigError';
  }
}

/** The step of a spawn that failed, shown on the error page and in the log. */
export type SpawnStep = 'user' | 'fork' | 'load' | 'listen' | 'timeout';

export class SpawnError extends PassengerError {
  readonly step: SpawnStep;
  readonly output: string;
  constructor(step: SpawnStep, message: string, output: string, hint?: string) {
    super(step === 'timeout' ? 'E_SPAWN_TIMEOUT' : 'E_SPAWN', message, hint);
    this.name = 'SpawnError';
    this.step = step;
    this.output = output;
  }
}
