/**
 * The state worker of `fanflow serve`: keeps every workspace's derived state caught up with its
 * log on a thread of its own, so that the engine and the state writes never hold the request
 * loop. It has its own connection (SQLite file or PostgreSQL pool) and its own in-memory worlds;
 * the request thread asks it to catch a workspace up and waits for the answer.
 */
import { readlinkSync } from 'node:fs';
import { getPriority, setPriority } from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';
import { activate, catchUp, openWorkspace, storeProvisional, type StateChange, type Workspace } from '../app/workspace.js';
import { openPostgresDatabase } from '../store/postgres-store.js';
import { expireReadCaches } from '../store/read-cache.js';
import { openSqliteDatabase } from '../store/sqlite-store.js';
import type { Database } from '../store/store.js';

export interface StateWorkerSetup {
  kind: 'sqlite' | 'postgres';
  /** The SQLite file or the PostgreSQL URL. */
  location: string;
  /** The state worker's nice increment over the process's (see lowerPriority). */
  nice?: number;
}

/** `provisional`: store the provisional snapshot of the state once caught up (see storeProvisional). */
export type StateRequest = { id: number; workspace: string; provisional?: boolean } | { close: true };
/** The pass's answer: what it changed in the stored state, or why it failed. */
export type StateAnswer = { id: number; error?: string; change?: StateChange };

const setup = workerData as StateWorkerSetup;
const port = parentPort;
if (!port) throw new Error('the state worker runs on a worker thread');
lowerPriority(setup.nice ?? 0);

/**
 * Lowers this thread's scheduling priority by `nice` (on Linux a priority set for a thread id
 * applies to that thread alone). Under a load that keeps both cores busy, the request thread and
 * the database's own processes then run first: batch ingest into PostgreSQL measured 45,000–47,800
 * events/s at p99 71–77 ms against 33,300–41,500 at 86–110 ms with equal priority, while the state
 * caught up with the burst some seconds later. Elsewhere (no /proc/thread-self) nothing changes.
 */
function lowerPriority(nice: number): void {
  if (nice === 0) return;
  let thread: number;
  try {
    thread = Number(readlinkSync('/proc/thread-self').split('/').pop());
  } catch {
    return;
  }
  if (!Number.isInteger(thread) || thread <= 0) return;
  try {
    setPriority(thread, Math.min(19, getPriority(thread) + nice));
  } catch {
    // A sandbox that forbids it: the worker runs at the request thread's priority.
  }
}

const opened: Promise<Database> = setup.kind === 'postgres' ? openPostgresDatabase(setup.location, { poolSize: 4 }) : openSqliteDatabase(setup.location);
opened.catch(() => undefined);
const workspaces = new Map<string, Workspace>();
// One pass at a time per workspace (later requests ride on the next pass).
const passes = new Map<string, Promise<unknown>>();

async function workspaceOf(name: string): Promise<Workspace> {
  const database = await opened;
  const store = await database.workspace(name);
  const active = await store.activeProgramVersion();
  let workspace = workspaces.get(name);
  if (!workspace || (active !== null && active !== workspace.program.version)) {
    workspace = await openWorkspace(store, null);
    workspace.keepWorld = true;
    workspace.provisionalWrites = 'apart';
    if (!active) await activate(store, { program: workspace.program, yaml: workspace.yaml }, new Date().toISOString());
    workspaces.set(name, workspace);
  }
  return workspace;
}

/**
 * New events per state write. A write of this many events' fans holds the write lock for some tens
 * of milliseconds at most, so appends never wait long behind one, even while a long backlog (a
 * burst of batch ingest) is worked off.
 */
const EVENTS_PER_WRITE = 1000;

/** Catches the workspace up to the end of the log in writes of EVENTS_PER_WRITE events; one change for all. */
async function catchUpInSteps(workspace: Workspace): Promise<StateChange | undefined> {
  // The fans of every step, gathered in one set (a merge per step grew with the whole backlog).
  let first: StateChange | undefined;
  let last: StateChange | undefined;
  let fans: Set<string> | null = new Set();
  for (;;) {
    const result = await catchUp(workspace, undefined, { maxEvents: EVENTS_PER_WRITE });
    const change = result.change;
    if (change && !(first && change.toSeq === change.fromSeq && change.fans?.length === 0)) {
      first ??= change;
      last = change;
      if (change.fans === null) fans = null;
      else if (fans) for (const fan of change.fans) fans.add(fan);
    }
    if (!result.partial) break;
  }
  if (!first || !last) return undefined;
  if (first === last) return first;
  return { fromSeq: first.fromSeq, toSeq: last.toSeq, fans: fans ? [...fans] : null };
}

/** The provisional snapshot is stored this long after the last pass, unless a read asks first. */
const PROVISIONAL_IDLE_MS = 1000;
const provisionalTimers = new Map<string, NodeJS.Timeout>();

function pass(name: string, provisional = false): Promise<StateChange | undefined> {
  const previous = passes.get(name) ?? Promise.resolve();
  const next = previous
    .catch(() => undefined)
    .then(async () => {
      const workspace = await workspaceOf(name);
      const change = await catchUpInSteps(workspace);
      if (provisional) await storeProvisional(workspace);
      else storeProvisionalWhenIdle(name);
      return change;
    });
  passes.set(name, next);
  return next;
}

/** Stores the provisional snapshot once no pass has run for PROVISIONAL_IDLE_MS (one pass after another under ingest). */
function storeProvisionalWhenIdle(name: string): void {
  clearTimeout(provisionalTimers.get(name));
  const timer = setTimeout(() => {
    provisionalTimers.delete(name);
    const previous = passes.get(name) ?? Promise.resolve();
    passes.set(
      name,
      previous.catch(() => undefined).then(async () => storeProvisional(await workspaceOf(name))).catch(() => undefined),
    );
  }, PROVISIONAL_IDLE_MS);
  timer.unref();
  provisionalTimers.set(name, timer);
}

port.on('message', (message: StateRequest) => {
  // The request thread asks after committing events: this thread's next read must see them.
  expireReadCaches();
  if ('close' in message) {
    for (const timer of provisionalTimers.values()) clearTimeout(timer);
    provisionalTimers.clear();
    void Promise.allSettled([...passes.values()])
      .then(() => opened.then((database) => database.close()))
      .finally(() => {
        port.postMessage({ closed: true });
        port.close();
      });
    return;
  }
  pass(message.workspace, message.provisional === true).then(
    (change) => port.postMessage({ id: message.id, change } satisfies StateAnswer),
    (error: Error) => port.postMessage({ id: message.id, error: error.message || String(error) } satisfies StateAnswer),
  );
});
