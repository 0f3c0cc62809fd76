/**
 * An import's file, chunk by chunk, appended to the log: what each chunk's append accepted (to
 * apply), what it found already there (duplicates and conflicts), and what was rejected. For a
 * large file on SQLite, a worker thread reads, parses, validates and appends (see
 * import-worker.ts), so that this thread only applies the accepted events; otherwise this thread
 * parses and the store appends, one chunk appending while the next is parsed.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { FanEvent } from '../core/events.js';
import type { AppendStatus, Store } from '../store/store.js';
import { decodePieces, type EventColumns } from './event-columns.js';
import { parseEventFile, type RejectLine } from './event-file.js';
import { samePayload } from './same-payload.js';
import { startWorker } from './worker-channel.js';

export interface AppendedChunk {
  /** The events the log accepted, in file order. */
  readonly accepted: FanEvent[];
  readonly duplicates: number;
  readonly conflicts: number;
  readonly rejects: readonly RejectLine[];
  /** The number of the last line read. */
  readonly lines: number;
  /** Bytes of the file read so far. */
  readonly bytes: number;
}

/** Files at least this large are read and appended on a worker thread; below it the thread's start costs more than it saves. */
export const WORKER_MIN_BYTES = 8 << 20;

// The compiled worker, found from this module in src/app or in dist/app alike.
const WORKER_FILE = fileURLToPath(new URL('../../dist/app/import-worker.js', import.meta.url));

/** Whether `store` can take a file through the worker, and (without `forced`) whether it is worth it. */
export function wantsWorker(store: Store, bytes: number, forced?: boolean): boolean {
  if (store.kind !== 'sqlite' || store.path === null || !existsSync(WORKER_FILE)) return false;
  if (forced !== undefined) return forced;
  const fromEnv = process.env.FANFLOW_APPEND_WORKER;
  if (fromEnv === '1' || fromEnv === '0') return fromEnv === '1';
  return bytes >= WORKER_MIN_BYTES;
}

export function countStatuses(events: readonly FanEvent[], statuses: readonly AppendStatus[]): { accepted: FanEvent[]; duplicates: number; conflicts: number } {
  const accepted: FanEvent[] = [];
  let duplicates = 0;
  let conflicts = 0;
  for (let i = 0; i < statuses.length; i++) {
    if (statuses[i] === 'accepted') accepted.push(events[i]);
    else if (statuses[i] === 'duplicate') duplicates++;
    else conflicts++;
  }
  return { accepted, duplicates, conflicts };
}

/** The chunks of `file` appended to the log of `store`, in file order. */
export function appendFile(store: Store, file: string, chunkEvents: number, onWorker: boolean): AsyncIterable<AppendedChunk> {
  return onWorker ? appendOnWorker(store.path as string, store.workspace, file, chunkEvents) : appendHere(store, file, chunkEvents);
}

async function* appendHere(store: Store, file: string, chunkEvents: number): AsyncGenerator<AppendedChunk> {
  // The chunk whose append is under way, received after the next one is parsed and sent.
  let pending: { appended: Promise<AppendStatus[]>; events: FanEvent[]; rejects: RejectLine[]; lines: number; bytes: number } | null = null;
  const settle = async function (): Promise<AppendedChunk> {
    const { appended, events, rejects, lines, bytes } = pending as NonNullable<typeof pending>;
    pending = null;
    return { ...countStatuses(events, await appended), rejects, lines, bytes };
  };
  try {
    for (const chunk of parseEventFile(file, chunkEvents)) {
      const appended = chunk.entries.length === 0 ? Promise.resolve([]) : store.append(chunk.entries, samePayload);
      // Observed here so that a failure is not reported as unhandled before it is received.
      appended.catch(() => undefined);
      const previous = pending ? await settle() : null;
      pending = { appended, events: chunk.events, rejects: chunk.rejects, lines: chunk.lines, bytes: chunk.bytes };
      if (previous) yield previous;
    }
    if (pending) yield await settle();
  } finally {
    // A consumer that stopped early leaves no append running behind it.
    await (pending as { appended: Promise<unknown> } | null)?.appended.catch(() => undefined);
  }
}

/** What the worker is given (and a port). */
export interface ImportWorkerSetup {
  database: string;
  workspace: string;
  file: string;
  chunkEvents: number;
}

/** What the worker sends: chunks, then `done`, or an error. */
export type ImportWorkerMessage =
  | { pieces: EventColumns[]; duplicates: number; conflicts: number; rejects: RejectLine[]; lines: number; bytes: number }
  | { done: true }
  | { error: string };

async function* appendOnWorker(database: string, workspace: string, file: string, chunkEvents: number): AsyncGenerator<AppendedChunk> {
  const setup: ImportWorkerSetup = { database, workspace, file, chunkEvents };
  const worker = startWorker<ImportWorkerMessage>(WORKER_FILE, 'import worker', { ...setup });
  const fanIds = new Map<string, string>();
  try {
    for (;;) {
      const message = await worker.next();
      if ('done' in message) return;
      // Asked for the next chunk before this one is applied: the worker stays ahead.
      worker.post({ next: true });
      const { pieces, ...counts } = message;
      yield { accepted: decodePieces(pieces, fanIds), ...counts };
    }
  } finally {
    // Ended as soon as its chunks are in: its heap (a large young generation) is given back.
    await worker.close();
  }
}
