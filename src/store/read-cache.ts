/**
 * Small values a SQLite connection reads on nearly every request (the log position, the stored
 * state's position and program, the active program version, API keys), kept between reads while
 * the file is unchanged: no other connection has committed since (PRAGMA data_version) and this
 * one has changed no row (total_changes()). One statement checks both, at the cost of the
 * cheapest read; a hit then saves the read itself, which for the state's position carries the
 * world's meta (tens of kilobytes).
 */
import type Database from 'better-sqlite3';

const MAX_VALUES = 1000;

export class ReadCache {
  private readonly stampRow: Database.Statement;
  private stamp = '';
  private readonly values = new Map<string, unknown>();

  constructor(db: Database.Database) {
    this.stampRow = db.prepare('SELECT (SELECT data_version FROM pragma_data_version), total_changes()').raw();
  }

  /**
   * The value under `key`: the one read before if the file has not changed since, else `read()`'s.
   * Values are frozen, nested values too: every caller gets the same object.
   */
  get<T>(key: string, read: () => T): T {
    const [version, changes] = this.stampRow.get() as [number, number];
    const stamp = `${version}:${changes}`;
    if (stamp !== this.stamp) {
      this.values.clear();
      this.stamp = stamp;
    } else if (this.values.has(key)) {
      return this.values.get(key) as T;
    }
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
