/**
 * Appends import chunks to the log, either through the store or, for a large file on SQLite, on a
 * worker thread with its own connection, so that SQLite's inserts and fsyncs run while this
 * thread parses the next chunk and applies the previous one. Chunks are appended in the order
 * sent; `receive` resolves with the statuses of the oldest chunk not yet received.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { MessageChannel, Worker } from 'node:worker_threads';
import type { AppendStatus, LogEntry, Store } from '../store/store.js';
import { samePayload } from './same-payload.js';

export interface Appender {
  send(entries: LogEntry[]): void;
  receive(): Promise<AppendStatus[]>;
  close(): Promise<void>;
}

// The compiled worker, found from this module in src/app or in dist/app alike.
const WORKER_FILE = fileURLToPath(new URL('../../dist/app/append-worker.js', import.meta.url));

/** Files at least this large are appended on a worker thread; below it the thread's start costs more than it saves. */
export const WORKER_MIN_BYTES = 8 << 20;

export function wantsWorker(store: Store, bytes: number): boolean {
  const forced = process.env.FANFLOW_APPEND_WORKER;
  if (store.kind !== 'sqlite' || store.path === null || !existsSync(WORKER_FILE)) return false;
  if (forced === '1') return true;
  if (forced === '0') return false;
  return bytes >= WORKER_MIN_BYTES;
}

export function createAppender(store: Store, useWorker: boolean): Appender {
  return useWorker && store.kind === 'sqlite' && store.path !== null ? workerAppender(store.path, store.workspace) : storeAppender(store);
}

function storeAppender(store: Store): Appender {
  const queue: Promise<AppendStatus[]>[] = [];
  return {
    send(entries) {
      const appended = store.append(entries, samePayload);
      // Observed here so that a failure is not reported as unhandled before it is received.
      appended.catch(() => undefined);
      queue.push(appended);
    },
    receive() {
      const next = queue.shift();
      if (!next) throw new Error('invariant: receive without a chunk sent');
      return next;
    },
    async close() {
      await Promise.allSettled(queue.splice(0));
    },
  };
}

function workerAppender(path: string, workspace: string): Appender {
  const { port1, port2 } = new MessageChannel();
  const worker = new Worker(WORKER_FILE, { workerData: { path, workspace, port: port2 }, transferList: [port2] });
  const waiting: ((message: Record<string, unknown>) => void)[] = [];
  const answers: Record<string, unknown>[] = [];
  port1.on('message', (message: Record<string, unknown>) => {
    const resolve = waiting.shift();
    if (resolve) resolve(message);
    else answers.push(message);
  });
  let failure: Error | null = null;
  worker.on('error', (error) => {
    failure = error;
    for (const resolve of waiting.splice(0)) resolve({ error: `append worker failed: ${error.message}` });
  });
  const next = (): Promise<Record<string, unknown>> => {
    const ready = answers.shift();
    if (ready) return Promise.resolve(ready);
    if (failure) return Promise.resolve({ error: `append worker failed: ${(failure as Error).message}` });
    return new Promise((resolve) => waiting.push(resolve));
  };
  let pending = 0;
  return {
    send(entries) {
      pending++;
      port1.postMessage({ entries });
    },
    async receive() {
      if (pending === 0) throw new Error('invariant: receive without a chunk sent');
      pending--;
      const message = await next();
      if (typeof message.error === 'string') throw new Error(message.error);
      return message.statuses as AppendStatus[];
    },
    async close() {
      while (pending > 0) {
        pending--;
        await next();
      }
      port1.postMessage({ close: true });
      await next();
      port1.close();
      await worker.terminate();
    },
  };
}
