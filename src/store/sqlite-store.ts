/**
 * The embedded store: one SQLite file (better-sqlite3), WAL with synchronous=FULL so that every
 * acknowledged append survives a crash or power loss.
 */
import Database from 'better-sqlite3';
import { decodePostings, encodePostingBlocks } from './posting-codec.js';
import type { AppendStatus, LogEntry, RejectRecord, StateWrite, Store, StoredLogEvent, StoredProgram, StoredState } from './store.js';

// The log is keyed by event id (WITHOUT ROWID): the id check and the append are one B-tree,
// with no secondary index on the hot path. Postings are stored in blocks of consecutive seqs.
const MIGRATIONS: readonly string[] = [
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
];

const BATCH_ROWS = 200;

export interface SqliteOptions {
  /** Page cache of this connection in KiB (default 128 MiB); an append-only connection needs little. */
  cacheKiB?: number;
}

export function openSqliteStore(path: string, options: SqliteOptions = {}): Store {
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  // Writers queue behind the one holding the write lock (a long rebuild holds it for a while).
  db.pragma('busy_timeout = 600000');
  db.pragma(`cache_size = -${Math.max(1024, Math.floor(options.cacheKiB ?? 131072))}`);
  migrate(db);

  // One statement per batch: the rows it inserted come back; the others already existed.
  const insertEvents = new Map<number, Database.Statement>();
  const insertMany = (count: number) => {
    let statement = insertEvents.get(count);
    if (!statement) {
      statement = db.prepare(`INSERT OR IGNORE INTO events (id, seq, ts, body) VALUES ${Array(count).fill('(?, ?, ?, ?)').join(', ')} RETURNING seq`).pluck();
      insertEvents.set(count, statement);
    }
    return statement;
  };
  const bodyById = db.prepare('SELECT body FROM events WHERE id = ?').pluck();
  const insertConflict = db.prepare('INSERT INTO conflicts (id, body, source, line) VALUES (?, ?, ?, ?)');
  const renumber = db.prepare('UPDATE events SET seq = ? WHERE id = ?');
  const insertReject = db.prepare('INSERT INTO rejects (source, line, field, reason, raw) VALUES (?, ?, ?, ?, ?)');
  const getState = db.prepare('SELECT value FROM state WHERE key = ?').pluck();
  const putState = db.prepare('INSERT INTO state (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value');
  const readLogSeq = () => Number(getState.get('logSeq') ?? 0);

  const appendAll = db.transaction((entries: readonly LogEntry[], samePayload: (stored: string, entry: LogEntry) => boolean): AppendStatus[] => {
    // Read inside the write transaction: another process may have appended since we opened.
    let logSeq = readLogSeq();
    const statuses: AppendStatus[] = new Array(entries.length);
    for (let from = 0; from < entries.length; from += BATCH_ROWS) {
      const slice = entries.slice(from, from + BATCH_ROWS);
      const values: unknown[] = [];
      const firstSeq = logSeq + 1;
      for (const entry of slice) values.push(entry.id, ++logSeq, entry.ts, entry.body);
      const inserted = new Set(insertMany(slice.length).all(...values) as number[]);
      // Seqs stay dense: renumber the inserted rows when some were ignored.
      let next = firstSeq;
      slice.forEach((entry, offset) => {
        const seq = firstSeq + offset;
        if (inserted.has(seq)) {
          statuses[from + offset] = 'accepted';
          if (seq !== next) renumber.run(next, entry.id);
          next++;
          return;
        }
        const stored = bodyById.get(entry.id) as string;
        if (stored === entry.body || samePayload(stored, entry)) statuses[from + offset] = 'duplicate';
        else {
          statuses[from + offset] = 'conflict';
          insertConflict.run(entry.id, entry.body, entry.source, entry.line);
        }
      });
      logSeq = next - 1;
    }
    putState.run('logSeq', String(logSeq));
    return statuses;
  });

  const writeState = db.transaction((write: StateWrite) => {
    if (write.rebuild) {
      db.exec('DELETE FROM fans; DELETE FROM posting_blocks; DELETE FROM derived; DELETE FROM snapshots;');
    }
    const upsertFan = db.prepare(
      `INSERT INTO fans (id, no, level, layer, loyalty, state, program_version, last_activity, recency, backbone_gap, ix_window) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (id) DO UPDATE SET no = excluded.no, level = excluded.level, layer = excluded.layer,
         loyalty = excluded.loyalty, state = excluded.state, program_version = excluded.program_version,
         last_activity = excluded.last_activity, recency = excluded.recency,
         backbone_gap = excluded.backbone_gap, ix_window = excluded.ix_window`,
    );
    for (const fan of write.fans) {
      upsertFan.run(fan.id, fan.no, fan.level, fan.layer, fan.loyaltyLog, fan.state, write.programVersion, fan.lastActivity, fan.recency, fan.backboneGap, fan.interactionsInWindow);
    }
    const insertBlock = db.prepare('INSERT INTO posting_blocks (first_seq, last_seq, program_version, postings) VALUES (?, ?, ?, ?)');
    for (const block of [...write.postingBlocks, ...encodePostingBlocks(write.postings)]) insertBlock.run(block.firstSeq, block.lastSeq, write.programVersion, block.data);
    const insertDerived = db.prepare('INSERT INTO derived (type, fan, ts, event_id, data, program_version) VALUES (?, ?, ?, ?, ?, ?)');
    for (const d of write.derived) insertDerived.run(d.type, d.fan, d.ts, 'eventId' in d ? d.eventId : null, JSON.stringify(d), write.programVersion);
    const upsertSnapshot = db.prepare(
      'INSERT INTO snapshots (month, data, program_version) VALUES (?, ?, ?) ON CONFLICT (month) DO UPDATE SET data = excluded.data, program_version = excluded.program_version',
    );
    for (const snapshot of write.snapshots) upsertSnapshot.run(snapshot.month, snapshot.data, write.programVersion);
    const values = db.prepare('SELECT loyalty FROM fans WHERE loyalty IS NOT NULL ORDER BY loyalty').pluck().all() as number[];
    const total = db.prepare('SELECT COUNT(*) FROM fans').pluck().get() as number;
    db.prepare('INSERT INTO loyalty_ranks (id, total, unranked, sorted) VALUES (1, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET total = excluded.total, unranked = excluded.unranked, sorted = excluded.sorted').run(
      total,
      total - values.length,
      Buffer.from(Float64Array.from(values).buffer),
    );
    putState.run('world', write.world);
    putState.run('provisionalSnapshot', JSON.stringify(write.provisional));
    putState.run('appliedSeq', String(write.appliedSeq));
    putState.run('programVersion', write.programVersion);
  });

  return {
    kind: 'sqlite',
    path: path === ':memory:' || path === '' ? null : path,
    append: (entries, samePayload) => appendAll.immediate(entries, samePayload),
    exclusive: <T>(run: () => T): T => db.transaction(run).immediate(),
    recordRejects: db.transaction((rejects: readonly RejectRecord[]) => {
      for (const r of rejects) insertReject.run(r.source, r.line, r.field, r.reason, r.raw);
    }),
    maxSeq: () => readLogSeq(),
    // Both reads scan the log: they serve crash recovery and replays, not the hot path.
    readAfter: (afterSeq) => db.prepare('SELECT seq, body FROM events WHERE seq > ? ORDER BY seq').iterate(afterSeq) as Iterable<StoredLogEvent>,
    // SQLite sorts with bounded memory (spilling to temporary files), BINARY collation orders ids
    // by UTF-8 bytes, which is code point order: the log order, streamed.
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
    iterateFans: () => db.prepare('SELECT id, state FROM fans ORDER BY no').iterate() as Iterable<{ id: string; state: string }>,
    readSnapshots: () => db.prepare('SELECT month, data FROM snapshots ORDER BY month').all() as { month: string; data: string }[],
    findFanStates: (query) => {
      const layers = query.layers.map((layer) => `'${layer.replace(/[^A-Z]/g, '')}'`).join(', ');
      // A UNION lets each branch use its index (an OR would scan the table).
      const sql = `SELECT state FROM fans WHERE layer IN (${layers}) AND last_activity > ? UNION SELECT state FROM fans WHERE level = ?`;
      return db.prepare(sql).pluck().all(query.activeAfter, query.level) as string[];
    },
    iterateByBackboneGap: (layer, activeAfter) =>
      db
        .prepare('SELECT state, backbone_gap AS backboneGap, ix_window AS interactionsInWindow FROM fans WHERE layer = ? AND last_activity > ? ORDER BY backbone_gap, ix_window DESC')
        .iterate(layer, activeAfter) as Iterable<{ state: string; backboneGap: number; interactionsInWindow: number }>,
    findInactiveRecent: (activeAtOrBefore, limit) =>
      db
        .prepare(`SELECT state FROM fans WHERE layer <> 'U' AND (layer = 'O' OR last_activity IS NULL OR last_activity <= ?) ORDER BY recency DESC, no LIMIT ?`)
        .pluck()
        .all(activeAtOrBefore, limit) as string[],
    loadStateMeta: () => {
      const world = getState.get('world') as string | undefined;
      if (world === undefined) return null;
      const provisional = JSON.parse((getState.get('provisionalSnapshot') as string | undefined) ?? 'null') as { month: string; data: string } | null;
      return { world, programVersion: getState.get('programVersion') as string, appliedSeq: Number(getState.get('appliedSeq')), provisional };
    },
    loadFan: (id) => {
      const row = db.prepare('SELECT state, program_version AS programVersion FROM fans WHERE id = ?').get(id) as { state: string; programVersion: string } | undefined;
      return row ?? null;
    },
    saveState: (write) => writeState(write),
    loyaltyRank: (value) => {
      const row = db.prepare('SELECT total, unranked, sorted FROM loyalty_ranks WHERE id = 1').get() as { total: number; unranked: number; sorted: Buffer } | undefined;
      if (!row) return { below: 0, total: 0 };
      // Copied: the blob's bytes may not be 8-byte aligned inside its buffer.
      const sorted = new Float64Array(row.sorted.buffer.slice(row.sorted.byteOffset, row.sorted.byteOffset + row.sorted.byteLength));
      let low = 0;
      let high = sorted.length;
      while (low < high) {
        const mid = (low + high) >>> 1;
        if (sorted[mid] < value) low = mid + 1;
        else high = mid;
      }
      // Fans without activity rank below every active fan.
      return { below: row.unranked + low, total: row.total };
    },
    readPostings: function* () {
      const blocks = db.prepare('SELECT program_version AS programVersion, postings FROM posting_blocks ORDER BY first_seq').iterate() as Iterable<{ programVersion: string; postings: string }>;
      for (const block of blocks) {
        yield* decodePostings(block.postings, block.programVersion);
      }
    },
    activeProgram: () =>
      (db.prepare('SELECT version, yaml, spec, activated_at AS activatedAt FROM programs ORDER BY seq DESC LIMIT 1').get() as StoredProgram | undefined) ?? null,
    activateProgram: (version, yaml, spec, at) => {
      const next = (db.prepare('SELECT COALESCE(MAX(seq), 0) + 1 FROM programs').pluck().get() as number);
      db.prepare(
        'INSERT INTO programs (version, yaml, spec, activated_at, seq) VALUES (?, ?, ?, ?, ?) ON CONFLICT (version) DO UPDATE SET activated_at = excluded.activated_at, seq = excluded.seq, spec = excluded.spec',
      ).run(version, yaml, spec, at, next);
    },
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
