/**
 * The embedded store: one SQLite file (better-sqlite3), WAL with synchronous=FULL so that every
 * acknowledged append survives a crash or power loss.
 */
import Database from 'better-sqlite3';
import type { DerivedEvent } from '../core/engine.js';
import type { Posting } from '../core/state.js';
import type { AppendStatus, LogEntry, RejectRecord, StateWrite, Store, StoredLogEvent, StoredProgram, StoredState } from './store.js';

const MIGRATIONS: readonly string[] = [
  `CREATE TABLE events (
     seq INTEGER PRIMARY KEY,
     id TEXT NOT NULL UNIQUE,
     ts REAL NOT NULL,
     fan TEXT,
     type TEXT NOT NULL,
     body TEXT NOT NULL,
     source TEXT,
     line INTEGER
   );
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
   CREATE TABLE postings (
     seq INTEGER PRIMARY KEY,
     event_id TEXT NOT NULL,
     ts REAL NOT NULL,
     asset TEXT NOT NULL,
     source TEXT NOT NULL,
     target TEXT NOT NULL,
     amount INTEGER NOT NULL CHECK (amount > 0),
     rule TEXT NOT NULL,
     fan TEXT NOT NULL,
     program_version TEXT NOT NULL
   );
   CREATE TABLE derived (seq INTEGER PRIMARY KEY, type TEXT NOT NULL, fan TEXT, ts REAL NOT NULL, event_id TEXT, data TEXT NOT NULL, program_version TEXT NOT NULL);
   CREATE INDEX derived_fan ON derived (fan, seq);
   CREATE TABLE snapshots (month TEXT PRIMARY KEY, data TEXT NOT NULL, program_version TEXT NOT NULL);
   CREATE TABLE state (key TEXT PRIMARY KEY, value TEXT NOT NULL);`,
];

export function openSqliteStore(path: string): Store {
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.pragma('busy_timeout = 10000');
  db.pragma('cache_size = -131072');
  migrate(db);

  const insertEvent = db.prepare('INSERT OR IGNORE INTO events (id, ts, fan, type, body, source, line) VALUES (?, ?, ?, ?, ?, ?, ?)');
  const bodyById = db.prepare('SELECT body FROM events WHERE id = ?').pluck();
  const insertConflict = db.prepare('INSERT INTO conflicts (id, body, source, line) VALUES (?, ?, ?, ?)');
  const insertReject = db.prepare('INSERT INTO rejects (source, line, field, reason, raw) VALUES (?, ?, ?, ?, ?)');
  const getState = db.prepare('SELECT value FROM state WHERE key = ?').pluck();
  const putState = db.prepare('INSERT INTO state (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value');

  const appendAll = db.transaction((entries: readonly LogEntry[]): AppendStatus[] => {
    const statuses: AppendStatus[] = new Array(entries.length);
    for (let i = 0; i < entries.length; i++) {
      const entry = entries[i];
      const result = insertEvent.run(entry.id, entry.ts, entry.fan, entry.type, entry.body, entry.source, entry.line);
      if (result.changes === 1) {
        statuses[i] = 'accepted';
        continue;
      }
      if (bodyById.get(entry.id) === entry.body) statuses[i] = 'duplicate';
      else {
        statuses[i] = 'conflict';
        insertConflict.run(entry.id, entry.body, entry.source, entry.line);
      }
    }
    return statuses;
  });

  const writeState = db.transaction((write: StateWrite) => {
    if (write.rebuild) {
      db.exec('DELETE FROM fans; DELETE FROM postings; DELETE FROM derived; DELETE FROM snapshots;');
    }
    const upsertFan = db.prepare(
      `INSERT INTO fans (id, no, level, layer, loyalty, state, program_version) VALUES (?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (id) DO UPDATE SET no = excluded.no, level = excluded.level, layer = excluded.layer,
         loyalty = excluded.loyalty, state = excluded.state, program_version = excluded.program_version`,
    );
    for (const fan of write.fans) upsertFan.run(fan.id, fan.no, fan.level, fan.layer, fan.loyaltyLog, fan.state, write.programVersion);
    const insertPosting = db.prepare(
      'INSERT INTO postings (seq, event_id, ts, asset, source, target, amount, rule, fan, program_version) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
    );
    for (const p of write.postings) insertPosting.run(p.seq, p.eventId, p.ts, p.asset, p.source, p.target, p.amount, p.rule, p.fan, p.programVersion);
    const insertDerived = db.prepare('INSERT INTO derived (type, fan, ts, event_id, data, program_version) VALUES (?, ?, ?, ?, ?, ?)');
    for (const d of write.derived) insertDerived.run(d.type, d.fan, d.ts, 'eventId' in d ? d.eventId : null, JSON.stringify(d), write.programVersion);
    const upsertSnapshot = db.prepare(
      'INSERT INTO snapshots (month, data, program_version) VALUES (?, ?, ?) ON CONFLICT (month) DO UPDATE SET data = excluded.data, program_version = excluded.program_version',
    );
    for (const snapshot of write.snapshots) upsertSnapshot.run(snapshot.month, snapshot.data, write.programVersion);
    putState.run('world', write.world);
    putState.run('appliedSeq', String(write.appliedSeq));
    putState.run('programVersion', write.programVersion);
  });

  return {
    kind: 'sqlite',
    append: (entries) => appendAll(entries),
    recordRejects: db.transaction((rejects: readonly RejectRecord[]) => {
      for (const r of rejects) insertReject.run(r.source, r.line, r.field, r.reason, r.raw);
    }),
    maxSeq: () => (db.prepare('SELECT COALESCE(MAX(seq), 0) FROM events').pluck().get() as number),
    readAfter: (afterSeq) => db.prepare('SELECT seq, body FROM events WHERE seq > ? ORDER BY seq').iterate(afterSeq) as Iterable<StoredLogEvent>,
    readOrdered: (until) =>
      (until === undefined
        ? db.prepare('SELECT seq, body FROM events ORDER BY ts, id').iterate()
        : db.prepare('SELECT seq, body FROM events WHERE ts <= ? ORDER BY ts, id').iterate(until)) as Iterable<StoredLogEvent>,
    countEvents: () => db.prepare('SELECT COUNT(*) FROM events').pluck().get() as number,
    loadState: (): StoredState | null => {
      const world = getState.get('world') as string | undefined;
      if (world === undefined) return null;
      return {
        world,
        programVersion: getState.get('programVersion') as string,
        appliedSeq: Number(getState.get('appliedSeq')),
        fans: db.prepare('SELECT id, state FROM fans ORDER BY no').all() as { id: string; state: string }[],
        snapshots: db.prepare('SELECT month, data FROM snapshots ORDER BY month').all() as { month: string; data: string }[],
      };
    },
    loadFan: (id) => {
      const row = db.prepare('SELECT state, program_version AS programVersion FROM fans WHERE id = ?').get(id) as { state: string; programVersion: string } | undefined;
      return row ?? null;
    },
    saveState: (write) => writeState(write),
    loyaltyRank: (value) => {
      const below = db.prepare('SELECT COUNT(*) FROM fans WHERE loyalty IS NOT NULL AND loyalty < ?').pluck().get(value) as number;
      const total = db.prepare('SELECT COUNT(*) FROM fans').pluck().get() as number;
      return { below, total };
    },
    readPostings: () => {
      const rows = db
        .prepare('SELECT seq, event_id AS eventId, ts, asset, source, target, amount, rule, fan, program_version AS programVersion FROM postings ORDER BY seq')
        .iterate() as Iterable<Posting>;
      return rows;
    },
    readDerived: (fan, limit) =>
      (db.prepare('SELECT data FROM derived WHERE fan = ? ORDER BY seq DESC LIMIT ?').pluck().all(fan, limit) as string[]).map(
        (data) => JSON.parse(data) as DerivedEvent,
      ),
    activeProgram: () =>
      (db.prepare('SELECT version, yaml, activated_at AS activatedAt FROM programs ORDER BY seq DESC LIMIT 1').get() as StoredProgram | undefined) ?? null,
    activateProgram: (version, yaml, at) => {
      const next = (db.prepare('SELECT COALESCE(MAX(seq), 0) + 1 FROM programs').pluck().get() as number);
      db.prepare(
        'INSERT INTO programs (version, yaml, activated_at, seq) VALUES (?, ?, ?, ?) ON CONFLICT (version) DO UPDATE SET activated_at = excluded.activated_at, seq = excluded.seq',
      ).run(version, yaml, at, next);
    },
    programHistory: () => db.prepare('SELECT version, yaml, activated_at AS activatedAt FROM programs ORDER BY seq DESC').all() as StoredProgram[],
    close: () => db.close(),
  };
}

function migrate(db: Database.Database): void {
  const current = db.pragma('user_version', { simple: true }) as number;
  for (let version = current; version < MIGRATIONS.length; version++) {
    db.transaction(() => {
      db.exec(MIGRATIONS[version]);
      db.pragma(`user_version = ${version + 1}`);
    })();
  }
}
