/**
 * The import's reading thread (see appended-chunks.ts): reads the file, parses and validates
 * every line, appends each chunk of valid events to the log through its own connection (one
 * durable transaction each), and sends the accepted events packed as columns, a couple of chunks
 * ahead of the thread that applies them.
 */
import { workerData, type MessagePort } from 'node:worker_threads';
import { openSqliteStore } from '../store/sqlite-store.js';
import { encodePieces, pieceBuffers } from './event-columns.js';
import { parseEventFile } from './event-file.js';
import { countStatuses, type ImportWorkerMessage, type ImportWorkerSetup } from './appended-chunks.js';
import { samePayload } from './same-payload.js';
import { sendCredit } from './worker-channel.js';

/** Chunks sent before the first is asked for again. */
const AHEAD = 2;

const { database, workspace, file, chunkEvents, port } = workerData as ImportWorkerSetup & { port: MessagePort };
const credit = sendCredit(port, AHEAD);
const post = (message: ImportWorkerMessage, transfer: ArrayBuffer[] = []) => port.postMessage(message, transfer);

async function run(): Promise<void> {
  const store = await openSqliteStore(database, { cacheKiB: 16384, workspace }).catch((error: Error) => {
    throw new Error(`cannot open ${database} for appending: ${error.message}`);
  });
  try {
    for (const chunk of parseEventFile(file, chunkEvents)) {
      const statuses = chunk.entries.length === 0 ? [] : await store.append(chunk.entries, samePayload);
      const counted = countStatuses(chunk.events, statuses);
      await credit.take();
      const pieces = encodePieces(counted.accepted);
      post({ pieces, duplicates: counted.duplicates, conflicts: counted.conflicts, rejects: chunk.rejects, lines: chunk.lines, bytes: chunk.bytes }, pieceBuffers(pieces));
    }
    post({ done: true });
  } finally {
    await store.close();
  }
}

run().catch((error: Error) => post({ error: error.message }));
