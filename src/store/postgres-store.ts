/**
 * The production store: PostgreSQL through Kysely and `pg`. The same contract as the SQLite
 * adapter (test/store-contract.ts runs against both), the same schema keyed by workspace first.
 *
 * Concurrency between server instances:
 * - appends of one workspace serialise on its log counter row (`SELECT … FOR UPDATE`), so seqs are
 *   dense and in commit order, and duplicate ids are decided against the committed log;
 * - `exclusive` (the one writer of derived state) holds a transaction-scoped advisory lock on the
 *   workspace; appends go on meanwhile, and readers of the log stop at the position they read.
 */
import { randomUUID } from 'node:crypto';
import { Kysely, Migrator, PostgresDialect, sql, type Migration, type Transaction } from 'kysely';
import pg from 'pg';
import type { Posting } from '../core/state.js';
import { decodeRanks, encodeRanks, rankOf, ranksOf, ranksVersion, type LoyaltyRanks } from './loyalty-ranks.js';
import { decodePostings, encodePostingBlocks } from './posting-codec.js';
import type { AppendStatus, Batches, Database, FanRow, KeyScope, LogEntry, Notification, OutboxItem, RejectRecord, StateWrite, Store, StoredKey, StoredSession, StoredUser, StoredLogEvent, StoredProgram, StoredState, RedemptionRecord, WebhookEventType, WebhookSubscription } from './store.js';
import { DEFAULT_WORKSPACE } from './store.js';

// Columns are typed loosely: every statement below is written with the `sql` tag against this schema.
type Db = Record<string, Record<string, unknown>>;
type Executor = Kysely<Db> | Transaction<Db>;

const MIGRATIONS: Record<string, Migration> = {
  '0001_schema': {
    async up(db) {
      await sql`
        CREATE TABLE workspaces (no serial PRIMARY KEY, name text NOT NULL UNIQUE, created_at text NOT NULL);
        CREATE TABLE api_keys (id text PRIMARY KEY, ws integer NOT NULL REFERENCES workspaces (no), hash text NOT NULL, scopes text NOT NULL, label text, created_at text NOT NULL, revoked_at text);
        CREATE INDEX api_keys_ws ON api_keys (ws);
        CREATE TABLE events (ws integer NOT NULL, id text COLLATE "C" NOT NULL, seq bigint NOT NULL, ts double precision NOT NULL, body text NOT NULL, PRIMARY KEY (ws, id));
        CREATE UNIQUE INDEX events_seq ON events (ws, seq);
        CREATE INDEX events_order ON events (ws, ts, id);
        CREATE TABLE conflicts (seq bigserial PRIMARY KEY, ws integer NOT NULL, id text NOT NULL, body text NOT NULL, source text, line integer);
        CREATE TABLE rejects (seq bigserial PRIMARY KEY, ws integer NOT NULL, source text, line integer, field text NOT NULL, reason text NOT NULL, raw text NOT NULL);
        CREATE TABLE programs (ws integer NOT NULL, version text NOT NULL, yaml text NOT NULL, spec text, activated_at text NOT NULL, seq integer NOT NULL, PRIMARY KEY (ws, version));
        CREATE TABLE fans (
          ws integer NOT NULL, id text COLLATE "C" NOT NULL, no integer NOT NULL, level integer NOT NULL, layer text NOT NULL,
          loyalty double precision, state text NOT NULL, program_version text NOT NULL, last_activity double precision,
          recency double precision, backbone_gap integer, ix_window integer, PRIMARY KEY (ws, id));
        CREATE INDEX fans_no ON fans (ws, no);
        CREATE INDEX fans_layer ON fans (ws, layer, last_activity);
        CREATE INDEX fans_recency ON fans (ws, recency);
        CREATE INDEX fans_backbone_gap ON fans (ws, layer, backbone_gap, ix_window);
        CREATE INDEX fans_level ON fans (ws, level);
        CREATE INDEX fans_loyalty ON fans (ws, loyalty);
        CREATE TABLE posting_blocks (ws integer NOT NULL, first_seq bigint NOT NULL, last_seq bigint NOT NULL, program_version text NOT NULL, postings text NOT NULL, PRIMARY KEY (ws, first_seq));
        CREATE TABLE derived (seq bigserial PRIMARY KEY, ws integer NOT NULL, type text NOT NULL, fan text, ts double precision NOT NULL, event_id text, data text NOT NULL, program_version text NOT NULL);
        CREATE INDEX derived_fan ON derived (ws, fan, seq);
        CREATE TABLE snapshots (ws integer NOT NULL, month text NOT NULL, data text NOT NULL, program_version text NOT NULL, PRIMARY KEY (ws, month));
        CREATE TABLE state (ws integer NOT NULL, key text NOT NULL, value text NOT NULL, PRIMARY KEY (ws, key));
        CREATE TABLE loyalty_ranks (ws integer PRIMARY KEY, total integer NOT NULL, unranked integer NOT NULL, sorted bytea NOT NULL);
      `.execute(db);
    },
  },
  '0002_webhooks': {
    async up(db) {
      await sql`
        CREATE TABLE webhooks (id text PRIMARY KEY, ws integer NOT NULL REFERENCES workspaces (no), url text NOT NULL, secret text NOT NULL, types text NOT NULL, created_at text NOT NULL);
        CREATE INDEX webhooks_ws ON webhooks (ws);
        CREATE TABLE outbox (
          seq bigserial PRIMARY KEY, ws integer NOT NULL, subscription text NOT NULL, type text NOT NULL, payload text NOT NULL,
          created_at text NOT NULL, attempts integer NOT NULL DEFAULT 0, next_attempt_at double precision NOT NULL, claimed_until double precision,
          delivered_at text, last_error text, dead boolean NOT NULL DEFAULT false);
        CREATE INDEX outbox_due ON outbox (next_attempt_at) WHERE delivered_at IS NULL AND NOT dead;
        CREATE INDEX outbox_dead ON outbox (ws, seq) WHERE dead;
      `.execute(db);
    },
  },
  '0003_redemptions': {
    async up(db) {
      await sql`
        CREATE TABLE redemptions (
          ws integer NOT NULL, request_id text NOT NULL, fan text NOT NULL, item text NOT NULL, points integer NOT NULL,
          seq bigint, outcome text NOT NULL, created_at text NOT NULL, PRIMARY KEY (ws, request_id));
        CREATE INDEX redemptions_seq ON redemptions (ws, seq) WHERE seq IS NOT NULL;
      `.execute(db);
    },
  },
  '0004_referral_columns': {
    async up(db) {
      await sql`
        ALTER TABLE fans ADD COLUMN referrer text COLLATE "C";
        ALTER TABLE fans ADD COLUMN referrals integer NOT NULL DEFAULT 0;
        CREATE INDEX fans_referrals ON fans (ws, referrals) WHERE referrals > 0;
      `.execute(db);
    },
  },
  // One fan's events as an index range (the dashboard's timeline); operators and their sessions.
  '0005_fan_events_users': {
    async up(db) {
      await sql`
        ALTER TABLE events ADD COLUMN fan text COLLATE "C";
        UPDATE events SET fan = body::jsonb ->> 'fan';
        CREATE INDEX events_fan ON events (ws, fan, seq);
        CREATE TABLE users (
          id text PRIMARY KEY, ws integer NOT NULL REFERENCES workspaces (no), email text NOT NULL UNIQUE,
          password_hash text NOT NULL, role text NOT NULL, created_at text NOT NULL, disabled_at text);
        CREATE TABLE sessions (hash text PRIMARY KEY, user_id text NOT NULL REFERENCES users (id), csrf text NOT NULL, created_at text NOT NULL, expires_at double precision NOT NULL);
        CREATE INDEX sessions_user ON sessions (user_id);
        DROP INDEX fans_level;
        CREATE INDEX fans_level ON fans (ws, level, no);
        DROP INDEX fans_loyalty;
        CREATE INDEX fans_loyalty ON fans (ws, loyalty, no);
      `.execute(db);
    },
  },
  // The referral trees (compliance, the tree view) from the index alone, not a scan of every state.
  '0006_fans_referrer': {
    async up(db) {
      await sql`CREATE INDEX fans_referrer ON fans (ws, referrer) INCLUDE (id) WHERE referrer IS NOT NULL`.execute(db);
    },
  },
  // Each fan's events, kept with the derived state instead of as an index of the log: an index in
  // fan order made every append touch pages all over it.
  '0007_fan_events': {
    async up(db) {
      await sql`
        CREATE TABLE fan_events (ws integer NOT NULL, fan text COLLATE "C" NOT NULL, seq bigint NOT NULL, PRIMARY KEY (ws, fan, seq));
        INSERT INTO fan_events (ws, fan, seq)
          SELECT e.ws, e.fan, e.seq FROM events e
          WHERE e.fan IS NOT NULL AND e.seq <= COALESCE((SELECT value::bigint FROM state s WHERE s.ws = e.ws AND s.key = 'appliedSeq'), 0)
          ORDER BY e.ws, e.fan, e.seq;
        DROP INDEX events_fan;
      `.execute(db);
    },
  },
};

const BATCH = 2000;
const INSERT_ROWS = 1000;

export interface PostgresDatabase extends Database {
  readonly kind: 'postgres';
  /** The schema the tables live in. */
  readonly schema: string;
}

/**
 * Connects to `url` (postgres://…). A `schema` query parameter puts the tables in that schema
 * (created if missing), so that several deployments or test runs can share one database.
 */
export async function openPostgresDatabase(url: string, options: { poolSize?: number } = {}): Promise<PostgresDatabase> {
  const parsed = new URL(url);
  const schema = parsed.searchParams.get('schema') ?? 'public';
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(schema)) throw new Error(`schema ${JSON.stringify(schema)}: use lower-case letters, digits and _`);
  parsed.searchParams.delete('schema');
  const pool = new pg.Pool({ connectionString: parsed.toString(), max: options.poolSize ?? 10, options: `-c search_path=${schema}` });
  // Numbers stay numbers: bigint (seq) and numeric columns fit doubles here.
  pool.on('connect', (client) => {
    client.on('error', () => undefined);
  });
  const db = new Kysely<Db>({ dialect: new PostgresDialect({ pool }) });
  try {
    await sql`SELECT 1`.execute(db);
    if (schema !== 'public') await sql`CREATE SCHEMA IF NOT EXISTS ${sql.id(schema)}`.execute(db);
    const migrator = new Migrator({ db, provider: { getMigrations: async () => MIGRATIONS }, migrationTableSchema: schema });
    const { error } = await migrator.migrateToLatest();
    if (error) throw error;
  } catch (error) {
    await db.destroy();
    throw error;
  }
  return postgresDatabase(db, schema);
}

function postgresDatabase(db: Kysely<Db>, schema: string): PostgresDatabase {
  const stores = new Map<string, Promise<Store>>();
  const ensureWorkspace = async (name: string): Promise<number> => {
    await sql`INSERT INTO workspaces (name, created_at) VALUES (${name}, ${new Date().toISOString()}) ON CONFLICT (name) DO NOTHING`.execute(db);
    const row = (await sql<{ no: number }>`SELECT no FROM workspaces WHERE name = ${name}`.execute(db)).rows[0];
    // The log counter row that appends lock.
    await sql`INSERT INTO state (ws, key, value) VALUES (${row.no}, 'logSeq', '0') ON CONFLICT (ws, key) DO NOTHING`.execute(db);
    return row.no;
  };
  const keyRows = sql`SELECT k.id, w.name AS workspace, k.hash, k.scopes, k.label, k.created_at AS "createdAt", k.revoked_at AS "revokedAt" FROM api_keys k JOIN workspaces w ON w.no = k.ws`;
  const userRows = sql`SELECT u.id, w.name AS workspace, u.email, u.password_hash AS "passwordHash", u.role, u.created_at AS "createdAt", u.disabled_at AS "disabledAt" FROM users u JOIN workspaces w ON w.no = u.ws`;
  const toKey = (row: Record<string, unknown>): StoredKey => ({
    id: row.id as string,
    workspace: row.workspace as string,
    hash: row.hash as string,
    scopes: (row.scopes as string).split(',').filter((scope) => scope !== '') as KeyScope[],
    label: (row.label as string | null) ?? null,
    createdAt: row.createdAt as string,
    revokedAt: (row.revokedAt as string | null) ?? null,
  });
  return {
    kind: 'postgres',
    schema,
    workspace(name) {
      let store = stores.get(name);
      if (!store) {
        store = ensureWorkspace(name).then((ws) => workspaceStore(db, db, name, ws));
        store.catch(() => stores.delete(name));
        stores.set(name, store);
      }
      return store;
    },
    listWorkspaces: async () => (await sql<{ name: string; createdAt: string }>`SELECT name, created_at AS "createdAt" FROM workspaces ORDER BY no`.execute(db)).rows,
    async createKey(key) {
      const ws = await ensureWorkspace(key.workspace);
      await sql`INSERT INTO api_keys (id, ws, hash, scopes, label, created_at) VALUES (${key.id}, ${ws}, ${key.hash}, ${key.scopes.join(',')}, ${key.label}, ${key.createdAt})`.execute(db);
    },
    findKey: async (id) => {
      const row = (await sql<Record<string, unknown>>`${keyRows} WHERE k.id = ${id}`.execute(db)).rows[0];
      return row ? toKey(row) : null;
    },
    listKeys: async (workspace) =>
      (workspace === undefined
        ? (await sql<Record<string, unknown>>`${keyRows} ORDER BY k.created_at, k.id`.execute(db)).rows
        : (await sql<Record<string, unknown>>`${keyRows} WHERE w.name = ${workspace} ORDER BY k.created_at, k.id`.execute(db)).rows
      ).map(toKey),
    revokeKey: async (id, at) => Number((await sql`UPDATE api_keys SET revoked_at = ${at} WHERE id = ${id} AND revoked_at IS NULL`.execute(db)).numAffectedRows ?? 0) > 0,
    async createUser(user) {
      const ws = await ensureWorkspace(user.workspace);
      await sql`INSERT INTO users (id, ws, email, password_hash, role, created_at) VALUES (${user.id}, ${ws}, ${user.email}, ${user.passwordHash}, ${user.role}, ${user.createdAt})`.execute(db);
    },
    findUserByEmail: async (email) => (await sql<StoredUser>`${userRows} WHERE u.email = ${email}`.execute(db)).rows[0] ?? null,
    findUser: async (id) => (await sql<StoredUser>`${userRows} WHERE u.id = ${id}`.execute(db)).rows[0] ?? null,
    listUsers: async (workspace) =>
      (workspace === undefined
        ? await sql<StoredUser>`${userRows} ORDER BY u.created_at, u.email`.execute(db)
        : await sql<StoredUser>`${userRows} WHERE w.name = ${workspace} ORDER BY u.created_at, u.email`.execute(db)
      ).rows,
    setPassword: (email, passwordHash) =>
      db.transaction().execute(async (trx) => {
        const changed = Number((await sql`UPDATE users SET password_hash = ${passwordHash} WHERE email = ${email}`.execute(trx)).numAffectedRows ?? 0) > 0;
        if (changed) await sql`DELETE FROM sessions WHERE user_id = (SELECT id FROM users WHERE email = ${email})`.execute(trx);
        return changed;
      }),
    disableUser: (email, at) =>
      db.transaction().execute(async (trx) => {
        const changed = Number((await sql`UPDATE users SET disabled_at = ${at} WHERE email = ${email} AND disabled_at IS NULL`.execute(trx)).numAffectedRows ?? 0) > 0;
        if (changed) await sql`DELETE FROM sessions WHERE user_id = (SELECT id FROM users WHERE email = ${email})`.execute(trx);
        return changed;
      }),
    async createSession(session) {
      await sql`INSERT INTO sessions (hash, user_id, csrf, created_at, expires_at) VALUES (${session.hash}, ${session.userId}, ${session.csrf}, ${session.createdAt}, ${session.expiresAt})`.execute(db);
    },
    async findSession(hash, now) {
      const session = (await sql<StoredSession>`SELECT hash, user_id AS "userId", csrf, created_at AS "createdAt", expires_at AS "expiresAt" FROM sessions WHERE hash = ${hash}`.execute(db)).rows[0];
      if (!session) return null;
      if (session.expiresAt <= now) {
        await sql`DELETE FROM sessions WHERE hash = ${hash}`.execute(db);
        return null;
      }
      const user = (await sql<StoredUser>`${userRows} WHERE u.id = ${session.userId}`.execute(db)).rows[0];
      return user && user.disabledAt === null ? { session, user } : null;
    },
    async deleteSession(hash) {
      await sql`DELETE FROM sessions WHERE hash = ${hash}`.execute(db);
    },
    async addWebhook(subscription) {
      const ws = await ensureWorkspace(subscription.workspace);
      await sql`INSERT INTO webhooks (id, ws, url, secret, types, created_at) VALUES (${subscription.id}, ${ws}, ${subscription.url}, ${subscription.secret}, ${subscription.types.join(',')}, ${subscription.createdAt})`.execute(db);
    },
    listWebhooks: async (workspace) =>
      (
        await sql<Omit<WebhookSubscription, 'types'> & { types: string }>`SELECT h.id, w.name AS workspace, h.url, h.secret, h.types, h.created_at AS "createdAt"
          FROM webhooks h JOIN workspaces w ON w.no = h.ws WHERE w.name = ${workspace} ORDER BY h.created_at, h.id`.execute(db)
      ).rows.map((row) => ({ ...row, types: row.types.split(',') as WebhookEventType[] })),
    removeWebhook: (workspace, id) =>
      db.transaction().execute(async (trx) => {
        const removed = Number((await sql`DELETE FROM webhooks WHERE id = ${id} AND ws = (SELECT no FROM workspaces WHERE name = ${workspace})`.execute(trx)).numAffectedRows ?? 0) > 0;
        if (removed) await sql`DELETE FROM outbox WHERE subscription = ${id} AND delivered_at IS NULL`.execute(trx);
        return removed;
      }),
    claimDeliveries: async (now, limit, leaseMs) =>
      (
        await sql<OutboxRow>`WITH due AS (
            SELECT seq FROM outbox WHERE delivered_at IS NULL AND NOT dead AND next_attempt_at <= ${now} AND (claimed_until IS NULL OR claimed_until < ${now})
            ORDER BY next_attempt_at, seq LIMIT ${limit} FOR UPDATE SKIP LOCKED)
          UPDATE outbox o SET claimed_until = ${now + leaseMs} FROM due, workspaces w, webhooks h
          WHERE o.seq = due.seq AND w.no = o.ws AND h.id = o.subscription
          RETURNING ${outboxColumns}`.execute(db)
      ).rows.map(toOutboxItem),
    async finishDelivery(seq, outcome) {
      if ('deliveredAt' in outcome) await sql`UPDATE outbox SET delivered_at = ${outcome.deliveredAt}, attempts = attempts + 1, claimed_until = NULL, last_error = NULL WHERE seq = ${seq}`.execute(db);
      else
        await sql`UPDATE outbox SET attempts = attempts + 1, claimed_until = NULL, last_error = ${outcome.error.slice(0, 1000)},
          next_attempt_at = COALESCE(${outcome.nextAttemptAt}::float8, next_attempt_at), dead = ${outcome.nextAttemptAt === null} WHERE seq = ${seq}`.execute(db);
    },
    deadLetters: async (workspace) =>
      (
        await sql<OutboxRow>`SELECT ${outboxColumns} FROM outbox o JOIN workspaces w ON w.no = o.ws JOIN webhooks h ON h.id = o.subscription
          WHERE w.name = ${workspace} AND o.dead ORDER BY o.seq`.execute(db)
      ).rows.map(toOutboxItem),
    retryDelivery: async (workspace, seq, now) =>
      Number((await sql`UPDATE outbox SET dead = false, next_attempt_at = ${now}, claimed_until = NULL WHERE seq = ${seq} AND dead AND ws = (SELECT no FROM workspaces WHERE name = ${workspace})`.execute(db)).numAffectedRows ?? 0) > 0,
    close: () => db.destroy(),
  };
}

type OutboxRow = Omit<OutboxItem, 'seq'> & { seq: string };
const outboxColumns = sql`o.seq, w.name AS workspace, o.subscription, h.url, h.secret, o.type, o.payload, o.attempts, o.created_at AS "createdAt", o.last_error AS "lastError"`;
const toOutboxItem = (row: OutboxRow): OutboxItem => ({ ...row, seq: Number(row.seq) });

/** Values as one multi-row VALUES list, chunked to stay under the protocol's parameter limit. */
/**
 * A text[] that the server builds from one JSON array. Texts full of quotes (event bodies, fan
 * states) sent as an array parameter went through the driver's array-literal escaping, two
 * regular expressions per element, which took more of an append than anything else on this side;
 * JSON.stringify escapes them natively and the server parses the array in one pass.
 */
function textArrayFromJson(values: readonly string[]) {
  return sql`(SELECT coalesce(array_agg(e.text ORDER BY e.n), '{}'::text[]) FROM json_array_elements_text(${JSON.stringify(values)}::json) WITH ORDINALITY AS e(text, n))`;
}

function valuesList(rows: readonly unknown[][]) {
  return sql.join(rows.map((row) => sql`(${sql.join(row)})`));
}

async function* keyset<T, K>(fetch: (after: K | null) => Promise<T[]>, keyOf: (row: T) => K): AsyncGenerator<readonly T[]> {
  let after: K | null = null;
  for (;;) {
    const rows = await fetch(after);
    if (rows.length === 0) return;
    yield rows;
    if (rows.length < BATCH) return;
    after = keyOf(rows[rows.length - 1]);
  }
}

function batches<T>(generate: () => AsyncGenerator<readonly T[]>): Batches<T> {
  return { [Symbol.asyncIterator]: generate };
}

function workspaceStore(root: Kysely<Db>, db: Executor, name: string, ws: number): Store {
  const stateIn = async (executor: Executor, key: string): Promise<string | undefined> =>
    (await sql<{ value: string }>`SELECT value FROM state WHERE ws = ${ws} AND key = ${key}`.execute(executor)).rows[0]?.value;
  const state = (key: string) => stateIn(db, key);
  const putState = (executor: Executor, key: string, value: string) =>
    sql`INSERT INTO state (ws, key, value) VALUES (${ws}, ${key}, ${value}) ON CONFLICT (ws, key) DO UPDATE SET value = excluded.value`.execute(executor);
  const programColumns = sql`version, yaml, spec, activated_at AS "activatedAt"`;
  const subscriptions = async (executor: Executor) => (await sql<{ id: string; types: string }>`SELECT id, types FROM webhooks WHERE ws = ${ws}`.execute(executor)).rows;
  /** Writes one outbox item per notification and subscription that wants it, in the caller's transaction. */
  const queue = async (executor: Executor, notifications: readonly Notification[]) => {
    if (notifications.length === 0) return;
    const wanted = (await subscriptions(executor)).map((row) => ({ id: row.id, types: new Set(row.types.split(',')) }));
    if (wanted.length === 0) return;
    const now = Date.now();
    const createdAt = new Date(now).toISOString();
    const rows: unknown[][] = [];
    for (const notification of notifications) {
      for (const subscription of wanted) {
        if (!subscription.types.has(notification.type)) continue;
        rows.push([ws, subscription.id, notification.type, JSON.stringify({ id: randomUUID(), type: notification.type, workspace: name, createdAt, data: notification.data }), createdAt, now]);
      }
    }
    for (let from = 0; from < rows.length; from += INSERT_ROWS) {
      await sql`INSERT INTO outbox (ws, subscription, type, payload, created_at, next_attempt_at) VALUES ${valuesList(rows.slice(from, from + INSERT_ROWS))}`.execute(executor);
    }
  };

  const appendIn = async (trx: Executor, entries: readonly LogEntry[], samePayload: (stored: string, entry: LogEntry) => boolean): Promise<AppendStatus[]> => {
    // The counter row serialises this workspace's appends (and makes seqs follow commit order).
    const counter = await sql<{ value: string }>`SELECT value FROM state WHERE ws = ${ws} AND key = 'logSeq' FOR UPDATE`.execute(trx);
    const firstSeq = Number(counter.rows[0]?.value ?? 0) + 1;
    // Every entry is inserted at the next seq; an id already stored (or earlier in the batch) is
    // skipped by the primary key. Only the skipped ones are looked up: a batch of new events, the
    // usual case, costs no lookup of its 500 ids (a third of the append before).
    const inserted = new Set<number>();
    // One statement per 10,000 events: arrays unnested server-side instead of a parameter per value.
    for (let from = 0; from < entries.length; from += 10_000) {
      const slice = entries.slice(from, from + 10_000);
      const rows = await sql<{ seq: string }>`INSERT INTO events (ws, id, seq, ts, body, fan)
        SELECT ${ws}, * FROM unnest(${slice.map((entry) => entry.id)}::text[], ${slice.map((_, index) => firstSeq + from + index)}::bigint[], ${slice.map((entry) => entry.ts)}::float8[],
          ${textArrayFromJson(slice.map((entry) => entry.body))}, ${slice.map((entry) => entry.fan ?? null)}::text[])
        ON CONFLICT (ws, id) DO NOTHING RETURNING seq`.execute(trx);
      for (const row of rows.rows) inserted.add(Number(row.seq));
    }
    const skipped = entries.filter((_, index) => !inserted.has(firstSeq + index)).map((entry) => entry.id);
    const stored = new Map<string, string>();
    for (let from = 0; from < skipped.length; from += 10_000) {
      const slice = [...new Set(skipped.slice(from, from + 10_000))];
      for (const row of (await sql<{ id: string; body: string }>`SELECT id, body FROM events WHERE ws = ${ws} AND id = ANY(${slice}::text[])`.execute(trx)).rows) stored.set(row.id, row.body);
    }
    // Seqs stay dense: the events inserted after a skipped one move down to close the gap.
    const statuses: AppendStatus[] = new Array(entries.length);
    const moves: [number, number][] = [];
    const conflicts: unknown[][] = [];
    let next = firstSeq;
    entries.forEach((entry, index) => {
      const seq = firstSeq + index;
      if (inserted.has(seq)) {
        statuses[index] = 'accepted';
        if (seq !== next) moves.push([seq, next]);
        next++;
        return;
      }
      const existing = stored.get(entry.id) as string;
      if (existing === entry.body || samePayload(existing, entry)) statuses[index] = 'duplicate';
      else {
        statuses[index] = 'conflict';
        conflicts.push([ws, entry.id, entry.body, entry.source, entry.line]);
      }
    });
    if (moves.length > 0) {
      // Through negative seqs: the unique (ws, seq) index is checked row by row, in no set order.
      const from = moves.map(([seq]) => seq);
      await sql`UPDATE events SET seq = -seq WHERE ws = ${ws} AND seq = ANY(${from}::bigint[])`.execute(trx);
      await sql`UPDATE events SET seq = m.target FROM unnest(${from.map((seq) => -seq)}::bigint[], ${moves.map(([, target]) => target)}::bigint[]) AS m(moved, target)
        WHERE events.ws = ${ws} AND events.seq = m.moved`.execute(trx);
    }
    for (let from = 0; from < conflicts.length; from += INSERT_ROWS) {
      await sql`INSERT INTO conflicts (ws, id, body, source, line) VALUES ${valuesList(conflicts.slice(from, from + INSERT_ROWS))}`.execute(trx);
    }
    if (inserted.size > 0) await putState(trx, 'logSeq', String(next - 1));
    return statuses;
  };

  const saveIn = async (trx: Executor, write: StateWrite) => {
    if (write.rebuild) {
      for (const table of ['fans', 'posting_blocks', 'derived', 'snapshots', 'fan_events']) await sql`DELETE FROM ${sql.table(table)} WHERE ws = ${ws}`.execute(trx);
    }
    // The events the write's state newly covers, in the index's order.
    const coveredBefore = write.rebuild ? 0 : Number((await stateIn(trx, 'appliedSeq')) ?? 0);
    await sql`INSERT INTO fan_events (ws, fan, seq) SELECT ws, fan, seq FROM events
      WHERE ws = ${ws} AND seq > ${coveredBefore} AND seq <= ${write.appliedSeq} AND fan IS NOT NULL ORDER BY fan, seq
      ON CONFLICT DO NOTHING`.execute(trx);
    const writeFans = async (fans: FanRow[]) => {
      const column = <T>(pick: (fan: FanRow) => T) => fans.map(pick);
      await sql`
        INSERT INTO fans (ws, id, no, level, layer, loyalty, state, program_version, last_activity, recency, backbone_gap, ix_window, referrer, referrals)
        SELECT ${ws}, * FROM unnest(${column((f) => f.id)}::text[], ${column((f) => f.no)}::int[], ${column((f) => f.level)}::int[], ${column((f) => f.layer)}::text[],
          ${column((f) => f.loyaltyLog)}::float8[], ${textArrayFromJson(column((f) => f.state))}, ${column(() => write.programVersion)}::text[], ${column((f) => f.lastActivity)}::float8[],
          ${column((f) => f.recency)}::float8[], ${column((f) => f.backboneGap)}::int[], ${column((f) => f.interactionsInWindow)}::int[],
          ${column((f) => f.referrer)}::text[], ${column((f) => f.referrals)}::int[])
        ON CONFLICT (ws, id) DO UPDATE SET no = excluded.no, level = excluded.level, layer = excluded.layer, loyalty = excluded.loyalty, state = excluded.state,
          program_version = excluded.program_version, last_activity = excluded.last_activity, recency = excluded.recency,
          backbone_gap = excluded.backbone_gap, ix_window = excluded.ix_window, referrer = excluded.referrer, referrals = excluded.referrals`.execute(trx);
    };
    let chunk: FanRow[] = [];
    for (const fan of write.fans) {
      chunk.push(fan);
      if (chunk.length === 5000) {
        await writeFans(chunk);
        chunk = [];
      }
    }
    if (chunk.length > 0) await writeFans(chunk);
    const blocks = [...write.postingBlocks, ...encodePostingBlocks(write.postings)];
    for (const block of blocks) {
      await sql`INSERT INTO posting_blocks (ws, first_seq, last_seq, program_version, postings) VALUES (${ws}, ${block.firstSeq}, ${block.lastSeq}, ${write.programVersion}, ${block.data})`.execute(trx);
    }
    const derived = write.derived.map((d) => [ws, d.type, d.fan, d.ts, 'eventId' in d ? d.eventId : null, JSON.stringify(d), write.programVersion]);
    for (let from = 0; from < derived.length; from += INSERT_ROWS) {
      await sql`INSERT INTO derived (ws, type, fan, ts, event_id, data, program_version) VALUES ${valuesList(derived.slice(from, from + INSERT_ROWS))}`.execute(trx);
    }
    for (const snapshot of write.snapshots) {
      await sql`INSERT INTO snapshots (ws, month, data, program_version) VALUES (${ws}, ${snapshot.month}, ${snapshot.data}, ${write.programVersion})
        ON CONFLICT (ws, month) DO UPDATE SET data = excluded.data, program_version = excluded.program_version`.execute(trx);
    }
    const loyalty =
      write.loyalty ??
      ranksOf(
        (await sql<{ loyalty: number }>`SELECT loyalty FROM fans WHERE ws = ${ws} AND loyalty IS NOT NULL`.execute(trx)).rows.map((row) => row.loyalty),
        Number((await sql<{ count: string }>`SELECT count(*) AS count FROM fans WHERE ws = ${ws}`.execute(trx)).rows[0].count),
      );
    await sql`INSERT INTO loyalty_ranks (ws, total, unranked, sorted) VALUES (${ws}, ${loyalty.total}, ${loyalty.unranked}, ${encodeRanks(loyalty)})
      ON CONFLICT (ws) DO UPDATE SET total = excluded.total, unranked = excluded.unranked, sorted = excluded.sorted`.execute(trx);
    await putState(trx, 'world', write.world);
    await putState(trx, 'provisionalSnapshot', JSON.stringify(write.provisional));
    await putState(trx, 'appliedSeq', String(write.appliedSeq));
    await putState(trx, 'programVersion', write.programVersion);
    if (write.zoneOffsets) await putState(trx, `zoneOffsets:${write.zoneOffsets.zone}`, write.zoneOffsets.text);
    await queue(trx, write.notifications ?? []);
  };

  let ranks: { version: string; ranks: LoyaltyRanks } | null = null;
  const inTransaction = db !== root;

  const store: Store = {
    kind: 'postgres',
    path: null,
    workspace: name,
    append: (entries, samePayload) => (inTransaction ? appendIn(db, entries, samePayload) : root.transaction().execute((trx) => appendIn(trx, entries, samePayload))),
    recordRejects: (rejects: readonly RejectRecord[]) => {
      const write = async (executor: Executor) => {
        const rows = rejects.map((r) => [ws, r.source, r.line, r.field, r.reason, r.raw]);
        for (let from = 0; from < rows.length; from += INSERT_ROWS) {
          await sql`INSERT INTO rejects (ws, source, line, field, reason, raw) VALUES ${valuesList(rows.slice(from, from + INSERT_ROWS))}`.execute(executor);
        }
        await queue(executor, rejects.map((r) => ({ type: 'event.rejected', data: { source: r.source, line: r.line, field: r.field, reason: r.reason, raw: r.raw } })));
      };
      return inTransaction ? write(db) : root.transaction().execute(write);
    },
    subscribedTypes: async () => new Set((await subscriptions(db)).flatMap((row) => row.types.split(',') as WebhookEventType[])),
    exclusive: (run) => {
      if (inTransaction) return run(store);
      return root.transaction().execute(async (trx) => {
        // One writer of derived state per workspace, across every server instance.
        await sql`SELECT pg_advisory_xact_lock(${0x66616e66}, ${ws})`.execute(trx);
        return run(workspaceStore(root, trx, name, ws));
      });
    },
    readConsistently: (read) => {
      if (inTransaction) return read(store);
      return root
        .transaction()
        .setIsolationLevel('repeatable read')
        .setAccessMode('read only')
        .execute((trx) => read(workspaceStore(root, trx, name, ws)));
    },
    maxSeq: async () => Number((await state('logSeq')) ?? 0),
    readAfter: (afterSeq) =>
      batches(() =>
        keyset<StoredLogEvent, number>(
          async (after) => (await sql<{ seq: string; body: string }>`SELECT seq, body FROM events WHERE ws = ${ws} AND seq > ${after ?? afterSeq} ORDER BY seq LIMIT ${BATCH}`.execute(db)).rows.map((row) => ({ seq: Number(row.seq), body: row.body })),
          (row) => row.seq,
        ),
      ),
    readOrdered: (until) =>
      batches(() =>
        keyset<StoredLogEvent & { ts: number; id: string }, [number, string]>(
          async (after) =>
            (
              await sql<{ seq: string; body: string; ts: number; id: string }>`SELECT seq, body, ts, id FROM events WHERE ws = ${ws}
                ${after ? sql`AND (ts, id) > (${after[0]}, ${after[1]})` : sql``} ${until !== undefined ? sql`AND ts <= ${until}` : sql``}
                ORDER BY ts, id LIMIT ${BATCH}`.execute(db)
            ).rows.map((row) => ({ seq: Number(row.seq), body: row.body, ts: row.ts, id: row.id })),
          (row) => [row.ts, row.id],
        ),
      ),
    countEvents: async () => Number((await sql<{ count: string }>`SELECT count(*) AS count FROM events WHERE ws = ${ws}`.execute(db)).rows[0].count),
    readEvent: async (id) => (await sql<{ body: string }>`SELECT body FROM events WHERE ws = ${ws} AND id = ${id}`.execute(db)).rows[0]?.body ?? null,
    readFanEvents: async (fan, limit, beforeSeq) =>
      (
        await sql<{ seq: string; body: string }>`SELECT f.seq, e.body FROM fan_events f JOIN events e ON e.ws = f.ws AND e.seq = f.seq
          WHERE f.ws = ${ws} AND f.fan = ${fan} AND f.seq < ${beforeSeq ?? Number.MAX_SAFE_INTEGER} ORDER BY f.seq DESC LIMIT ${limit}`.execute(db)
      ).rows.map((row) => ({ seq: Number(row.seq), body: row.body })),
    readFanDerived: async (fan, limit, beforeTs) =>
      (await sql<{ type: string; ts: number; eventId: string | null; data: string }>`SELECT type, ts, event_id AS "eventId", data FROM derived WHERE ws = ${ws} AND fan = ${fan} AND ts < ${beforeTs ?? Number.MAX_VALUE} ORDER BY seq DESC LIMIT ${limit}`.execute(db)).rows,
    async loadState(): Promise<StoredState | null> {
      const meta = await store.loadStateMeta();
      if (!meta) return null;
      const fans = (await sql<{ id: string; state: string }>`SELECT id, state FROM fans WHERE ws = ${ws} ORDER BY no`.execute(db)).rows;
      return { ...meta, fans, snapshots: await store.readSnapshots() };
    },
    async loadStateMeta() {
      const rows = (await sql<{ key: string; value: string }>`SELECT key, value FROM state WHERE ws = ${ws} AND key IN ('world', 'programVersion', 'appliedSeq')`.execute(db)).rows;
      const value = (key: string) => rows.find((row) => row.key === key)?.value;
      const world = value('world');
      if (world === undefined) return null;
      return { world, programVersion: value('programVersion') as string, appliedSeq: Number(value('appliedSeq')) };
    },
    loadProvisional: async () => JSON.parse((await state('provisionalSnapshot')) ?? 'null') as { month: string; data: string } | null,
    zoneOffsets: async (zone) => (await state(`zoneOffsets:${zone}`)) ?? null,
    loadFan: async (id) =>
      (
        await sql<{ state: string; programVersion: string; appliedSeq: number | null }>`SELECT state, program_version AS "programVersion",
          (SELECT value::bigint FROM state WHERE ws = ${ws} AND key = 'appliedSeq')::float8 AS "appliedSeq" FROM fans WHERE ws = ${ws} AND id = ${id}`.execute(db)
      ).rows[0] ?? null,
    iterateFans: () =>
      batches(() =>
        keyset<{ id: string; state: string; no: number }, number>(
          async (after) => (await sql<{ id: string; state: string; no: number }>`SELECT id, state, no FROM fans WHERE ws = ${ws} AND no > ${after ?? -1} ORDER BY no LIMIT ${BATCH}`.execute(db)).rows,
          (row) => row.no,
        ),
      ),
    async pageFansBy(query) {
      const column = sql.ref(query.sort === 'level' ? 'level' : 'loyalty');
      const descending = query.descending;
      const op = sql.raw(descending ? '<' : '>');
      const dir = sql.raw(descending ? 'DESC' : 'ASC');
      type Row = { no: number; state: string; value: number | null };
      const rows: Row[] = [];
      if (!query.after || query.after.value !== null) {
        const position = query.after ? sql`AND (${column}, no) ${op} (${query.after.value}, ${query.after.no})` : sql`AND ${column} IS NOT NULL`;
        rows.push(...(await sql<Row>`SELECT no, state, ${column}::float8 AS value FROM fans WHERE ws = ${ws} ${position} ORDER BY ${column} ${dir}, no ${dir} LIMIT ${query.limit}`.execute(db)).rows);
      }
      if (rows.length < query.limit) {
        const afterNo = query.after?.value === null ? sql`AND no ${op} ${query.after.no}` : sql``;
        rows.push(...(await sql<Row>`SELECT no, state, NULL::float8 AS value FROM fans WHERE ws = ${ws} AND ${column} IS NULL ${afterNo} ORDER BY no ${dir} LIMIT ${query.limit - rows.length}`.execute(db)).rows);
      }
      return rows;
    },
    countFans: async () => Number((await sql<{ count: string }>`SELECT COUNT(*) AS count FROM fans WHERE ws = ${ws}`.execute(db)).rows[0].count),
    pageFans: async (query) => (await sql<{ no: number; state: string }>`SELECT no, state FROM fans WHERE ws = ${ws} AND no > ${query.afterNo} ORDER BY no LIMIT ${query.limit}`.execute(db)).rows,
    readSnapshots: async () => (await sql<{ month: string; data: string }>`SELECT month, data FROM snapshots WHERE ws = ${ws} ORDER BY month`.execute(db)).rows,
    findFanStates: (query) =>
      batches(async function* () {
        // The union is of fan numbers: deduplicating whole states would compare every state's text.
        const { rows } = await sql<{ state: string }>`SELECT state FROM fans WHERE ws = ${ws} AND no IN (
          SELECT no FROM fans WHERE ws = ${ws} AND layer = ANY(${query.layers}::text[]) AND last_activity > ${query.activeAfter}
          UNION SELECT no FROM fans WHERE ws = ${ws} AND level = ${query.level})`.execute(db);
        yield rows.map((row) => row.state);
      }),
    iterateByBackboneGap: (layer, activeAfter) =>
      batches(async function* () {
        // The reader usually stops within the first rows: pages grow from a few rows to BATCH.
        for (let offset = 0, size = 32; ; offset += size, size = Math.min(BATCH, size * 4)) {
          const rows = (
            await sql<{ state: string; backboneGap: number; interactionsInWindow: number }>`SELECT state, backbone_gap AS "backboneGap", ix_window AS "interactionsInWindow"
              FROM fans WHERE ws = ${ws} AND layer = ${layer} AND last_activity > ${activeAfter} ORDER BY backbone_gap, ix_window DESC, no LIMIT ${size} OFFSET ${offset}`.execute(db)
          ).rows;
          if (rows.length === 0) return;
          yield rows;
          if (rows.length < size) return;
        }
      }),
    findInactiveRecent: async (activeAtOrBefore, limit) =>
      (
        await sql<{ state: string }>`SELECT state FROM fans WHERE ws = ${ws} AND layer <> 'U' AND (layer = 'O' OR last_activity IS NULL OR last_activity <= ${activeAtOrBefore})
          ORDER BY recency DESC, no LIMIT ${limit}`.execute(db)
      ).rows.map((row) => row.state),
    saveState: (write) => (inTransaction ? saveIn(db, write) : root.transaction().execute((trx) => saveIn(trx, write))),
    saveProvisional: async (provisional) => {
      await putState(db, 'provisionalSnapshot', JSON.stringify(provisional));
    },
    async loyaltyRank(value, of) {
      if (of && ranks?.version === ranksVersion(of.appliedSeq, of.programVersion)) return rankOf(ranks.ranks, value);
      const version = ranksVersion((await state('appliedSeq')) ?? '', (await state('programVersion')) ?? '');
      if (ranks?.version !== version) {
        const row = (await sql<{ total: number; unranked: number; sorted: Buffer }>`SELECT total, unranked, sorted FROM loyalty_ranks WHERE ws = ${ws}`.execute(db)).rows[0];
        if (!row) return { below: 0, total: 0 };
        ranks = { version, ranks: decodeRanks(row.total, row.unranked, row.sorted) };
      }
      return rankOf(ranks.ranks, value);
    },
    readPostings: () =>
      batches(async function* () {
        let after = -1;
        for (;;) {
          const rows = (await sql<{ firstSeq: string; programVersion: string; postings: string }>`SELECT first_seq AS "firstSeq", program_version AS "programVersion", postings FROM posting_blocks WHERE ws = ${ws} AND first_seq > ${after} ORDER BY first_seq LIMIT 20`.execute(db)).rows;
          if (rows.length === 0) return;
          for (const row of rows) yield [...decodePostings(row.postings, row.programVersion)] as Posting[];
          after = Number(rows[rows.length - 1].firstSeq);
        }
      }),
    activeProgram: async () => (await sql<StoredProgram>`SELECT ${programColumns} FROM programs WHERE ws = ${ws} ORDER BY seq DESC LIMIT 1`.execute(db)).rows[0] ?? null,
    async readPosition() {
      const row = (
        await sql<{ active: string | null; world: string | null; programVersion: string | null; appliedSeq: string | null; logSeq: string | null }>`SELECT
          (SELECT version FROM programs WHERE ws = ${ws} ORDER BY seq DESC LIMIT 1) AS active,
          (SELECT value FROM state WHERE ws = ${ws} AND key = 'world') AS world,
          (SELECT value FROM state WHERE ws = ${ws} AND key = 'programVersion') AS "programVersion",
          (SELECT value FROM state WHERE ws = ${ws} AND key = 'appliedSeq') AS "appliedSeq",
          (SELECT value FROM state WHERE ws = ${ws} AND key = 'logSeq') AS "logSeq"`.execute(db)
      ).rows[0];
      return {
        activeProgramVersion: row.active,
        meta: row.world === null ? null : { world: row.world, programVersion: row.programVersion as string, appliedSeq: Number(row.appliedSeq) },
        maxSeq: Number(row.logSeq ?? 0),
      };
    },
    activeProgramVersion: async () => (await sql<{ version: string }>`SELECT version FROM programs WHERE ws = ${ws} ORDER BY seq DESC LIMIT 1`.execute(db)).rows[0]?.version ?? null,
    programHistory: async () => (await sql<StoredProgram>`SELECT ${programColumns} FROM programs WHERE ws = ${ws} ORDER BY seq DESC`.execute(db)).rows,
    async activateProgram(version, yaml, spec, at) {
      await sql`INSERT INTO programs (ws, version, yaml, spec, activated_at, seq) VALUES (${ws}, ${version}, ${yaml}, ${spec}, ${at}, (SELECT COALESCE(MAX(seq), 0) + 1 FROM programs WHERE ws = ${ws}))
        ON CONFLICT (ws, version) DO UPDATE SET activated_at = excluded.activated_at, seq = excluded.seq, spec = excluded.spec`.execute(db);
    },
    referralEdges: async () => (await sql<{ fan: string; referrer: string }>`SELECT id AS fan, referrer FROM fans WHERE ws = ${ws} AND referrer IS NOT NULL`.execute(db)).rows,
    referrerStates: async (limit) =>
      (await sql<{ state: string }>`SELECT state FROM fans WHERE ws = ${ws} AND referrals > 0 ORDER BY referrals DESC, no LIMIT ${limit ?? null}`.execute(db)).rows.map((row) => row.state),
    findRedemption: async (requestId) => {
      const row = (await sql<RedemptionRecord>`SELECT request_id AS "requestId", fan, item, points, seq, outcome, created_at AS "createdAt" FROM redemptions WHERE ws = ${ws} AND request_id = ${requestId}`.execute(db)).rows[0];
      return row ? { ...row, seq: row.seq === null ? null : Number(row.seq) } : null;
    },
    async saveRedemption(r) {
      await sql`INSERT INTO redemptions (ws, request_id, fan, item, points, seq, outcome, created_at) VALUES (${ws}, ${r.requestId}, ${r.fan}, ${r.item}, ${r.points}, ${r.seq}, ${r.outcome}, ${r.createdAt})`.execute(db);
    },
    redemptionsAfter: async (seq) => (await sql<{ fan: string; item: string; points: number }>`SELECT fan, item, points FROM redemptions WHERE ws = ${ws} AND seq > ${seq} ORDER BY seq`.execute(db)).rows,
    close: async () => {},
  };
  return store;
}

/** The store of one workspace (default "default"), owning its pool. */
export async function openPostgresStore(url: string, options: { workspace?: string } = {}): Promise<Store> {
  const database = await openPostgresDatabase(url);
  const store = await database.workspace(options.workspace ?? DEFAULT_WORKSPACE);
  return { ...store, close: () => database.close() };
}
