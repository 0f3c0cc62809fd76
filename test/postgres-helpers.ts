import { randomBytes } from 'node:crypto';
import pg from 'pg';

/** The PostgreSQL server the tests use (trust auth on this machine's 127.0.0.1:5432, database `test`). */
export const POSTGRES_URL = process.env.FANFLOW_TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

/**
 * Whether PostgreSQL answers. Off CI a missing server skips the PostgreSQL tests with the reason
 * printed; under CI=true it is a failure, because those tests must run there.
 */
export async function postgresAvailable(): Promise<boolean> {
  const client = new pg.Client({ connectionString: POSTGRES_URL, connectionTimeoutMillis: 3000 });
  try {
    await client.connect();
    await client.query('SELECT 1');
    return true;
  } catch (error) {
    const reason = `PostgreSQL at ${POSTGRES_URL} is not reachable (${(error as Error).message})`;
    if (process.env.CI === 'true') throw new Error(`${reason}; under CI=true the PostgreSQL tests must run`);
    process.stderr.write(`SKIPPED PostgreSQL tests: ${reason}\n`);
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** A URL naming a fresh schema of its own, and a function that drops it. */
export function freshSchema(prefix = 't'): { url: string; drop: () => Promise<void> } {
  const schema = `${prefix}_${randomBytes(6).toString('hex')}`;
  const url = `${POSTGRES_URL}${POSTGRES_URL.includes('?') ? '&' : '?'}schema=${schema}`;
  return {
    url,
    async drop() {
      const client = new pg.Client({ connectionString: POSTGRES_URL });
      await client.connect();
      try {
        await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      } finally {
        await client.end();
      }
    },
  };
}
