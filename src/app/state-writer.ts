/**
 * Writes an import's state on a worker thread with its own connection to the SQLite file, while
 * the importing thread serialises the fans and sends them over: the worker stores the parts that
 * do not depend on the fans (the fan_events pairs, posting blocks, derived changes, snapshots),
 * then each fan row as it arrives, in one transaction, and commits. On two cores the store's work
 * and the serialisation overlap instead of following each other.
 *
 * The worker is its own thread, started idle, rather than the import's reading thread: that one's
 * young generation has grown to its full size by then, and ending it gives that memory back.
 */
import { fileURLToPath } from 'node:url';
import { MessageChannel } from 'node:worker_threads';
import { startWorker } from './worker-channel.js';
import type { FanRow, StateWrite } from '../store/store.js';
import type { PostingBlock } from '../store/posting-codec.js';
import type { StateWriter } from './workspace.js';

/** What the worker is given, besides its ports and the counter of row messages sent. */
export interface StateWriterSetup {
  database: string;
  workspace: string;
}

/** A state write asked of the worker: its position check and everything but the posting blocks and the fans. */
export type StateWriteRequest = { expected: { appliedSeq: number; maxSeq: number }; state: Omit<StateWrite, 'fans' | 'postingBlocks'> };

/** What the worker answers: a row message taken, the outcome, or an error. */
export type StateWriterMessage = { rowsTaken: true } | { written: 'saved' | 'moved' } | { error: string };

/**
 * What goes through the rows port: the posting blocks one by one, `blocksEnd`, then the fan rows
 * (so that neither side holds a second copy of all of them), `end`; or `abort`.
 */
export type RowsMessage = { block: PostingBlock } | { blocksEnd: true } | { rows: FanRow[] } | { end: true } | { abort: true };

/** Fan rows per message, and messages sent ahead of the worker's taking them. */
const ROWS_PER_MESSAGE = 2000;
const MESSAGES_AHEAD = 4;

// The compiled worker, found from this module in src/app or in dist/app alike.
const WORKER_FILE = fileURLToPath(new URL('../../dist/app/state-writer-worker.js', import.meta.url));

export function startStateWriter(database: string, workspace: string): StateWriter & { close(): Promise<void> } {
  const rows = new MessageChannel();
  // Counts row messages sent: the worker, inside its write transaction, waits on it (Atomics.wait).
  const signal = new Int32Array(new SharedArrayBuffer(4));
  const setup: StateWriterSetup = { database, workspace };
  const worker = startWorker<StateWriterMessage>(WORKER_FILE, 'state writer', { ...setup, rowsPort: rows.port2, signal }, [rows.port2]);
  const next = () => worker.next();
  const postToRows = (message: RowsMessage) => {
    rows.port1.postMessage(message);
    Atomics.add(signal, 0, 1);
    Atomics.notify(signal, 0);
  };
  return {
    async write(expected, state) {
      const { fans, postingBlocks, ...rest } = state;
      const request: StateWriteRequest = { expected, state: rest };
      worker.post(request);
      let outcome: 'saved' | 'moved' | null = null;
      let ahead = 0;
      // Waits for the worker to take a row message, or to answer without taking them all.
      const settle = async () => {
        const message = await next();
        if ('written' in message) outcome = message.written;
        else ahead--;
      };
      /** Sends a message once the worker has taken all but a few; false if it answered meanwhile. */
      const send = async (message: RowsMessage): Promise<boolean> => {
        while (outcome === null && ahead >= MESSAGES_AHEAD) await settle();
        if (outcome !== null) return false;
        postToRows(message);
        ahead++;
        return true;
      };
      // Sends the blocks, then the rows, until the end or until the worker answered.
      const sendAll = async (): Promise<void> => {
        for (const block of postingBlocks) if (!(await send({ block }))) return;
        if (!(await send({ blocksEnd: true }))) return;
        let batch: FanRow[] = [];
        for (const row of fans) {
          batch.push(row);
          if (batch.length < ROWS_PER_MESSAGE) continue;
          if (!(await send({ rows: batch }))) return;
          batch = [];
        }
        if (batch.length > 0 && !(await send({ rows: batch }))) return;
        await send({ end: true });
      };
      try {
        await sendAll();
      } catch (error) {
        // The worker's transaction rolls back.
        postToRows({ abort: true });
        throw error;
      }
      while (outcome === null) await settle();
      return outcome;
    },
    async close() {
      rows.port1.close();
      await worker.close();
    },
  };
}
