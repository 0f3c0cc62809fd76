/**
 * The log appender's thread: its own connection to the SQLite file, appending the chunks it is
 * sent in order (each its own durable transaction) and answering with their statuses.
 */
import { parentPort, workerData, type MessagePort } from 'node:worker_threads';
import { openSqliteStore } from '../store/sqlite-store.js';
import type { LogEntry } from '../store/store.js';
import { samePayload } from './same-payload.js';

interface Setup {
  path: string;
  workspace: string;
  port: MessagePort;
  signal: SharedArrayBuffer;
}

const { path, workspace, port, signal } = workerData as Setup;
const counter = new Int32Array(signal);
// A failure to open is answered to every chunk, so that the waiting import reports it.
let store: ReturnType<typeof openSqliteStore> | null = null;
let openError: string | null = null;
try {
  store = openSqliteStore(path, { cacheKiB: 16384, workspace });
} catch (error) {
  openError = `cannot open ${path} for appending: ${(error as Error).message}`;
}

const answer = (message: unknown) => {
  port.postMessage(message);
  Atomics.add(counter, 0, 1);
  Atomics.notify(counter, 0);
};

port.on('message', (message: { entries?: LogEntry[]; close?: true }) => {
  if (message.close) {
    store?.close();
    answer({ closed: true });
    port.close();
    return;
  }
  try {
    if (!store) answer({ error: openError });
    else answer({ statuses: store.append(message.entries as LogEntry[], samePayload) });
  } catch (error) {
    answer({ error: (error as Error).message });
  }
});
// Nothing is sent on the parent channel; the port above carries the work.
void parentPort;
