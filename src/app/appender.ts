/**
 * Appends import chunks to the log, either in this thread or on a worker thread with its own
 * connection, so that SQLite's inserts and fsyncs run while this thread parses the next chunk and
 * applies the previous one. Chunks are appended in the order sent; `receive` returns the statuses
 * of the oldest chunk not yet received, waiting for them if needed. Importing stays synchronous:
 * the wait is an Atomics.wait on a counter the worker bumps after each answer.
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { MessageChannel, receiveMessageOnPort, Worker } from 'node:worker_threads';
import type { AppendStatus, LogEntry, Store } from '../store/store.js';
import { samePayload } from './same-payload.js';

export interface Appender {
  send(entries: LogEntry[]): void;
  receive(): AppendStatus[];
  close(): void;
}

// The compiled worker, found from this module in src/app or in dist/app alike.
const WORKER_FILE = fileURLToPath(new URL('../../dist/app/append-worker.js', import.meta.url));

/** Files at least this large are appended on a worker thread; below it the thread's start costs more than it saves. */
export const WORKER_MIN_BYTES = 8 << 20;

export function wantsWorker(store: Store, bytes: number): boolean {
  const forced = process.env.FANFLOW_APPEND_WORKER;
  if (store.path === null || !existsSync(WORKER_FILE)) return false;
  if (forced === '1') return true;
  if (forced === '0') return false;
  return bytes >= WORKER_MIN_BYTES;
}

export function createAppender(store: Store, useWorker: boolean): Appender {
  return useWorker && store.path !== null ? workerAppender(store.path, store.workspace) : inlineAppender(store);
}

function inlineAppender(store: Store): Appender {
  const queue: AppendStatus[][] = [];
  return {
    send: (entries) => queue.push(store.append(entries, samePayload)),
    receive: () => {
      const statuses = queue.shift();
      if (!statuses) throw new Error('invariant: receive without a chunk sent');
      return statuses;
    },
    close: () => {},
  };
}

function workerAppender(path: string, workspace: string): Appender {
  const { port1, port2 } = new MessageChannel();
  const signal = new SharedArrayBuffer(4);
  const counter = new Int32Array(signal);
  const worker = new Worker(WORKER_FILE, { workerData: { path, workspace, port: port2, signal }, transferList: [port2] });
  worker.unref();
  let answered = 0;
  let pending = 0;
  const next = (): Record<string, unknown> => {
    for (;;) {
      const message = receiveMessageOnPort(port1);
      if (message) {
        answered++;
        return message.message as Record<string, unknown>;
      }
      // Wakes when the worker has answered once more than already received (or every second, to recheck).
      Atomics.wait(counter, 0, answered, 1000);
    }
  };
  return {
    send(entries) {
      pending++;
      port1.postMessage({ entries });
    },
    receive() {
      if (pending === 0) throw new Error('invariant: receive without a chunk sent');
      pending--;
      const message = next();
      if (typeof message.error === 'string') throw new Error(message.error);
      return message.statuses as AppendStatus[];
    },
    close() {
      while (pending > 0) {
        pending--;
        next();
      }
      port1.postMessage({ close: true });
      next();
      port1.close();
    },
  };
}
