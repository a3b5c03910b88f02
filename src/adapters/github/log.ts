/**
 * The logging the GitHub adapter needs: pino's `(fields, message)` calling
 * convention, so the daemon passes its pino logger (or a child of it)
 * unchanged. Fields never carry tokens, JWTs, private keys or JIT configs.
 */
export interface GitHubLog {
  debug(fields: Record<string, unknown>, msg: string): void;
  info(fields: Record<string, unknown>, msg: string): void;
  warn(fields: Record<string, unknown>, msg: string): void;
  error(fields: Record<string, unknown>, msg: string): void;
}

/** A logger that drops everything (for callers that do not care). */
export const silentLog: GitHubLog = {
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
};
