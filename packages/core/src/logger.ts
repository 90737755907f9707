/**
 * Any pino-style logger: each level is called as `level(fields, message)`.
 * pino, bunyan-like loggers and `console` (which prints both) all fit.
 */
export interface Logger {
  debug(fields: object, message: string): void;
  info(fields: object, message: string): void;
  warn(fields: object, message: string): void;
  error(fields: object, message: string): void;
}

const nothing = (): void => {};

/** The default: Mesh is quiet unless you hand it a logger. */
export const quietLogger: Logger = { debug: nothing, info: nothing, warn: nothing, error: nothing };

/**
 * A mistake that must not go unseen (a stream that is not there, dead letters
 * no stream keeps): logged at error level, and written to stderr when the
 * logger is the quiet default (`mesh node` shows it).
 */
export function loudError(log: Logger, fields: object, message: string): void {
  if (log === quietLogger) console.error(`${message} ${JSON.stringify(fields)}`);
  else log.error(fields, message);
}
