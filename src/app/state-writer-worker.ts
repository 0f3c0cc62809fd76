/**
 * The state writer's thread (see state-writer.ts): one state write, through its own connection,
 * when the log and the stored state are where the importing thread left them.
 */
import { receiveMessageOnPort, workerData, type MessagePort } from 'node:worker_threads';
import { openSqliteStore } from '../store/sqlite-store.js';
import type { FanRow } from '../store/store.js';
import type { PostingBlock } from '../store/posting-codec.js';
import type { RowsMessage, StateWriteRequest, StateWriterMessage, StateWriterSetup } from './state-writer.js';

const { database, workspace, port, rowsPort, signal } = workerData as StateWriterSetup & { port: MessagePort; rowsPort: MessagePort; signal: Int32Array };
const post = (message: StateWriterMessage) => port.postMessage(message);
// Opened at once, so that the connection is ready when the state is.
const opened = openSqliteStore(database, { cacheKiB: 16384, workspace });
opened.catch(() => undefined);

/**
 * The messages of the rows port up to `last`, taken as the other thread sends them. Read inside
 * the write's transaction, which is synchronous: the thread blocks on the message counter until
 * the next message arrives.
 */
function* sent(last: 'blocksEnd' | 'end'): Generator<Exclude<RowsMessage, { abort: true } | { blocksEnd: true } | { end: true }>> {
  for (;;) {
    const seen = Atomics.load(signal, 0);
    const received = receiveMessageOnPort(rowsPort);
    if (!received) {
      Atomics.wait(signal, 0, seen, 1000);
      continue;
    }
    const message = received.message as RowsMessage;
    post({ rowsTaken: true });
    if ('abort' in message) throw new Error('the import stopped before its state was written');
    if (last in message) return;
    if ('blocksEnd' in message || 'end' in message) throw new Error('invariant: the state write\'s messages came out of order');
    yield message;
  }
}

function* blocks(): Generator<PostingBlock> {
  for (const message of sent('blocksEnd')) {
    if (!('block' in message)) throw new Error('invariant: fan rows before the posting blocks ended');
    yield message.block;
  }
}

function* rows(): Generator<FanRow> {
  for (const message of sent('end')) {
    if (!('rows' in message)) throw new Error('invariant: a posting block among the fan rows');
    yield* message.rows;
  }
}

// The listener keeps the thread alive after the write, until the importing thread ends it: its
// answer is then received before its exit is seen.
let asked = false;
port.on('message', (request: StateWriteRequest) => {
  if (asked) return;
  asked = true;
  (async () => {
    const store = await opened.catch((error: Error) => {
      throw new Error(`cannot open ${database} to write the state: ${error.message}`);
    });
    const { expected, state } = request;
    const outcome = await store.exclusive(async (tx) => {
      const meta = await tx.loadStateMeta();
      if ((meta?.appliedSeq ?? 0) !== expected.appliedSeq || (await tx.maxSeq()) !== expected.maxSeq) return 'moved' as const;
      await tx.saveState({ ...state, postingBlocks: blocks(), fans: rows() });
      return 'saved' as const;
    });
    await store.close();
    post({ written: outcome });
  })().catch((error: Error) => post({ error: error.message }));
});
