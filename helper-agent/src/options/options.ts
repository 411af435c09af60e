// The one typed options object every part of the server reads.

export interface Options {
  appRoot: string;
  address: string;
  port: number;
  socket: string | undefined;
  daemonize: boolean;
  pidFile: string | undefined;
  logFile: string | undefined;
  instanceRegistryDir: string | undefined;
  environment: string;
  appType: 'node';
  startupFile: string;
  appStartCommand: string | undefined;
  envvars: Record<string, string>;
  maxPoolSize: number;
  minInstances: number;
  poolIdleTime: number;
  startTimeout: number;
  forceMaxConcurrentRequestsPerProcess: number;
  maxRequests: number;
  memoryLimit: number;
  maxRequestQueueSize: number;
  stickySessions: boolean;
  stickySessionsCookieName: string;
  friendlyErrorPages: boolean | undefined;
  logLevel: number;
  forwarder: 'builtin' | 'node-http' | 'reply-from';
  scaleAtSessions: number;
  maxRequestQueueTime: number;
  requestQueueOverflowStatusCode: number;
  maxRequestTime: number;
  statThrottleRate: number;
  stickySessionsCookieAttributes: string;
  /** `passenger agent`: app roots requests may name (the app root or a directory above it). */
  appRootAllow: string[];
  socketOwner: string | undefined;
  socketGroup: string | undefined;
  socketMode: string | undefined;
  /** standalone: `passenger start` serves one app; agent: `passenger agent` serves the apps a web server names. */
  mode: 'standalone' | 'agent';
  /** The app processes accept client connections themselves; the agent only supervises and accounts. */
  directMode: boolean;
  /** Standalone: the user the server and its apps run as (as root). Behind a web server: the app's user (its Passengerfile.json). */
  user: string | undefined;
  /** The app's group (default: the user's primary group). */
  group: string | undefined;
  /** As root: who apps run as when their startup file belongs to root, or when user switching is off. */
  defaultUser: string;
  /** Default: the default user's primary group. */
  defaultGroup: string | undefined;
  /** As root: each app runs as the owner of its startup file (or its `user`); off: every app runs as the default user. */
  userSwitching: boolean;
  /** The Node interpreter for Node apps: a path, or a name looked up in PATH (default `node`). */
  nodejs: string | undefined;
  /** Arguments for the app's Node before its entry file (`--env-file=.env`, `--max-old-space-size=512`). */
  nodeArgs: string[];
  /** The app's output goes to this file instead of the agent's log. */
  appLogFile: string | undefined;
  /** App output lines go to the log without the `App <pid> (<root>) stdout: ` prefix. */
  disableLogPrefix: boolean;
  /**
   * `passenger start`: the flags as given (paths made absolute), so a
   * restart can read Passengerfile.json and the environment again and still
   * let the flags win.
   */
  given?: Partial<Options>;
  /** `passenger agent`: app roots or URLs whose apps start with the agent, before any request (Passenger's pre_start). */
  preStart: string[];
  /** Seconds a process told to leave gets to exit by itself (its SIGTERM handlers run) before KILL. */
  shutdownTimeout: number;
  /** A leaving process's WebSockets are closed at once (on) or left to end by themselves (off). */
  abortWebsocketsOnProcessShutdown: boolean;
}
