/**
 * Reads the log in the order it applies (ts, then id), parsed and validated, in batches. On a
 * SQLite file with a long log this runs on a thread of its own: the query's sort, the JSON parse
 * and the validation of every stored event then use the machine's second core while the engine
 * runs on this one, and the events come over packed as columns (see event-columns.ts).
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { validateEvent, type FanEvent } from '../core/events.js';
import type { Store, StoredLogEvent } from '../store/store.js';
import { decodePieces, seqsOfPieces, type EventColumns } from './event-columns.js';
import { startWorker } from './worker-channel.js';

export interface LogBatch {
  readonly events: readonly FanEvent[];
  /** The log seq of each event. */
  readonly seqs: ArrayLike<number>;
}

export interface OrderedReadOptions {
  /** Only events with ts at or before this instant. */
  until?: number;
  /** Only events with a seq at or below this one (appended later: the next pass's). */
  upToSeq: number;
  /** Read on a worker thread (default: a SQLite file with at least WORKER_MIN_EVENTS to read; FANFLOW_LOG_READER_WORKER=0|1 overrides). */
  onWorker?: boolean;
}

/** Below this many events the thread's start (some 40 ms) costs more than it saves. */
export const WORKER_MIN_EVENTS = 50_000;

// The compiled worker, found from this module in src/app or in dist/app alike.
const WORKER_FILE = fileURLToPath(new URL('../../dist/app/log-reader-worker.js', import.meta.url));

/** One stored event, parsed and validated again (it was valid when appended). */
export function parseStored(row: StoredLogEvent): FanEvent {
  const result = validateEvent(JSON.parse(row.body));
  if (!result.ok) throw new Error(`invariant: stored event ${row.seq} no longer validates: ${JSON.stringify(result.issues)}`);
  return result.event;
}

function readsOnWorker(store: Store, options: OrderedReadOptions): boolean {
  if (store.kind !== 'sqlite' || store.path === null || !existsSync(WORKER_FILE)) return false;
  const forced = process.env.FANFLOW_LOG_READER_WORKER;
  if (forced === '0' || forced === '1') return forced === '1';
  return options.onWorker ?? options.upToSeq >= WORKER_MIN_EVENTS;
}

/**
 * The log's events in apply order, up to `upToSeq` (and `until`). Read through `store`, or on a
 * worker thread with its own connection, which sees what is committed: pass a store inside a
 * transaction only with `onWorker: false` (FANFLOW_LOG_READER_WORKER does not override that).
 */
export function readLogInOrder(store: Store, options: OrderedReadOptions): AsyncIterable<LogBatch> {
  return options.onWorker !== false && readsOnWorker(store, options) ? readOnWorker(store.path as string, store.workspace, options) : readHere(store, options);
}

async function* readHere(store: Store, options: OrderedReadOptions): AsyncGenerator<LogBatch> {
  for await (const rows of store.readOrdered(options.until)) {
    const events: FanEvent[] = [];
    const seqs: number[] = [];
    for (const row of rows) {
      if (row.seq > options.upToSeq) continue;
      events.push(parseStored(row));
      seqs.push(row.seq);
    }
    yield { events, seqs };
  }
}

/** What the worker is given. */
export interface LogReaderSetup {
  path: string;
  workspace: string;
  until: number | null;
  upToSeq: number;
}

/** What the worker sends: batches, then `done`, or an error. */
export type LogReaderMessage = { pieces: EventColumns[] } | { done: true } | { error: string };

async function* readOnWorker(path: string, workspace: string, options: OrderedReadOptions): AsyncGenerator<LogBatch> {
  const setup: LogReaderSetup = { path, workspace, until: options.until ?? null, upToSeq: options.upToSeq };
  const worker = startWorker<LogReaderMessage>(WORKER_FILE, 'log reader', { ...setup });
  // One fan id string per fan across batches (see decodeEvents).
  const fanIds = new Map<string, string>();
  try {
    for (;;) {
      const message = await worker.next().catch((error: Error) => {
        throw new Error(`reading the log of ${path}: ${error.message}`);
      });
      if ('done' in message) return;
      // Asked for the next batch before this one is unpacked: the worker stays a few ahead.
      worker.post({ next: true });
      yield { events: decodePieces(message.pieces, fanIds), seqs: seqsOfPieces(message.pieces) };
    }
  } finally {
    await worker.close();
  }
}
