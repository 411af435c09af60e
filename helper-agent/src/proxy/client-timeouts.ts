// How long the request side waits on a client, in one place for both of its
// implementations: the parser side's sweep (client-http-server.ts) and the
// node:http server (the fallback, and the one the parser side hands static
// files to).

export interface ClientTimeouts {
  /** An idle keep-alive connection closes after this; a head must be complete within it. */
  readonly keepAliveMs: number;
  /** How often connections are checked against it: one timer per server, none per connection or request. */
  readonly sweepMs: number;
}

/** Checked every 5 s, or four times within a shorter keep-alive time, so that one is kept to as closely. */
export function clientTimeouts(keepAliveMs: number): ClientTimeouts {
  return { keepAliveMs, sweepMs: Math.min(5_000, Math.ceil(keepAliveMs / 4)) };
}

/** What the request side runs with (`keep-alive: timeout=65` in its answers says so). */
export const CLIENT_TIMEOUTS = clientTimeouts(65_000);
