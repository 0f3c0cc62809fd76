/**
 * The embedded store: one SQLite file (better-sqlite3), WAL with synchronous=FULL so that every
 * acknowledged append survives a crash or power loss. One file holds many workspaces: every row
 * carries its workspace's number.
 */
import { randomUUID } from 'node:crypto';
import { createRequire } from 'node:module';
import Database from 'better-sqlite3';
import type { Posting } from '../core/state.js';
import { decodeRanks, encodeRanks, rankOf, ranksOf, ranksVersion, type LoyaltyRanks, type RanksOf } from './loyalty-ranks.js';
import { decodePostings, encodePostingBlocks } from './posting-codec.js';
import { expireReadCaches, readCacheOf } from './read-cache.js';
import { DEFAULT_WORKSPACE, type AppendStatus, type FanRow, type Batches, type Database as DatabasePort, type KeyScope, type LogEntry, type RejectRecord, type StateWrite, type Store, type FanOrderQuery, type StoredKey, type StoredSession, type StoredUser, type StoredLogEvent, type StoredProgram, type StoredState, type StorePosition, type Notification, type OutboxItem, type RedemptionRecord, type WebhookEventType, type WebhookSubscription } from './store.js';

// The log is keyed by event id (WITHOUT ROWID): the id check and the append are one B-tree. Its
// one other index is in position order, so appends add at its end; each fan's events are indexed
// apart (fan_events), with the derived state. Postings are stored in blocks of consecutive seqs.
export const MIGRATIONS: readonly string[] = [
  `CREATE TABLE events (
     id TEXT PRIMARY KEY,
     seq INTEGER NOT NULL,
     ts REAL NOT NULL,
     body TEXT NOT NULL
   ) WITHOUT ROWID;
   CREATE TABLE conflicts (seq INTEGER PRIMARY KEY, id TEXT NOT NULL, body TEXT NOT NULL, source TEXT, line INTEGER);
   CREATE TABLE rejects (seq INTEGER PRIMARY KEY, source TEXT, line INTEGER, field TEXT NOT NULL, reason TEXT NOT NULL, raw TEXT NOT NULL);
   CREATE TABLE programs (version TEXT PRIMARY KEY, yaml TEXT NOT NULL, activated_at TEXT NOT NULL, seq INTEGER NOT NULL);
   CREATE TABLE fans (
     id TEXT PRIMARY KEY,
     no INTEGER NOT NULL,
     level INTEGER NOT NULL,
     layer TEXT NOT NULL,
     loyalty REAL,
     state TEXT NOT NULL,
     program_version TEXT NOT NULL
   );
   CREATE INDEX fans_loyalty ON fans (loyalty);
   CREATE TABLE posting_blocks (
     first_seq INTEGER PRIMARY KEY,
     last_seq INTEGER NOT NULL,
     program_version TEXT NOT NULL,
     postings TEXT NOT NULL
   );
   CREATE TABLE derived (seq INTEGER PRIMARY KEY, type TEXT NOT NULL, fan TEXT, ts REAL NOT NULL, event_id TEXT, data TEXT NOT NULL, program_version TEXT NOT NULL);
   CREATE INDEX derived_fan ON derived (fan, seq);
   CREATE TABLE snapshots (month TEXT PRIMARY KEY, data TEXT NOT NULL, program_version TEXT NOT NULL);
   CREATE TABLE state (key TEXT PRIMARY KEY, value TEXT NOT NULL);`,
  // The validated program as JSON, so that reading commands skip YAML parsing and validation.
  `ALTER TABLE programs ADD COLUMN spec TEXT;`,
  // What the report's lists of fans to act on select by, without loading every fan.
  `ALTER TABLE fans ADD COLUMN last_activity REAL;
   ALTER TABLE fans ADD COLUMN recency REAL;
   CREATE INDEX fans_layer ON fans (layer, last_activity);
   CREATE INDEX fans_recency ON fans (recency);`,
  // Bounds that order General fans by how close they can be to Backbone (see queries.ts).
  `ALTER TABLE fans ADD COLUMN backbone_gap INTEGER;
   ALTER TABLE fans ADD COLUMN ix_window INTEGER;
   CREATE INDEX fans_backbone_gap ON fans (layer, backbone_gap, ix_window);
   CREATE INDEX fans_level ON fans (level);`,
  // Every fan's loyalty value, sorted, so that one fan's percentile is a binary search.
  `CREATE TABLE loyalty_ranks (id INTEGER PRIMARY KEY CHECK (id = 1), total INTEGER NOT NULL, unranked INTEGER NOT NULL, sorted BLOB NOT NULL);`,
  // Workspaces: every row belongs to one (a small number in each key); API keys per workspace.
  // The log, its conflicts and rejects and the programs are copied into workspace 1, "default";
  // the derived tables start empty and the next command rebuilds them from the log.
  `CREATE TABLE workspaces (no INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, created_at TEXT NOT NULL);
   INSERT INTO workspaces (no, name, created_at) VALUES (1, 'default', strftime('%Y-%m-%dT%H:%M:%fZ', 'now'));
   CREATE TABLE api_keys (
     id TEXT PRIMARY KEY,
     ws INTEGER NOT NULL REFERENCES workspaces (no),
     hash TEXT NOT NULL,
     scopes TEXT NOT NULL,
     label TEXT,
     created_at TEXT NOT NULL,
     revoked_at TEXT
   );
   CREATE INDEX api_keys_ws ON api_keys (ws);
   CREATE TABLE events_ws (ws INTEGER NOT NULL, id TEXT NOT NULL, seq INTEGER NOT NULL, ts REAL NOT NULL, body TEXT NOT NULL, PRIMARY KEY (ws, id)) WITHOUT ROWID;
   INSERT INTO events_ws (ws, id, seq, ts, body) SELECT 1, id, seq, ts, body FROM events;
   DROP TABLE events;
   ALTER TABLE events_ws RENAME TO events;
   ALTER TABLE conflicts ADD COLUMN ws INTEGER NOT NULL DEFAULT 1;
   ALTER TABLE rejects ADD COLUMN ws INTEGER NOT NULL DEFAULT 1;
   CREATE TABLE programs_ws (ws INTEGER NOT NULL, version TEXT NOT NULL, yaml TEXT NOT NULL, spec TEXT, activated_at TEXT NOT NULL, seq INTEGER NOT NULL, PRIMARY KEY (ws, version));
   INSERT INTO programs_ws (ws, version, yaml, spec, activated_at, seq) SELECT 1, version, yaml, spec, activated_at, seq FROM programs;
   DROP TABLE programs;
   ALTER TABLE programs_ws RENAME TO programs;
   DROP TABLE fans;
   CREATE TABLE fans (
     ws INTEGER NOT NULL,
     id TEXT NOT NULL,
     no INTEGER NOT NULL,
     level INTEGER NOT NULL,
     layer TEXT NOT NULL,
     loyalty REAL,
     state TEXT NOT NULL,
     program_version TEXT NOT NULL,
     last_activity REAL,
     recency REAL,
     backbone_gap INTEGER,
     ix_window INTEGER,
     PRIMARY KEY (ws, id)
   );
   CREATE INDEX fans_no ON fans (ws, no);
   CREATE INDEX fans_layer ON fans (ws, layer, last_activity);
   CREATE INDEX fans_recency ON fans (ws, recency);
   CREATE INDEX fans_backbone_gap ON fans (ws, layer, backbone_gap, ix_window);
   CREATE INDEX fans_level ON fans (ws, level);
   CREATE INDEX fans_loyalty ON fans (ws, loyalty);
   DROP TABLE posting_blocks;
   CREATE TABLE posting_blocks (ws INTEGER NOT NULL, first_seq INTEGER NOT NULL, last_seq INTEGER NOT NULL, program_version TEXT NOT NULL, postings TEXT NOT NULL, PRIMARY KEY (ws, first_seq));
   DROP TABLE derived;
   CREATE TABLE derived (seq INTEGER PRIMARY KEY, ws INTEGER NOT NULL, type TEXT NOT NULL, fan TEXT, ts REAL NOT NULL, event_id TEXT, data TEXT NOT NULL, program_version TEXT NOT NULL);
   CREATE INDEX derived_fan ON derived (ws, fan, seq);
   DROP TABLE snapshots;
   CREATE TABLE snapshots (ws INTEGER NOT NULL, month TEXT NOT NULL, data TEXT NOT NULL, program_version TEXT NOT NULL, PRIMARY KEY (ws, month));
   CREATE TABLE state_ws (ws INTEGER NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (ws, key));
   INSERT INTO state_ws (ws, key, value) SELECT 1, key, value FROM state WHERE key = 'logSeq';
   DROP TABLE state;
   ALTER TABLE state_ws RENAME TO state;
   DROP TABLE loyalty_ranks;
   CREATE TABLE loyalty_ranks (ws INTEGER PRIMARY KEY, total INTEGER NOT NULL, unranked INTEGER NOT NULL, sorted BLOB NOT NULL);`,
  // Webhook subscriptions and the transactional outbox of their deliveries.
  `CREATE TABLE webhooks (id TEXT PRIMARY KEY, ws INTEGER NOT NULL REFERENCES workspaces (no), url TEXT NOT NULL, secret TEXT NOT NULL, types TEXT NOT NULL, created_at TEXT NOT NULL);
   CREATE INDEX webhooks_ws ON webhooks (ws);
   CREATE TABLE outbox (
     seq INTEGER PRIMARY KEY, ws INTEGER NOT NULL, subscription TEXT NOT NULL, type TEXT NOT NULL, payload TEXT NOT NULL,
     created_at TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, next_attempt_at REAL NOT NULL, claimed_until REAL,
     delivered_at TEXT, last_error TEXT, dead INTEGER NOT NULL DEFAULT 0
   );
   CREATE INDEX outbox_due ON outbox (next_attempt_at) WHERE delivered_at IS NULL AND dead = 0;
   CREATE INDEX outbox_dead ON outbox (ws, seq) WHERE dead = 1;`,
  // Redemption requests and their outcomes (idempotency by request id).
  `CREATE TABLE redemptions (
     ws INTEGER NOT NULL, request_id TEXT NOT NULL, fan TEXT NOT NULL, item TEXT NOT NULL, points INTEGER NOT NULL,
     seq INTEGER, outcome TEXT NOT NULL, created_at TEXT NOT NULL, PRIMARY KEY (ws, request_id)
   );
   CREATE INDEX redemptions_seq ON redemptions (ws, seq) WHERE seq IS NOT NULL;`,
  // The referral tree and leaderboards read these columns; the next catch-up fills them (engine 3).
  `ALTER TABLE fans ADD COLUMN referrer TEXT;
   ALTER TABLE fans ADD COLUMN referrals INTEGER NOT NULL DEFAULT 0;
   CREATE INDEX fans_referrals ON fans (ws, referrals) WHERE referrals > 0;`,
  // One fan's events as an index range (the dashboard's timeline); operators and their sessions.
  `ALTER TABLE events ADD COLUMN fan TEXT;
   UPDATE events SET fan = json_extract(body, '$.fan') WHERE json_valid(body);
   CREATE INDEX events_fan ON events (ws, fan, seq);
   CREATE TABLE users (
     id TEXT PRIMARY KEY, ws INTEGER NOT NULL REFERENCES workspaces (no), email TEXT NOT NULL UNIQUE,
     password_hash TEXT NOT NULL, role TEXT NOT NULL, created_at TEXT NOT NULL, disabled_at TEXT
   );
   CREATE TABLE sessions (hash TEXT PRIMARY KEY, user_id TEXT NOT NULL REFERENCES users (id), csrf TEXT NOT NULL, created_at TEXT NOT NULL, expires_at REAL NOT NULL);
   CREATE INDEX sessions_user ON sessions (user_id);`,
  // The dashboard's fan table pages in level or loyalty order: fan number in the index breaks ties.
  `DROP INDEX fans_level;
   CREATE INDEX fans_level ON fans (ws, level, no);
   DROP INDEX fans_loyalty;
   CREATE INDEX fans_loyalty ON fans (ws, loyalty, no);`,
  // The log after a position as an index range: a catch-up reads only the events it applies
  // instead of scanning the whole log of the workspace.
  `CREATE INDEX events_seq ON events (ws, seq);`,
  // The referral trees (compliance, the tree view) from the index alone, not a scan of every state.
  `CREATE INDEX fans_referrer ON fans (ws, referrer, id) WHERE referrer IS NOT NULL;`,
  // Each fan's events, kept with the derived state instead of as an index of the log: an index in
  // fan order put every append's rows on pages all over the file, which tripled its cost.
  `CREATE TABLE fan_events (ws INTEGER NOT NULL, fan TEXT NOT NULL, seq INTEGER NOT NULL, PRIMARY KEY (ws, fan, seq)) WITHOUT ROWID;
   INSERT INTO fan_events (ws, fan, seq)
     SELECT e.ws, e.fan, e.seq FROM events e
     WHERE e.fan IS NOT NULL AND e.seq <= COALESCE((SELECT CAST(value AS INTEGER) FROM state s WHERE s.ws = e.ws AND s.key = 'appliedSeq'), 0)
     ORDER BY e.ws, e.fan, e.seq;
   DROP INDEX events_fan;
   DROP INDEX events_seq;
   CREATE INDEX events_seq ON events (ws, seq, fan);`,
];

const BATCH_ROWS = 200;

export interface SqliteOptions {
  /** Page cache of this connection in KiB (default 64 MiB); an append-only connection needs little. */
  cacheKiB?: number;
  /**
   * Bytes of the file SQLite may read through a memory map (PRAGMA mmap_size), in MiB; 0 (the
   * default) reads through its page cache only. A long-running reader (the server) maps the file:
   * a first read of many fans' states then costs a third of what it costs through read calls.
   */
  mmapMiB?: number;
}

/** One SQLite file: the catalog of workspaces and keys, and a store per workspace. */
export interface SqliteDatabase extends DatabasePort {
  readonly kind: 'sqlite';
  readonly path: string | null;
  leaveCheckpoints(): void;
}

/**
 * Serialises the operations on one connection: a transaction (`exclusive`) holds it from BEGIN
 * to COMMIT, so no other request's statement can slip into the open transaction between awaits.
 */
class Gate {
  private tail: Promise<unknown> = Promise.resolve();

  run<T>(operation: () => T | Promise<T>): Promise<T> {
    const result = this.tail.then(operation);
    this.tail = result.catch(() => undefined);
    return result;
  }

  /** Holds the gate until the returned function is called. */
  async acquire(): Promise<() => void> {
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const previous = this.tail;
    this.tail = previous.then(() => held);
    await previous;
    return release;
  }
}

/**
 * The addon's file where its install puts it. Left to itself, better-sqlite3 finds it through the
 * `bindings` package, which tries a dozen paths: about 6 ms of a short command such as
 * `fanflow fan`. Another layout falls back to that search.
 */
let addonPath: string | null | undefined;
function nativeBinding(): string | undefined {
  if (addonPath === undefined) {
    try {
      addonPath = createRequire(import.meta.url).resolve('better-sqlite3/build/Release/better_sqlite3.node');
    } catch {
      addonPath = null;
    }
  }
  return addonPath ?? undefined;
}

/** A connection to the file, through the addon above. */
function connect(path: string, options: Database.Options = {}): Database.Database {
  return new Database(path, { ...options, nativeBinding: nativeBinding() });
}

const BATCH = 2000;
const FIRST_BATCH = 32;

export async function openSqliteDatabase(path: string, options: SqliteOptions = {}): Promise<SqliteDatabase> {
  return openSqliteDatabaseNow(path, options);
}

function openSqliteDatabaseNow(path: string, options: SqliteOptions): SqliteDatabase {
  const db = connect(path);
  // Writers queue behind the one holding the write lock (a long rebuild holds it for a while);
  // set first, so that even switching a new file to WAL waits instead of failing.
  db.pragma('busy_timeout = 600000');
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.pragma(`cache_size = -${Math.max(1024, Math.floor(options.cacheKiB ?? 65536))}`);
  if (options.mmapMiB && options.mmapMiB > 0) db.pragma(`mmap_size = ${Math.floor(options.mmapMiB) * 1024 * 1024}`);
  db.pragma('foreign_keys = ON');
  migrate(db);
  const gate = new Gate();
  const filePath = path === ':memory:' || path === '' ? null : path;
  const workspaceNo = db.prepare('SELECT no FROM workspaces WHERE name = ?').pluck();
  const insertWorkspace = db.prepare(`INSERT INTO workspaces (name, created_at) VALUES (?, strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) ON CONFLICT (name) DO NOTHING`);
  const ensureWorkspace = (name: string): number => {
    const existing = workspaceNo.get(name) as number | undefined;
    if (existing !== undefined) return existing;
    insertWorkspace.run(name);
    return workspaceNo.get(name) as number;
  };
  const stores = new Map<string, Store>();
  const keyColumns = 'k.id, w.name AS workspace, k.hash, k.scopes, k.label, k.created_at AS createdAt, k.revoked_at AS revokedAt';
  const findKeyById = db.prepare(`SELECT ${keyColumns} FROM api_keys k JOIN workspaces w ON w.no = k.ws WHERE k.id = ?`);
  const userColumns = 'u.id, w.name AS workspace, u.email, u.password_hash AS passwordHash, u.role, u.created_at AS createdAt, u.disabled_at AS disabledAt FROM users u JOIN workspaces w ON w.no = u.ws';
  const userByEmail = db.prepare(`SELECT ${userColumns} WHERE u.email = ?`);
  const userById = db.prepare(`SELECT ${userColumns} WHERE u.id = ?`);
  const sessionByHash = db.prepare('SELECT hash, user_id AS userId, csrf, created_at AS createdAt, expires_at AS expiresAt FROM sessions WHERE hash = ?');
  const toKey = (row: { id: string; workspace: string; hash: string; scopes: string; label: string | null; createdAt: string; revokedAt: string | null }): StoredKey => ({
    ...row,
    scopes: row.scopes.split(',').filter((scope) => scope !== '') as KeyScope[],
  });
  const outboxRow = db.prepare(
    `SELECT o.seq, w.name AS workspace, o.subscription, h.url, h.secret, o.type, o.payload, o.attempts, o.created_at AS createdAt, o.last_error AS lastError
     FROM outbox o JOIN workspaces w ON w.no = o.ws JOIN webhooks h ON h.id = o.subscription WHERE o.seq = ?`,
  );
  const outboxItem = (seq: number) => outboxRow.get(seq) as OutboxItem;
  const due = 'delivered_at IS NULL AND dead = 0 AND next_attempt_at <= ? AND (claimed_until IS NULL OR claimed_until < ?)';
  const anyDue = db.prepare(`SELECT 1 FROM outbox WHERE ${due} LIMIT 1`);
  const claimDue = db.prepare(`UPDATE outbox SET claimed_until = ? WHERE seq IN (SELECT seq FROM outbox WHERE ${due} ORDER BY next_attempt_at, seq LIMIT ?) RETURNING seq`);
  const cache = readCacheOf(db);
  return {
    kind: 'sqlite',
    path: filePath,
    leaveCheckpoints: () => {
      db.pragma('wal_autocheckpoint = 0');
    },
    workspace: (name) =>
      gate.run(() => {
        let store = stores.get(name);
        if (!store) {
          store = asyncStore(workspaceStore(db, filePath, name, ensureWorkspace(name)), gate, db, false);
          stores.set(name, store);
        }
        return store;
      }),
    listWorkspaces: () => gate.run(() => db.prepare('SELECT name, created_at AS createdAt FROM workspaces ORDER BY no').all() as { name: string; createdAt: string }[]),
    createKey: (key) =>
      gate.run(() => {
        const ws = ensureWorkspace(key.workspace);
        db.prepare('INSERT INTO api_keys (id, ws, hash, scopes, label, created_at) VALUES (?, ?, ?, ?, ?, ?)').run(key.id, ws, key.hash, key.scopes.join(','), key.label, key.createdAt);
      }),
    findKey: (id) =>
      gate.run(() =>
        cache.get(`key:${id}`, () => {
          const row = findKeyById.get(id) as Parameters<typeof toKey>[0] | undefined;
          return row ? toKey(row) : null;
        }),
      ),
    listKeys: (workspace) =>
      gate.run(() =>
        (
          (workspace === undefined
            ? db.prepare(`SELECT ${keyColumns} FROM api_keys k JOIN workspaces w ON w.no = k.ws ORDER BY k.created_at, k.id`).all()
            : db.prepare(`SELECT ${keyColumns} FROM api_keys k JOIN workspaces w ON w.no = k.ws WHERE w.name = ? ORDER BY k.created_at, k.id`).all(workspace)) as Parameters<typeof toKey>[0][]
        ).map(toKey),
      ),
    revokeKey: (id, at) => gate.run(() => db.prepare('UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL').run(at, id).changes > 0),
    createUser: (user) =>
      gate.run(() => {
        const ws = ensureWorkspace(user.workspace);
        db.prepare('INSERT INTO users (id, ws, email, password_hash, role, created_at) VALUES (?, ?, ?, ?, ?, ?)').run(user.id, ws, user.email, user.passwordHash, user.role, user.createdAt);
      }),
    findUserByEmail: (email) => gate.run(() => (userByEmail.get(email) as StoredUser | undefined) ?? null),
    findUser: (id) => gate.run(() => (userById.get(id) as StoredUser | undefined) ?? null),
    listUsers: (workspace) =>
      gate.run(
        () =>
          (workspace === undefined
            ? db.prepare(`SELECT ${userColumns} ORDER BY u.created_at, u.email`).all()
            : db.prepare(`SELECT ${userColumns} WHERE w.name = ? ORDER BY u.created_at, u.email`).all(workspace)) as StoredUser[],
      ),
    setPassword: (email, passwordHash) =>
      gate.run(() =>
        db.transaction(() => {
          const changed = db.prepare('UPDATE users SET password_hash = ? WHERE email = ?').run(passwordHash, email).changes > 0;
          if (changed) db.prepare('DELETE FROM sessions WHERE user_id = (SELECT id FROM users WHERE email = ?)').run(email);
          return changed;
        })(),
      ),
    disableUser: (email, at) =>
      gate.run(() =>
        db.transaction(() => {
          const changed = db.prepare('UPDATE users SET disabled_at = ? WHERE email = ? AND disabled_at IS NULL').run(at, email).changes > 0;
          if (changed) db.prepare('DELETE FROM sessions WHERE user_id = (SELECT id FROM users WHERE email = ?)').run(email);
          return changed;
        })(),
      ),
    createSession: (session) =>
      gate.run(() => {
        db.prepare('INSERT INTO sessions (hash, user_id, csrf, created_at, expires_at) VALUES (?, ?, ?, ?, ?)').run(session.hash, session.userId, session.csrf, session.createdAt, session.expiresAt);
      }),
    findSession: (hash, now) =>
      gate.run(() => {
        const session = sessionByHash.get(hash) as StoredSession | undefined;
        if (!session) return null;
        if (session.expiresAt <= now) {
          db.prepare('DELETE FROM sessions WHERE hash = ?').run(hash);
          return null;
        }
        const user = userById.get(session.userId) as StoredUser | undefined;
        return user && user.disabledAt === null ? { session, user } : null;
      }),
    deleteSession: (hash) =>
      gate.run(() => {
        db.prepare('DELETE FROM sessions WHERE hash = ?').run(hash);
      }),
    addWebhook: (subscription) =>
      gate.run(() => {
        const ws = ensureWorkspace(subscription.workspace);
        db.prepare('INSERT INTO webhooks (id, ws, url, secret, types, created_at) VALUES (?, ?, ?, ?, ?, ?)').run(subscription.id, ws, subscription.url, subscription.secret, subscription.types.join(','), subscription.createdAt);
      }),
    listWebhooks: (workspace) =>
      gate.run(() =>
        (db.prepare(`SELECT h.id, w.name AS workspace, h.url, h.secret, h.types, h.created_at AS createdAt FROM webhooks h JOIN workspaces w ON w.no = h.ws WHERE w.name = ? ORDER BY h.created_at, h.id`).all(workspace) as (Omit<WebhookSubscription, 'types'> & { types: string })[]).map(
          (row) => ({ ...row, types: row.types.split(',') as WebhookEventType[] }),
        ),
      ),
    removeWebhook: (workspace, id) =>
      gate.run(() =>
        db.transaction(() => {
          const removed = db.prepare('DELETE FROM webhooks WHERE id = ? AND ws = (SELECT no FROM workspaces WHERE name = ?)').run(id, workspace).changes > 0;
          if (removed) db.prepare('DELETE FROM outbox WHERE subscription = ? AND delivered_at IS NULL').run(id);
          return removed;
        }).immediate(),
      ),
    // The delivery loop polls: a read finds whether anything is due before the write lock is
    // taken, and the lock is awaited without blocking the thread (see beginImmediate).
    claimDeliveries: (now, limit, leaseMs) =>
      gate.run(() => {
        if (anyDue.get(now, now) === undefined) return [];
        return writeAwaitingLock(db, () => (claimDue.all(now + leaseMs, now, now, limit) as { seq: number }[]).map((row) => outboxItem(row.seq)));
      }),
    finishDelivery: (seq, outcome) =>
      gate.run(() =>
        writeAwaitingLock(db, () => {
          if ('deliveredAt' in outcome) db.prepare('UPDATE outbox SET delivered_at = ?, attempts = attempts + 1, claimed_until = NULL, last_error = NULL WHERE seq = ?').run(outcome.deliveredAt, seq);
          else
            db.prepare('UPDATE outbox SET attempts = attempts + 1, claimed_until = NULL, last_error = ?, next_attempt_at = COALESCE(?, next_attempt_at), dead = ? WHERE seq = ?').run(
              outcome.error.slice(0, 1000),
              outcome.nextAttemptAt,
              outcome.nextAttemptAt === null ? 1 : 0,
              seq,
            );
        }),
      ),
    deadLetters: (workspace) =>
      gate.run(() => (db.prepare('SELECT o.seq FROM outbox o JOIN workspaces w ON w.no = o.ws WHERE w.name = ? AND o.dead = 1 ORDER BY o.seq').all(workspace) as { seq: number }[]).map((row) => outboxItem(row.seq))),
    retryDelivery: (workspace, seq, now) =>
      gate.run(() => db.prepare('UPDATE outbox SET dead = 0, next_attempt_at = ?, claimed_until = NULL WHERE seq = ? AND dead = 1 AND ws = (SELECT no FROM workspaces WHERE name = ?)').run(now, seq, workspace).changes > 0),
    close: () => gate.run(() => {
      db.close();
    }),
  };
}

/** The store of the "default" workspace (or the one named) of a file, owning its connection. */
export async function openSqliteStore(path: string, options: SqliteOptions & { workspace?: string } = {}): Promise<Store> {
  const database = openSqliteDatabaseNow(path, options);
  const store = await database.workspace(options.workspace ?? DEFAULT_WORKSPACE);
  return { ...store, close: () => database.close() };
}

/** How long a writer waits for another connection's write lock before failing, as busy_timeout. */
const LOCK_WAIT_MS = 600_000;

function isBusy(error: unknown): boolean {
  return typeof (error as { code?: unknown } | null)?.code === 'string' && (error as { code: string }).code.startsWith('SQLITE_BUSY');
}

/**
 * BEGIN IMMEDIATE without blocking the thread: while another connection (the state worker, an
 * import) holds the write lock, try again after a millisecond instead of sleeping in SQLite's busy
 * handler, whose back-off (1, 2, 5, 10 ms …) both stalls every request of the event loop and
 * overshoots a lock held for a few milliseconds by up to ten more.
 */
async function beginImmediate(db: Database.Database): Promise<void> {
  const deadline = performance.now() + LOCK_WAIT_MS;
  db.pragma('busy_timeout = 0');
  try {
    for (;;) {
      try {
        db.exec('BEGIN IMMEDIATE');
        // Reads in the transaction see its snapshot, not a version read earlier in this turn.
        expireReadCaches();
        return;
      } catch (error) {
        if (!isBusy(error) || performance.now() > deadline) throw error;
      }
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
  } finally {
    db.pragma(`busy_timeout = ${LOCK_WAIT_MS}`);
  }
}

/** Runs a write in a transaction whose lock was awaited (see beginImmediate). */
async function writeAwaitingLock<T>(db: Database.Database, operation: () => T | Promise<T>): Promise<T> {
  await beginImmediate(db);
  try {
    const result = await operation();
    db.exec('COMMIT');
    return result;
  } catch (error) {
    if (db.inTransaction) db.exec('ROLLBACK');
    throw error;
  }
}

/** The asynchronous Store over the synchronous operations: through the gate, or inside a transaction that holds it. */
function asyncStore(sync: SyncStore, gate: Gate, db: Database.Database, inTransaction: boolean): Store {
  const call = <T>(operation: () => T): Promise<T> => {
    if (!inTransaction) return gate.run(operation);
    try {
      return Promise.resolve(operation());
    } catch (error) {
      return Promise.reject(error);
    }
  };
  /** A write: inside a transaction as it is, else once the write lock is had, without blocking. */
  const writing = <T>(operation: () => T): Promise<T> => (inTransaction ? call(operation) : gate.run(() => writeAwaitingLock(db, operation)));
  const batches = <T>(open: () => Iterable<T>): Batches<T> => ({
    async *[Symbol.asyncIterator]() {
      const release = inTransaction ? null : await gate.acquire();
      try {
        // Batches grow from a few rows to BATCH: a reader that stops early (the report's scan
        // in gap order) reads little, a reader of everything pays few hand-overs.
        let size = FIRST_BATCH;
        let batch: T[] = [];
        for (const row of open()) {
          batch.push(row);
          if (batch.length === size) {
            yield batch;
            batch = [];
            size = Math.min(BATCH, size * 4);
          }
        }
        if (batch.length > 0) yield batch;
      } finally {
        release?.();
      }
    },
  });
  let inside: Store | null = null;
  const store: Store = {
    kind: 'sqlite',
    path: sync.path,
    workspace: sync.workspace,
    append: (entries, samePayload) => writing(() => sync.append(entries, samePayload)),
    recordRejects: (rejects) => writing(() => sync.recordRejects(rejects)),
    subscribedTypes: () => call(() => sync.subscribedTypes()),
    readConsistently: async (read) => {
      const reader = inTransaction ? null : sync.openReader();
      if (!reader) return read(store);
      try {
        // A deferred transaction: its first read fixes the snapshot (WAL) every later read sees.
        reader.db.exec('BEGIN');
        return await read(asyncStore(reader.sync, new Gate(), reader.db, false));
      } finally {
        if (reader.db.inTransaction) reader.db.exec('COMMIT');
        reader.db.close();
      }
    },
    exclusive: (run) => {
      if (inTransaction) return run(store);
      inside ??= asyncStore(sync, gate, db, true);
      const transaction = inside;
      return gate.run(() => writeAwaitingLock(db, () => run(transaction)));
    },
    maxSeq: () => call(() => sync.maxSeq()),
    readAfter: (afterSeq) => batches(() => sync.readAfter(afterSeq)),
    readOrdered: (until) => batches(() => sync.readOrdered(until)),
    countEvents: () => call(() => sync.countEvents()),
    readEvent: (id) => call(() => sync.readEvent(id)),
    readFanEvents: (fan, limit, beforeSeq) => call(() => sync.readFanEvents(fan, limit, beforeSeq)),
    readFanDerived: (fan, limit, beforeTs) => call(() => sync.readFanDerived(fan, limit, beforeTs)),
    loadState: () => call(() => sync.loadState()),
    loadStateMeta: () => call(() => sync.loadStateMeta()),
    loadProvisional: () => call(() => sync.loadProvisional()),
    zoneOffsets: (zone) => call(() => sync.zoneOffsets(zone)),
    loadFan: (id) => call(() => sync.loadFan(id)),
    iterateFans: () => batches(() => sync.iterateFans()),
    countFans: () => call(() => sync.countFans()),
    pageFans: (query) => call(() => sync.pageFans(query)),
    pageFansBy: (query) => call(() => sync.pageFansBy(query)),
    readSnapshots: () => call(() => sync.readSnapshots()),
    findFanStates: (query) => batches(() => sync.findFanStates(query)),
    iterateByBackboneGap: (layer, activeAfter) => batches(() => sync.iterateByBackboneGap(layer, activeAfter)),
    findInactiveRecent: (activeAtOrBefore, limit) => call(() => sync.findInactiveRecent(activeAtOrBefore, limit)),
    saveState: (state) => writing(() => sync.saveState(state)),
    saveProvisional: (provisional) => writing(() => sync.saveProvisional(provisional)),
    loyaltyRank: (value, of) => call(() => sync.loyaltyRank(value, of)),
    readPostings: () => batches(() => sync.readPostings()),
    activeProgram: () => call(() => sync.activeProgram()),
    activeProgramVersion: () => call(() => sync.activeProgramVersion()),
    readPosition: () => call(() => sync.readPosition()),
    programHistory: () => call(() => sync.programHistory()),
    activateProgram: (version, yaml, spec, at) => writing(() => sync.activateProgram(version, yaml, spec, at)),
    referralEdges: () => call(() => sync.referralEdges()),
    referrerStates: (limit) => call(() => sync.referrerStates(limit)),
    findRedemption: (requestId) => call(() => sync.findRedemption(requestId)),
    saveRedemption: (record) => call(() => sync.saveRedemption(record)),
    redemptionsAfter: (seq) => call(() => sync.redemptionsAfter(seq)),
    close: async () => {},
  };
  return store;
}

/** The adapter's synchronous operations; the exported Store wraps them (see asyncStore). */
interface SyncStore {
  /** The database file, for a second connection on another thread (null when in memory). */
  readonly path: string | null;
  /** The same workspace over a connection of its own (null when in memory), for a read transaction. */
  openReader(): { sync: SyncStore; db: Database.Database } | null;
  /** The workspace this store reads and writes; no call sees another's rows. */
  readonly workspace: string;
  /**
   * Appends entries to the log durably; one status per entry, in order. An id already stored
   * with the same body, or a body that `samePayload` finds equal, is a duplicate; otherwise a conflict.
   */
  append(entries: readonly LogEntry[], samePayload: (storedBody: string, entry: LogEntry) => boolean): AppendStatus[];
  recordRejects(rejects: readonly RejectRecord[]): void;
  subscribedTypes(): ReadonlySet<WebhookEventType>;
  /** Runs `run` holding the store's write lock, atomically: one writer derives state at a time. */
  maxSeq(): number;
  /** Log entries with seq > afterSeq, in seq order. */
  readAfter(afterSeq: number): Iterable<StoredLogEvent>;
  /** The whole log (ts ≤ until when given) in (ts, id) order, streamed. */
  readOrdered(until?: number): Iterable<StoredLogEvent>;
  countEvents(): number;
  /** The stored body of one event, by id. */
  readEvent(id: string): string | null;
  readFanEvents(fan: string, limit: number, beforeSeq?: number): { seq: number; body: string }[];
  readFanDerived(fan: string, limit: number, beforeTs?: number): { type: string; ts: number; eventId: string | null; data: string }[];
  loadState(): StoredState | null;
  /** The state's position and program without loading any fan. */
  loadStateMeta(): { programVersion: string; appliedSeq: number; world: string } | null;
  /** The stored provisional snapshot (see StateWrite.provisional). */
  loadProvisional(): { month: string; data: string } | null;
  zoneOffsets(zone: string): string | null;
  loadFan(id: string): { state: string; programVersion: string; appliedSeq: number | null } | null;
  /** Every stored fan state, in fan-number order, one at a time. */
  iterateFans(): Iterable<{ id: string; state: string }>;
  /** Up to `limit` stored fans with a number above `afterNo` (and the stored level, if given), by number. */
  countFans(): number;
  pageFans(query: { afterNo: number; limit: number }): { no: number; state: string }[];
  pageFansBy(query: FanOrderQuery): { no: number; state: string; value: number | null }[];
  readSnapshots(): { month: string; data: string }[];
  /** States of fans whose stored layer is one of `layers` with activity after `activeAfter`, or at `level`. */
  findFanStates(query: { layers: string[]; activeAfter: number; level: number }): Iterable<string>;
  /** Fans of a stored layer active after the instant, by Backbone gap then interactions (most first). */
  iterateByBackboneGap(layer: string, activeAfter: number): Iterable<{ state: string; backboneGap: number; interactionsInWindow: number }>;
  /** States of followers with no activity after the instant (or stored Observation), most recently followed first. */
  findInactiveRecent(activeAtOrBefore: number, limit: number): string[];
  saveState(write: StateWrite): void;
  saveProvisional(provisional: { month: string; data: string } | null): void;
  /** How many fans have a loyalty value below `value` (fans without activity included), of how many. */
  loyaltyRank(value: number, of?: RanksOf): { below: number; total: number };
  readPostings(): Iterable<Posting>;
  activeProgram(): StoredProgram | null;
  activeProgramVersion(): string | null;
  readPosition(): StorePosition;
  /** Every program activated in this workspace, the active one first. */
  programHistory(): StoredProgram[];
  activateProgram(version: string, yaml: string, spec: string, at: string): void;
  referralEdges(): { fan: string; referrer: string }[];
  referrerStates(limit?: number): string[];
  findRedemption(requestId: string): RedemptionRecord | null;
  saveRedemption(record: RedemptionRecord): void;
  redemptionsAfter(seq: number): { fan: string; item: string; points: number }[];
  close(): void;
}

/** The fans columns a state write sets besides `state`, in FanRow's terms. */
const FAN_COLUMNS = [
  ['no', (fan: FanRow) => fan.no],
  ['level', (fan: FanRow) => fan.level],
  ['layer', (fan: FanRow) => fan.layer],
  ['loyalty', (fan: FanRow) => fan.loyaltyLog],
  ['last_activity', (fan: FanRow) => fan.lastActivity],
  ['recency', (fan: FanRow) => fan.recency],
  ['backbone_gap', (fan: FanRow) => fan.backboneGap],
  ['ix_window', (fan: FanRow) => fan.interactionsInWindow],
  ['referrer', (fan: FanRow) => fan.referrer],
  ['referrals', (fan: FanRow) => fan.referrals],
] as const;

/**
 * Writes fans' rows, setting only the columns whose values changed. SQLite rewrites every index
 * over a column an UPDATE sets, changed or not; an event usually moves three of the eight, so
 * a full upsert did about three times the index work (and dirtied as many more pages) of the
 * change itself. A row that did not change is not written at all.
 */
/**
 * Writes fans' rows: a fan without a stored row is inserted (true returned), a stored row gets the
 * columns that changed, and an unchanged row is left alone. `fresh`: the caller knows no row is stored.
 */
function fanWriter(db: Database.Database, ws: number): (fan: FanRow, programVersion: string, fresh: boolean) => boolean {
  const stored = db.prepare(`SELECT rowid, program_version, state, ${FAN_COLUMNS.map(([column]) => column).join(', ')} FROM fans WHERE ws = ? AND id = ?`).raw();
  const insert = db.prepare(
    `INSERT INTO fans (ws, id, program_version, state, ${FAN_COLUMNS.map(([column]) => column).join(', ')}) VALUES (${ws}, ?, ?, ?, ${FAN_COLUMNS.map(() => '?').join(', ')})`,
  );
  // One statement per set of changed columns (a bit per FAN_COLUMNS entry); a few are ever used.
  const updates = new Map<number, Database.Statement>();
  const update = (mask: number) => {
    let statement = updates.get(mask);
    if (!statement) {
      const columns = ['program_version', 'state', ...FAN_COLUMNS.filter((_, bit) => mask & (1 << bit)).map(([column]) => column)];
      statement = db.prepare(`UPDATE fans SET ${columns.map((column) => `${column} = ?`).join(', ')} WHERE rowid = ?`);
      updates.set(mask, statement);
    }
    return statement;
  };
  const values: unknown[] = [];
  return (fan, programVersion, fresh) => {
    const row = fresh ? undefined : (stored.get(ws, fan.id) as unknown[] | undefined);
    values.length = 0;
    if (!row) {
      values.push(fan.id, programVersion, fan.state);
      for (const [, value] of FAN_COLUMNS) values.push(value(fan));
      insert.run(values);
      return true;
    }
    const [rowid, storedVersion, storedState] = row;
    let mask = 0;
    for (let bit = 0; bit < FAN_COLUMNS.length; bit++) {
      const value = FAN_COLUMNS[bit][1](fan);
      if (value !== row[3 + bit]) {
        mask |= 1 << bit;
        values.push(value);
      }
    }
    if (mask === 0 && storedVersion === programVersion && storedState === fan.state) return false;
    update(mask).run(programVersion, fan.state, ...values, rowid);
    return false;
  };
}

function workspaceStore(db: Database.Database, path: string | null, name: string, ws: number): SyncStore {
  const cache = readCacheOf(db);
  // One statement per batch: the rows it inserted come back; the others already existed.
  const insertEvents = new Map<number, Database.Statement>();
  const insertMany = (count: number) => {
    let statement = insertEvents.get(count);
    if (!statement) {
      statement = db.prepare(`INSERT OR IGNORE INTO events (ws, id, seq, ts, body, fan) VALUES ${Array(count).fill(`(${ws}, ?, ?, ?, ?, ?)`).join(', ')} RETURNING seq`).pluck();
      insertEvents.set(count, statement);
    }
    return statement;
  };
  const bodyById = db.prepare('SELECT body FROM events WHERE ws = ? AND id = ?').pluck();
  // Named index: without statistics the planner prefers the primary key's workspace prefix (a scan
  // of the whole log) to the (ws, seq) lookup.
  const fanEvents = db.prepare(
    'SELECT f.seq, e.body FROM fan_events f JOIN events e INDEXED BY events_seq ON e.ws = f.ws AND e.seq = f.seq WHERE f.ws = ? AND f.fan = ? AND f.seq < ? ORDER BY f.seq DESC LIMIT ?',
  );
  const fanDerived = db.prepare('SELECT type, ts, event_id AS eventId, data FROM derived WHERE ws = ? AND fan = ? AND ts < ? ORDER BY seq DESC LIMIT ?');
  const insertConflict = db.prepare('INSERT INTO conflicts (ws, id, body, source, line) VALUES (?, ?, ?, ?, ?)');
  const renumber = db.prepare('UPDATE events SET seq = ? WHERE ws = ? AND id = ?');
  const insertReject = db.prepare('INSERT INTO rejects (ws, source, line, field, reason, raw) VALUES (?, ?, ?, ?, ?, ?)');
  const getState = db.prepare('SELECT value FROM state WHERE ws = ? AND key = ?').pluck();
  const putState = db.prepare('INSERT INTO state (ws, key, value) VALUES (?, ?, ?) ON CONFLICT (ws, key) DO UPDATE SET value = excluded.value');
  const state = (key: string) => getState.get(ws, key) as string | undefined;
  const readLogSeq = () => Number(state('logSeq') ?? 0);
  const subscriptions = db.prepare('SELECT id, types FROM webhooks WHERE ws = ?');
  const insertOutbox = db.prepare(`INSERT INTO outbox (ws, subscription, type, payload, created_at, next_attempt_at) VALUES (${ws}, ?, ?, ?, ?, ?)`);
  /** Writes one outbox item per notification and subscription that wants it (inside the caller's transaction). */
  const queue = (notifications: readonly Notification[]) => {
    if (notifications.length === 0) return;
    const wanted = (subscriptions.all(ws) as { id: string; types: string }[]).map((row) => ({ id: row.id, types: new Set(row.types.split(',')) }));
    if (wanted.length === 0) return;
    const now = Date.now();
    const createdAt = new Date(now).toISOString();
    for (const notification of notifications) {
      for (const subscription of wanted) {
        if (!subscription.types.has(notification.type)) continue;
        const payload = JSON.stringify({ id: randomUUID(), type: notification.type, workspace: name, createdAt, data: notification.data });
        insertOutbox.run(subscription.id, notification.type, payload, createdAt, now);
      }
    }
  };
  // With the position of the state it belongs to, read in the same statement (one snapshot).
  const fanById = db.prepare(
    `SELECT state, program_version AS programVersion, (SELECT CAST(value AS INTEGER) FROM state WHERE ws = ${ws} AND key = 'appliedSeq') AS appliedSeq FROM fans WHERE ws = ? AND id = ?`,
  );
  const activeProgramRow = db.prepare('SELECT version, yaml, spec, activated_at AS activatedAt FROM programs WHERE ws = ? ORDER BY seq DESC LIMIT 1');
  const activeVersionRow = db.prepare('SELECT version FROM programs WHERE ws = ? ORDER BY seq DESC LIMIT 1').pluck();
  const pageRows = db.prepare('SELECT no, state FROM fans WHERE ws = ? AND no > ? ORDER BY no LIMIT ?');
  const ranksRow = db.prepare('SELECT total, unranked, sorted FROM loyalty_ranks WHERE ws = ?');
  const versionRows = db.prepare(`SELECT value FROM state WHERE ws = ? AND key IN ('appliedSeq', 'programVersion') ORDER BY key`);
  const positionRows = db.prepare(`SELECT key, value FROM state WHERE ws = ? AND key IN ('world', 'programVersion', 'appliedSeq')`);

  const appendAll = db.transaction((entries: readonly LogEntry[], samePayload: (stored: string, entry: LogEntry) => boolean): AppendStatus[] => {
    // Read inside the write transaction: another process may have appended since we opened.
    let logSeq = readLogSeq();
    const statuses: AppendStatus[] = new Array(entries.length);
    for (let from = 0; from < entries.length; from += BATCH_ROWS) {
      const slice = entries.slice(from, from + BATCH_ROWS);
      const values: unknown[] = [];
      const firstSeq = logSeq + 1;
      for (const entry of slice) values.push(entry.id, ++logSeq, entry.ts, entry.body, entry.fan ?? null);
      const inserted = new Set(insertMany(slice.length).all(...values) as number[]);
      // Seqs stay dense: renumber the inserted rows when some were ignored.
      let next = firstSeq;
      slice.forEach((entry, offset) => {
        const seq = firstSeq + offset;
        if (inserted.has(seq)) {
          statuses[from + offset] = 'accepted';
          if (seq !== next) renumber.run(next, ws, entry.id);
          next++;
          return;
        }
        const stored = bodyById.get(ws, entry.id) as string;
        if (stored === entry.body || samePayload(stored, entry)) statuses[from + offset] = 'duplicate';
        else {
          statuses[from + offset] = 'conflict';
          insertConflict.run(ws, entry.id, entry.body, entry.source, entry.line);
        }
      });
      logSeq = next - 1;
    }
    putState.run(ws, 'logSeq', String(logSeq));
    return statuses;
  });

  const writeFan = fanWriter(db, ws);
  const anyFan = db.prepare('SELECT 1 FROM fans WHERE ws = ? LIMIT 1');
  // The events the write's state newly covers, in the index's order (read from the (ws, seq, fan)
  // index alone).
  const indexFanEvents = db.prepare(
    `INSERT OR IGNORE INTO fan_events (ws, fan, seq) SELECT ws, fan, seq FROM events WHERE ws = ${ws} AND seq > ? AND seq <= ? AND fan IS NOT NULL ORDER BY fan, seq`,
  );
  const countStoredFans = db.prepare('SELECT COUNT(*) FROM fans WHERE ws = ?').pluck();
  const storedFanIds = db.prepare('SELECT id FROM fans WHERE ws = ?').pluck();
  const deleteFan = db.prepare('DELETE FROM fans WHERE ws = ? AND id = ?');
  const dropFanEventsAfter = db.prepare('DELETE FROM fan_events WHERE ws = ? AND seq > ?');
  const writeState = db.transaction((write: StateWrite) => {
    const storedSeq = state('appliedSeq');
    if (write.rebuild) {
      for (const table of ['posting_blocks', 'derived', 'snapshots']) db.prepare(`DELETE FROM ${table} WHERE ws = ?`).run(ws);
      // The pairs follow from the log and the position alone: those past the new position go (the
      // missing ones up to it are added below).
      if (storedSeq === undefined) db.prepare('DELETE FROM fan_events WHERE ws = ?').run(ws);
      else dropFanEventsAfter.run(ws, write.appliedSeq);
    }
    // What does not depend on the fans first: their rows may still be coming (serialised by
    // another thread as this one writes).
    indexFanEvents.run(Math.min(Number(storedSeq ?? 0), write.appliedSeq), write.appliedSeq);
    const insertBlock = db.prepare(`INSERT INTO posting_blocks (ws, first_seq, last_seq, program_version, postings) VALUES (${ws}, ?, ?, ?, ?)`);
    for (const block of write.postingBlocks) insertBlock.run(block.firstSeq, block.lastSeq, write.programVersion, block.data);
    for (const block of encodePostingBlocks(write.postings)) insertBlock.run(block.firstSeq, block.lastSeq, write.programVersion, block.data);
    const insertDerived = db.prepare(`INSERT INTO derived (ws, type, fan, ts, event_id, data, program_version) VALUES (${ws}, ?, ?, ?, ?, ?, ?)`);
    for (const d of write.derived) insertDerived.run(d.type, d.fan, d.ts, 'eventId' in d ? d.eventId : null, JSON.stringify(d), write.programVersion);
    const upsertSnapshot = db.prepare(
      `INSERT INTO snapshots (ws, month, data, program_version) VALUES (${ws}, ?, ?, ?) ON CONFLICT (ws, month) DO UPDATE SET data = excluded.data, program_version = excluded.program_version`,
    );
    for (const snapshot of write.snapshots) upsertSnapshot.run(snapshot.month, snapshot.data, write.programVersion);
    // Fans are compared with the stored rows, a rebuild's too: a replay that verifies, or a new
    // program, rewrites only what changed (and indexes only changed columns). A workspace without
    // stored fans (a first import) has none to compare with.
    const stored = write.rebuild ? (countStoredFans.get(ws) as number) : anyFan.get(ws) === undefined ? 0 : 1;
    const written = write.rebuild ? new Set<string>() : null;
    let inserted = 0;
    for (const fan of write.fans) {
      written?.add(fan.id);
      if (writeFan(fan, write.programVersion, stored === 0)) inserted++;
    }
    // Stored fans a rebuilt state does not have (it ends earlier in the log) are removed.
    if (written && stored > written.size - inserted) for (const id of storedFanIds.all(ws) as string[]) if (!written.has(id)) deleteFan.run(ws, id);
    const loyalty =
      write.loyalty ??
      ranksOf(db.prepare('SELECT loyalty FROM fans WHERE ws = ? AND loyalty IS NOT NULL ORDER BY loyalty').pluck().all(ws) as number[], db.prepare('SELECT COUNT(*) FROM fans WHERE ws = ?').pluck().get(ws) as number);
    db.prepare('INSERT INTO loyalty_ranks (ws, total, unranked, sorted) VALUES (?, ?, ?, ?) ON CONFLICT (ws) DO UPDATE SET total = excluded.total, unranked = excluded.unranked, sorted = excluded.sorted').run(
      ws,
      loyalty.total,
      loyalty.unranked,
      encodeRanks(loyalty),
    );
    putState.run(ws, 'world', write.world);
    putState.run(ws, 'provisionalSnapshot', JSON.stringify(write.provisional));
    putState.run(ws, 'appliedSeq', String(write.appliedSeq));
    putState.run(ws, 'programVersion', write.programVersion);
    if (write.zoneOffsets) putState.run(ws, `zoneOffsets:${write.zoneOffsets.zone}`, write.zoneOffsets.text);
    queue(write.notifications ?? []);
  });

  const readStateMeta = () => {
    const rows = positionRows.all(ws) as { key: string; value: string }[];
    const value = (key: string) => rows.find((row) => row.key === key)?.value;
    const world = value('world');
    if (world === undefined) return null;
    return { world, programVersion: value('programVersion') as string, appliedSeq: Number(value('appliedSeq')) };
  };
  const readActiveVersion = () => (activeVersionRow.get(ws) as string | undefined) ?? null;
  // The position a server checks before every read, in one read transaction.
  const readPosition = db.transaction((): StorePosition => ({ activeProgramVersion: readActiveVersion(), meta: readStateMeta(), maxSeq: readLogSeq() }));

  // The sorted loyalty values, read once per state version (the state's log position).
  let ranks: { version: string; ranks: LoyaltyRanks } | null = null;
  const loyaltyRanks = (of?: RanksOf): LoyaltyRanks | null => {
    if (of && ranks?.version === ranksVersion(of.appliedSeq, of.programVersion)) return ranks.ranks;
    const version = cache.get(`${ws}:stateVersion`, () => {
      const [appliedSeq, programVersion] = (versionRows.all(ws) as { value: string }[]).map((row) => row.value);
      return ranksVersion(appliedSeq, programVersion);
    });
    if (ranks?.version === version) return ranks.ranks;
    const row = ranksRow.get(ws) as { total: number; unranked: number; sorted: Buffer } | undefined;
    if (!row) return null;
    ranks = { version, ranks: decodeRanks(row.total, row.unranked, row.sorted) };
    return ranks.ranks;
  };

  return {
    path,
    workspace: name,
    openReader: () => {
      if (path === null) return null;
      const reader = connect(path, { readonly: true });
      reader.pragma('busy_timeout = 600000');
      return { sync: workspaceStore(reader, path, name, ws), db: reader };
    },
    // Immediate: the write lock is taken at the start (no upgrade from a read lock to fail).
    append: (entries, samePayload) => (db.inTransaction ? appendAll(entries, samePayload) : appendAll.immediate(entries, samePayload)),
    recordRejects: db.transaction((rejects: readonly RejectRecord[]) => {
      for (const r of rejects) insertReject.run(ws, r.source, r.line, r.field, r.reason, r.raw);
      queue(rejects.map((r) => ({ type: 'event.rejected', data: { source: r.source, line: r.line, field: r.field, reason: r.reason, raw: r.raw } })));
    }),
    subscribedTypes: () => new Set((subscriptions.all(ws) as { types: string }[]).flatMap((row) => row.types.split(',') as WebhookEventType[])),
    maxSeq: () => cache.get(`${ws}:logSeq`, readLogSeq),
    // Both reads scan the log: they serve crash recovery and replays, not the hot path.
    readAfter: (afterSeq) => db.prepare('SELECT seq, body FROM events WHERE ws = ? AND seq > ? ORDER BY seq').iterate(ws, afterSeq) as Iterable<StoredLogEvent>,
    // SQLite sorts with bounded memory (spilling to temporary files), BINARY collation orders ids
    // by UTF-8 bytes, which is code point order: the log order, streamed.
    readOrdered: (until) =>
      (until === undefined
        ? db.prepare('SELECT seq, body FROM events WHERE ws = ? ORDER BY ts, id').iterate(ws)
        : db.prepare('SELECT seq, body FROM events WHERE ws = ? AND ts <= ? ORDER BY ts, id').iterate(ws, until)) as Iterable<StoredLogEvent>,
    readEvent: (id) => (bodyById.get(ws, id) as string | undefined) ?? null,
    readFanEvents: (fan, limit, beforeSeq) => fanEvents.all(ws, fan, beforeSeq ?? Number.MAX_SAFE_INTEGER, limit) as { seq: number; body: string }[],
    readFanDerived: (fan, limit, beforeTs) => fanDerived.all(ws, fan, beforeTs ?? Number.MAX_VALUE, limit) as { type: string; ts: number; eventId: string | null; data: string }[],
    countEvents: () => db.prepare('SELECT COUNT(*) FROM events WHERE ws = ?').pluck().get(ws) as number,
    loadState: (): StoredState | null => {
      const world = state('world');
      if (world === undefined) return null;
      return {
        world,
        programVersion: state('programVersion') as string,
        appliedSeq: Number(state('appliedSeq')),
        fans: db.prepare('SELECT id, state FROM fans WHERE ws = ? ORDER BY no').all(ws) as { id: string; state: string }[],
        snapshots: db.prepare('SELECT month, data FROM snapshots WHERE ws = ? ORDER BY month').all(ws) as { month: string; data: string }[],
      };
    },
    iterateFans: () => db.prepare('SELECT id, state FROM fans WHERE ws = ? ORDER BY no').iterate(ws) as Iterable<{ id: string; state: string }>,
    countFans: () => db.prepare('SELECT COUNT(*) FROM fans WHERE ws = ?').pluck().get(ws) as number,
    pageFans: (query) => {
      return pageRows.all(ws, query.afterNo, query.limit) as { no: number; state: string }[];
    },
    pageFansBy: (query) => {
      const column = query.sort === 'level' ? 'level' : 'loyalty';
      const [op, dir] = query.descending ? ['<', 'DESC'] : ['>', 'ASC'];
      type Row = { no: number; state: string; value: number | null };
      const rows: Row[] = [];
      // Fans with a value first (a row-value comparison walks the index), then those without.
      if (!query.after || query.after.value !== null) {
        const position = query.after ? `AND (${column}, no) ${op} (?, ?)` : `AND ${column} IS NOT NULL`;
        const statement = db.prepare(`SELECT no, state, ${column} AS value FROM fans WHERE ws = ? ${position} ORDER BY ${column} ${dir}, no ${dir} LIMIT ?`);
        rows.push(...((query.after ? statement.all(ws, query.after.value, query.after.no, query.limit) : statement.all(ws, query.limit)) as Row[]));
      }
      if (rows.length < query.limit) {
        const afterNo = query.after?.value === null ? `AND no ${op} ${Number(query.after.no)}` : '';
        rows.push(...(db.prepare(`SELECT no, state, NULL AS value FROM fans WHERE ws = ? AND ${column} IS NULL ${afterNo} ORDER BY no ${dir} LIMIT ?`).all(ws, query.limit - rows.length) as Row[]));
      }
      return rows;
    },
    readSnapshots: () => db.prepare('SELECT month, data FROM snapshots WHERE ws = ? ORDER BY month').all(ws) as { month: string; data: string }[],
    findFanStates: (query) => {
      const layers = query.layers.map((layer) => `'${layer.replace(/[^A-Z]/g, '')}'`).join(', ');
      // A UNION lets each branch use its index (an OR would scan the table); it is a union of row
      // ids, since deduplicating whole states would sort every state's text. Every index holds the
      // row id, so both branches read their index alone; a union of fan numbers made SQLite walk
      // every fan in number order and read last_activity, which lies after the state in the row.
      const sql = `SELECT state FROM fans WHERE rowid IN (SELECT rowid FROM fans WHERE ws = ? AND layer IN (${layers}) AND last_activity > ? UNION SELECT rowid FROM fans WHERE ws = ? AND level = ?)`;
      return db.prepare(sql).pluck().iterate(ws, query.activeAfter, ws, query.level) as Iterable<string>;
    },
    // `+last_activity` keeps SQLite on the gap index (rows come in gap order, sorted only within
    // a gap) instead of the activity index, which would sort every active fan's state first.
    iterateByBackboneGap: (layer, activeAfter) =>
      db
        .prepare('SELECT state, backbone_gap AS backboneGap, ix_window AS interactionsInWindow FROM fans WHERE ws = ? AND layer = ? AND +last_activity > ? ORDER BY backbone_gap, ix_window DESC')
        .iterate(ws, layer, activeAfter) as Iterable<{ state: string; backboneGap: number; interactionsInWindow: number }>,
    findInactiveRecent: (activeAtOrBefore, limit) =>
      db
        .prepare(`SELECT state FROM fans WHERE ws = ? AND layer <> 'U' AND (layer = 'O' OR last_activity IS NULL OR last_activity <= ?) ORDER BY recency DESC, no LIMIT ?`)
        .pluck()
        .all(ws, activeAtOrBefore, limit) as string[],
    readPosition: () => cache.get(`${ws}:position`, () => readPosition()),
    loadStateMeta: () => cache.get(`${ws}:stateMeta`, readStateMeta),
    loadProvisional: () => JSON.parse(state('provisionalSnapshot') ?? 'null') as { month: string; data: string } | null,
    zoneOffsets: (zone) => state(`zoneOffsets:${zone}`) ?? null,
    loadFan: (id) => {
      const row = fanById.get(ws, id) as { state: string; programVersion: string; appliedSeq: number | null } | undefined;
      return row ?? null;
    },
    saveState: (write) => writeState(write),
    saveProvisional: (provisional) => {
      putState.run(ws, 'provisionalSnapshot', JSON.stringify(provisional));
    },
    loyaltyRank: (value, of) => {
      const ranks = loyaltyRanks(of);
      return ranks ? rankOf(ranks, value) : { below: 0, total: 0 };
    },
    readPostings: function* () {
      const blocks = db.prepare('SELECT program_version AS programVersion, postings FROM posting_blocks WHERE ws = ? ORDER BY first_seq').iterate(ws) as Iterable<{ programVersion: string; postings: string }>;
      for (const block of blocks) {
        yield* decodePostings(block.postings, block.programVersion);
      }
    },
    activeProgram: () =>
      (activeProgramRow.get(ws) as StoredProgram | undefined) ?? null,
    activeProgramVersion: () => cache.get(`${ws}:activeProgramVersion`, readActiveVersion),
    programHistory: () => db.prepare('SELECT version, yaml, spec, activated_at AS activatedAt FROM programs WHERE ws = ? ORDER BY seq DESC').all(ws) as StoredProgram[],
    activateProgram: (version, yaml, spec, at) => {
      const next = db.prepare('SELECT COALESCE(MAX(seq), 0) + 1 FROM programs WHERE ws = ?').pluck().get(ws) as number;
      db.prepare(
        'INSERT INTO programs (ws, version, yaml, spec, activated_at, seq) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (ws, version) DO UPDATE SET activated_at = excluded.activated_at, seq = excluded.seq, spec = excluded.spec',
      ).run(ws, version, yaml, spec, at, next);
    },
    referralEdges: () => db.prepare('SELECT id AS fan, referrer FROM fans WHERE ws = ? AND referrer IS NOT NULL').all(ws) as { fan: string; referrer: string }[],
    referrerStates: (limit) =>
      db.prepare('SELECT state FROM fans WHERE ws = ? AND referrals > 0 ORDER BY referrals DESC, no LIMIT ?').pluck().all(ws, limit ?? -1) as string[],
    findRedemption: (requestId) =>
      (db.prepare('SELECT request_id AS requestId, fan, item, points, seq, outcome, created_at AS createdAt FROM redemptions WHERE ws = ? AND request_id = ?').get(ws, requestId) as RedemptionRecord | undefined) ?? null,
    saveRedemption: (r) => {
      db.prepare('INSERT INTO redemptions (ws, request_id, fan, item, points, seq, outcome, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)').run(ws, r.requestId, r.fan, r.item, r.points, r.seq, r.outcome, r.createdAt);
    },
    redemptionsAfter: (seq) => db.prepare('SELECT fan, item, points FROM redemptions WHERE ws = ? AND seq > ? ORDER BY seq').all(ws, seq) as { fan: string; item: string; points: number }[],
    close: () => {},
  };
}

/**
 * Brings the schema up to date, one migration per transaction. The version is read inside the
 * write lock, so two processes opening a new file at once migrate it once.
 */
function migrate(db: Database.Database): void {
  const step = db.transaction((): boolean => {
    const version = db.pragma('user_version', { simple: true }) as number;
    if (version >= MIGRATIONS.length) return false;
    db.exec(MIGRATIONS[version]);
    db.pragma(`user_version = ${version + 1}`);
    return true;
  });
  while (step.immediate());
}
