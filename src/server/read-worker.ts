/**
 * The read worker of `fanflow serve`: builds the answer of `GET /v1/fans/{id}` (the stored row
 * read, decoded, brought to the instant asked, explained, serialised) on a thread of its own, so
 * that fan reads use the machine's second core instead of queueing on the request loop with the
 * HTTP work. The request thread still decides which state a read must see (it catches the state up
 * first) and hands over that state's position; this thread reads that state or a later one, with
 * its own connection (SQLite file or PostgreSQL pool) and its own compiled programs.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { NotFoundError } from '../app/errors.js';
import { storedFanView, type StatePosition } from '../app/queries.js';
import { openWorkspace, type Workspace } from '../app/workspace.js';
import { openPostgresDatabase } from '../store/postgres-store.js';
import { openSqliteDatabase } from '../store/sqlite-store.js';
import type { Database } from '../store/store.js';
import type { StateWorkerSetup } from './state-worker.js';

/** Where the worker connects: the server's database, on SQLite through the same memory map. */
export interface ReadWorkerSetup extends StateWorkerSetup {
  mmapMiB?: number;
}

export type ReadRequest = { id: number; workspace: string; fan: string; asOf: number; position: StatePosition | null } | { close: true };
/**
 * `json`: the fan's view; `notFound`: the message of the 404; `elsewhere`: this thread cannot give
 * the answer (the state moved past `asOf`, another program became active, or the read failed), the
 * request thread computes it.
 */
export type ReadAnswer = { id: number; json?: string; notFound?: string; elsewhere?: true };

const setup = workerData as ReadWorkerSetup;
const port = parentPort;
if (!port) throw new Error('the read worker runs on a worker thread');

const opened: Promise<Database> = setup.kind === 'postgres' ? openPostgresDatabase(setup.location, { poolSize: 2 }) : openSqliteDatabase(setup.location, { mmapMiB: setup.mmapMiB });
opened.catch(() => undefined);
const workspaces = new Map<string, Promise<Workspace>>();

/** The workspace with the program the state was derived with, or null when that is not the active one here. */
async function workspaceFor(name: string, programVersion: string | undefined): Promise<Workspace | null> {
  let workspace = workspaces.get(name);
  if (workspace && programVersion !== undefined && (await workspace).program.version !== programVersion) workspace = undefined;
  if (!workspace) {
    workspace = opened.then((database) => database.workspace(name)).then((store) => openWorkspace(store, null));
    workspaces.set(name, workspace);
    workspace.catch(() => workspaces.delete(name));
  }
  const ready = await workspace;
  return programVersion === undefined || ready.program.version === programVersion ? ready : null;
}

async function answer(request: Extract<ReadRequest, { id: number }>): Promise<ReadAnswer> {
  try {
    const workspace = await workspaceFor(request.workspace, request.position?.programVersion);
    if (!workspace) return { id: request.id, elsewhere: true };
    const view = await storedFanView(workspace, request.fan, request.asOf, request.position);
    return view ? { id: request.id, json: JSON.stringify(view) } : { id: request.id, elsewhere: true };
  } catch (error) {
    if (error instanceof NotFoundError) return { id: request.id, notFound: error.message };
    return { id: request.id, elsewhere: true };
  }
}

port.on('message', (request: ReadRequest) => {
  if ('close' in request) {
    void opened
      .then((database) => database.close())
      .catch(() => undefined)
      .finally(() => port.postMessage({ closed: true }));
    return;
  }
  void answer(request).then((reply) => port.postMessage(reply));
});
