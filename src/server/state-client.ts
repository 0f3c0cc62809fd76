/** The request thread's side of the state worker (state-worker.ts). */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { StateChange } from '../app/workspace.js';
import { expireReadCaches } from '../store/read-cache.js';
import type { StateAnswer, StateRequest, StateWorkerSetup } from './state-worker.js';

// The compiled worker, found from this module in src/server or in dist/server alike.
const WORKER_FILE = fileURLToPath(new URL('../../dist/server/state-worker.js', import.meta.url));

export interface StateWorker {
  /**
   * Resolves when the worker has caught the workspace up with its log as it was when asked, with
   * what that pass changed in the stored state (undefined when not known).
   */
  sync(workspace: string): Promise<StateChange | undefined>;
  /** Resolves once the worker has stored the provisional snapshot of the workspace's state, caught up first. */
  provisional(workspace: string): Promise<void>;
  close(): Promise<void>;
}

export function stateWorkerAvailable(): boolean {
  return existsSync(WORKER_FILE);
}

export function startStateWorker(setup: StateWorkerSetup): StateWorker {
  const worker = new Worker(WORKER_FILE, { workerData: setup });
  const waiting = new Map<number, { resolve: (change: StateChange | undefined) => void; reject: (error: Error) => void }>();
  let closed: (() => void) | null = null;
  let failure: Error | null = null;
  let next = 0;
  worker.on('message', (message: StateAnswer | { closed: true }) => {
    // The worker has committed what it answers about: the next read must see it.
    expireReadCaches();
    if ('closed' in message) {
      closed?.();
      return;
    }
    const entry = waiting.get(message.id);
    waiting.delete(message.id);
    if (message.error) entry?.reject(new Error(`catching up failed: ${message.error}`));
    else entry?.resolve(message.change);
  });
  worker.on('error', (error) => {
    failure = error;
    for (const entry of waiting.values()) entry.reject(error);
    waiting.clear();
  });
  worker.unref();
  const ask = (workspace: string, provisional: boolean): Promise<StateChange | undefined> => {
    if (failure) return Promise.reject(failure);
    const id = ++next;
    return new Promise((resolve, reject) => {
      waiting.set(id, { resolve, reject });
      worker.postMessage({ id, workspace, provisional } satisfies StateRequest);
    });
  };
  return {
    sync: (workspace) => ask(workspace, false),
    provisional: async (workspace) => {
      await ask(workspace, true);
    },
    async close() {
      if (failure) return;
      await new Promise<void>((resolve) => {
        closed = resolve;
        worker.postMessage({ close: true });
      });
      await worker.terminate();
    },
  };
}
