/** The request thread's side of the read worker (read-worker.ts). */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { NotFoundError } from '../app/errors.js';
import type { StatePosition } from '../app/queries.js';
import type { ReadAnswer, ReadRequest, ReadWorkerSetup } from './read-worker.js';

// The compiled worker, found from this module in src/server or in dist/server alike.
const WORKER_FILE = fileURLToPath(new URL('../../dist/server/read-worker.js', import.meta.url));

export interface ReadWorker {
  /**
   * The JSON of one fan's view as of `asOf`, from the state at `position` or a later one; null when
   * the request thread must compute it itself (see ReadAnswer). Rejects with NotFoundError for an
   * unknown fan.
   */
  fan(workspace: string, id: string, asOf: number, position: StatePosition | null): Promise<string | null>;
  close(): Promise<void>;
}

export function readWorkerAvailable(): boolean {
  return existsSync(WORKER_FILE);
}

export function startReadWorker(setup: ReadWorkerSetup, onFailure: (error: Error) => void = () => undefined): ReadWorker {
  const worker = new Worker(WORKER_FILE, { workerData: setup });
  const waiting = new Map<number, { resolve: (json: string | null) => void; reject: (error: Error) => void }>();
  let closed: (() => void) | null = null;
  let failed = false;
  let next = 0;
  worker.on('message', (message: ReadAnswer | { closed: true }) => {
    if ('closed' in message) {
      closed?.();
      return;
    }
    const entry = waiting.get(message.id);
    waiting.delete(message.id);
    if (message.notFound !== undefined) entry?.reject(new NotFoundError(message.notFound));
    else entry?.resolve(message.json ?? null);
  });
  // A worker that failed or ended leaves every read to the request thread, those waiting too.
  const fail = (error: Error) => {
    if (failed) return;
    failed = true;
    for (const entry of waiting.values()) entry.resolve(null);
    waiting.clear();
    closed?.();
    onFailure(error);
  };
  worker.on('error', fail);
  worker.on('exit', (code) => fail(new Error(`the read worker exited (${code})`)));
  worker.unref();
  return {
    fan(workspace, id, asOf, position) {
      if (failed) return Promise.resolve(null);
      const request = ++next;
      return new Promise((resolve, reject) => {
        waiting.set(request, { resolve, reject });
        worker.postMessage({ id: request, workspace, fan: id, asOf, position } satisfies ReadRequest);
      });
    },
    async close() {
      if (failed) return;
      await new Promise<void>((resolve) => {
        closed = resolve;
        worker.postMessage({ close: true } satisfies ReadRequest);
      });
      failed = true;
      await worker.terminate();
    },
  };
}
