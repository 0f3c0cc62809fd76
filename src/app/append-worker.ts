/**
 * The log appender's thread: its own connection to the SQLite file, appending the chunks it is
 * sent in order (each its own durable transaction) and answering with their statuses.
 */
import { workerData, type MessagePort } from 'node:worker_threads';
import { openSqliteStore } from '../store/sqlite-store.js';
import type { LogEntry, Store } from '../store/store.js';
import { samePayload } from './same-payload.js';

interface Setup {
  path: string;
  workspace: string;
  port: MessagePort;
}

const { path, workspace, port } = workerData as Setup;
// A failure to open is answered to every chunk, so that the import reports it.
const opened: Promise<Store> = openSqliteStore(path, { cacheKiB: 16384, workspace });
opened.catch(() => undefined);
// Chunks are handled one after another, in the order they arrive.
let queue: Promise<void> = Promise.resolve();

port.on('message', (message: { entries?: LogEntry[]; close?: true }) => {
  queue = queue.then(async () => {
    if (message.close) {
      await (await opened.catch(() => null))?.close();
      port.postMessage({ closed: true });
      port.close();
      return;
    }
    try {
      const store = await opened.catch((error: Error) => {
        throw new Error(`cannot open ${path} for appending: ${error.message}`);
      });
      port.postMessage({ statuses: await store.append(message.entries as LogEntry[], samePayload) });
    } catch (error) {
      port.postMessage({ error: (error as Error).message });
    }
  });
});
