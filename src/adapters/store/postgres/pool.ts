/**
 * Flint's connection to a PostgreSQL store: ONE pg.Pool per process, shared
 * by every store built on it (index.ts), and the transaction helper they
 * all use.
 *
 * Numbers: the ports speak epoch milliseconds and GitHub ids as JavaScript
 * numbers; the tables keep them as BIGINT, which node-postgres returns as
 * strings by default (an int8 may exceed 2^53). This pool's own type
 * parsers turn int8 into a number and refuse one that would lose precision,
 * so no caller parses by hand and no global parser is changed.
 */
import pg from 'pg';
import { FlintError } from '../../../core/errors/index.ts';
import { withoutPassword } from '../../../core/url-password.ts';

/** Where the store is and how Flint logs in: the URL and, apart from it, the password. */
export interface PostgresSettings {
  /** A `postgresql://` URL; a unix socket directory goes in `?host=/run/postgresql`. */
  readonly url: string;
  /** Taken over any password in the URL; kept out of the URL so the URL can be logged. */
  readonly password?: string;
  /** Connections this process holds: opened at start (openConnections) and kept open (default 10). */
  readonly maxConnections?: number;
  /** Gives up on a connection the server does not answer within this many ms (default: waits as long as the OS does). */
  readonly connectTimeoutMs?: number;
}

const INT8_OID = 20;

function parseInt8(value: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n)) throw new RangeError(`a BIGINT of the store (${value}) is beyond JavaScript's exact integers`);
  return n;
}

const types = {
  // pg's own parsers for every other type; only int8 is read as a number.
  getTypeParser: ((oid: number, format?: 'text' | 'binary') => (oid === INT8_OID && format !== 'binary' ? parseInt8 : pg.types.getTypeParser(oid, format ?? 'text'))) as typeof pg.types.getTypeParser,
};

export function openPostgresPool(settings: PostgresSettings): pg.Pool {
  const pool = new pg.Pool({
    connectionString: settings.url,
    ...(settings.password === undefined ? {} : { password: settings.password }),
    max: settings.maxConnections ?? 10,
    // Kept open once opened (pg-pool closes idle connections only above
    // `min`): a burst after a quiet spell finds them there rather than
    // waiting for the server to start a backend for each, as a pool that
    // shrank to nothing would.
    min: settings.maxConnections ?? 10,
    ...(settings.connectTimeoutMs === undefined ? {} : { connectionTimeoutMillis: settings.connectTimeoutMs }),
    types,
    application_name: 'flint',
  });
  // An idle connection the server drops (restart, failover) raises 'error'
  // on the pool; without a listener that would end the process. The next
  // query takes a fresh connection and fails or succeeds on its own.
  pool.on('error', () => undefined);
  return pool;
}

/**
 * Opens the pool's connections up to its size now, at start, each with one
 * round trip so the server has started its backend: the first burst of work
 * then waits for no connection. Best effort: a connection the server refuses
 * now (its `max_connections` reached) is opened later, when work needs it,
 * and fails or succeeds then.
 */
export async function openConnections(pool: pg.Pool): Promise<void> {
  const clients = await Promise.all(Array.from({ length: pool.options.max }, () => pool.connect().then(async (c) => {
    try {
      await c.query('SELECT 1');
      return c;
    } catch {
      c.release(true);
      return undefined;
    }
  }, () => undefined)));
  // Released after all are open: released at once, one connection would serve every other `connect`.
  for (const c of clients) c?.release();
}

/** `url` with any password replaced by `***`, for logs and messages. */
export const redactUrl = withoutPassword;

/**
 * Runs `work` in one transaction on one client of the pool: committed when
 * it resolves, rolled back when it throws (and the error passed on).
 */
export async function inTransaction<T>(pool: pg.Pool, work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  let broken: unknown = undefined;
  try {
    await client.query('BEGIN');
    const result = await work(client);
    await client.query('COMMIT');
    return result;
  } catch (err) {
    try {
      await client.query('ROLLBACK');
    } catch (rollbackErr) {
      // The connection itself is gone: the server rolled back; the client is not reused.
      broken = rollbackErr;
    }
    throw err;
  } finally {
    client.release(broken instanceof Error ? broken : undefined);
  }
}

/** A store operation's failure as the catalogue's write error, naming what was being written. */
export function writeFailed(what: string, err: unknown): FlintError {
  if (err instanceof FlintError) return err;
  return new FlintError('FLINT_ERR_STORE_WRITE_FAILED', `could not record ${what} in PostgreSQL: ${(err instanceof Error ? err.message : String(err))}`, { cause: err });
}
