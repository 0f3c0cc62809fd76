/**
 * Small values a SQLite connection reads on nearly every request (the log position, the stored
 * state's position and program, the active program version, API keys), kept between reads while
 * the file is unchanged.
 *
 * Changed how, and seen when:
 * - by a connection of this thread: at once. Every read compares the sum of this thread's
 *   connections' `total_changes()`, which takes no lock.
 * - by another thread or process: at the first read of the next turn of the event loop, or earlier
 *   where that thread says so (`expireReadCaches`: the server calls it on every answer of its state
 *   worker). The file's `PRAGMA data_version` is read once per turn: it takes SQLite's read locks,
 *   system calls that cost 10–20 µs under load on a virtualised kernel, where a request asked for
 *   it three times (key, position, fan).
 * A hit saves the read itself, which for the state's position carries the world's meta (tens of
 * kilobytes).
 */
import type Database from 'better-sqlite3';

const MAX_VALUES = 1000;

// This thread's open connections, whose changes a read compares (see above).
const connections = new Map<Database.Database, Database.Statement>();
// Bumped at the end of every turn that read a file's version, and by expireReadCaches.
let epoch = 0;
let turnEndScheduled = false;

function endTurnLater(): void {
  if (turnEndScheduled) return;
  turnEndScheduled = true;
  setImmediate(() => {
    turnEndScheduled = false;
    epoch++;
  });
}

/** Makes every read cache of this thread read its file's version again at its next read. */
export function expireReadCaches(): void {
  epoch++;
}

function threadChanges(): number {
  let sum = 0;
  for (const [db, changes] of connections) {
    if (db.open) sum += changes.get() as number;
    else connections.delete(db);
  }
  return sum;
}

export class ReadCache {
  private readonly versionRow: Database.Statement;
  private version = -1;
  private versionEpoch = -1;
  private changes = -1;
  private readonly values = new Map<string, unknown>();

  constructor(db: Database.Database) {
    this.versionRow = db.prepare('PRAGMA data_version').pluck();
    connections.set(db, db.prepare('SELECT total_changes()').pluck());
  }

  /**
   * The value under `key`: the one read before if the file has not changed since, else `read()`'s.
   * Values are frozen, nested values too: every caller gets the same object.
   */
  get<T>(key: string, read: () => T): T {
    let changed = false;
    if (this.versionEpoch !== epoch) {
      const version = this.versionRow.get() as number;
      this.versionEpoch = epoch;
      endTurnLater();
      if (version !== this.version) {
        this.version = version;
        changed = true;
      }
    }
    const changes = threadChanges();
    if (changes !== this.changes) {
      this.changes = changes;
      changed = true;
    }
    if (changed) this.values.clear();
    else if (this.values.has(key)) return this.values.get(key) as T;
    const value = read();
    // Keys looked up by id (unknown ones too) must not grow it without bound.
    if (this.values.size >= MAX_VALUES) this.values.clear();
    this.values.set(key, deepFreeze(value));
    return value;
  }
}

/** Freezes a plain value and everything in it. */
function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const inner of Object.values(value)) deepFreeze(inner);
  }
  return value;
}

const caches = new WeakMap<Database.Database, ReadCache>();

/** The read cache of a connection (one per connection: the stamp is the connection's). */
export function readCacheOf(db: Database.Database): ReadCache {
  let cache = caches.get(db);
  if (!cache) {
    cache = new ReadCache(db);
    caches.set(db, cache);
  }
  return cache;
}
