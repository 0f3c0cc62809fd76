/**
 * The log reader's thread (see log-reader.ts): its own connection to the SQLite file, reading
 * the log in apply order, parsing and validating each event, and sending batches packed as
 * columns, a few ahead of the thread that applies them.
 */
import { workerData, type MessagePort } from 'node:worker_threads';
import type { FanEvent } from '../core/events.js';
import { openSqliteStore } from '../store/sqlite-store.js';
import { encodePieces, pieceBuffers } from './event-columns.js';
import { parseStored, type LogReaderMessage, type LogReaderSetup } from './log-reader.js';
import { sendCredit } from './worker-channel.js';

const BATCH_EVENTS = 8192;
/** Batches sent before the first is asked for again. */
const AHEAD = 4;

const { path, workspace, until, upToSeq, port } = workerData as LogReaderSetup & { port: MessagePort };
const credit = sendCredit(port, AHEAD);
const post = (message: LogReaderMessage, transfer: ArrayBuffer[] = []) => port.postMessage(message, transfer);

async function send(events: FanEvent[], seqs: number[]): Promise<void> {
  await credit.take();
  const pieces = encodePieces(events, seqs);
  post({ pieces }, pieceBuffers(pieces));
}

async function run(): Promise<void> {
  // Reads only: a small page cache, the sort spills to temporary files as SQLite sees fit.
  const store = await openSqliteStore(path, { workspace, cacheKiB: 16384 });
  try {
    let events: FanEvent[] = [];
    let seqs: number[] = [];
    for await (const rows of store.readOrdered(until ?? undefined)) {
      for (const row of rows) {
        if (row.seq > upToSeq) continue;
        events.push(parseStored(row));
        seqs.push(row.seq);
        if (events.length === BATCH_EVENTS) {
          await send(events, seqs);
          events = [];
          seqs = [];
        }
      }
    }
    if (events.length > 0) await send(events, seqs);
    post({ done: true });
  } finally {
    await store.close();
  }
}

run().catch((error: Error) => post({ error: error.message }));
