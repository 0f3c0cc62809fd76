/**
 * The application around the pure engine: keeps the stored state equal to applying the whole log
 * in (ts, id) order under the active program, and evaluates the world as of any instant.
 */
import { createEngine, type Engine, type EngineOutput } from '../core/engine.js';
import { compareEvents, validateEvent, type FanEvent } from '../core/events.js';
import type { Program } from '../core/program.js';
import { createWorld, type FanState, type World } from '../core/state.js';
import { LAYER_CODES, LAYER_NAMES } from '../core/state.js';
import type { Store, StoredLogEvent } from '../store/store.js';
import { compileProgramText, defaultProgram, type LoadedProgram } from './program-source.js';
import { PhaseTimer } from './phase-timer.js';
import { restoreWorld, serializeFan, serializeWorldMeta } from './serialize.js';

export interface Progress {
  start(total: number, label: string): void;
  update(done: number): void;
  stop(): void;
}

export const silentProgress: Progress = { start() {}, update() {}, stop() {} };

export interface Workspace {
  readonly store: Store;
  readonly program: Program;
  readonly yaml: string;
  readonly engine: Engine;
}

/**
 * Opens the workspace under a program: the one given, else the store's active one, else the
 * built-in default. `activate` makes a given program the store's active one.
 */
export function openWorkspace(store: Store, given: LoadedProgram | null): Workspace {
  const active = store.activeProgram();
  const loaded = given ?? (active ? compileProgramText(active.yaml, `active program ${active.version}`) : defaultProgram());
  return { store, program: loaded.program, yaml: loaded.yaml, engine: createEngine(loaded.program) };
}

function parseStored(row: StoredLogEvent): FanEvent {
  const result = validateEvent(JSON.parse(row.body));
  if (!result.ok) throw new Error(`invariant: stored event ${row.seq} no longer validates: ${JSON.stringify(result.issues)}`);
  return result.event;
}

export function loadStoredWorld(workspace: Workspace): { world: World; appliedSeq: number } | null {
  const stored = workspace.store.loadState();
  if (!stored) return null;
  return {
    world: restoreWorld(stored.world, stored.fans.map((fan) => fan.state), stored.snapshots),
    appliedSeq: stored.appliedSeq,
  };
}

function persist(workspace: Workspace, world: World, out: EngineOutput, appliedSeq: number, rebuild: boolean): void {
  const { program } = workspace;
  const fans = rebuild ? [...world.fans.values()] : [...out.touched].map((id) => world.fans.get(id) as FanState);
  workspace.store.saveState({
    programVersion: program.version,
    appliedSeq,
    rebuild,
    fans: fans.map((fan) => ({
      id: fan.id,
      no: fan.no,
      level: fan.level,
      layer: LAYER_CODES[LAYER_NAMES.indexOf(fan.layer)],
      loyaltyLog: Number.isFinite(fan.loyaltyLog) ? fan.loyaltyLog : null,
      state: serializeFan(fan),
    })),
    postings: out.postings,
    // Layer changes follow from the log and the clock; they are emitted, not stored.
    derived: out.derived.filter((event) => event.type !== 'LayerChanged'),
    snapshots: Object.entries(world.snapshots).map(([month, snapshot]) => ({ month, data: JSON.stringify(snapshot) })),
    world: serializeWorldMeta(world),
  });
}

/** True when the stored state covers the whole log under the workspace's program. */
export function isCurrent(workspace: Workspace): boolean {
  const meta = workspace.store.loadStateMeta();
  return meta !== null && meta.programVersion === workspace.program.version && meta.appliedSeq === workspace.store.maxSeq();
}

/** Stores a full rebuild as the state, covering the whole log. */
export function saveRebuild(workspace: Workspace, world: World, out: EngineOutput): void {
  persist(workspace, world, out, workspace.store.maxSeq(), true);
}

/** Reads the log (up to `until`) and sorts it into (ts, id) order. */
function readLogInOrder(store: Store, until?: number): FanEvent[] {
  // Sort the small rows first, then parse: the parsed events are allocated in log order.
  const rows = [...store.readAll(until)].sort(compareEvents);
  return rows.map(parseStored);
}

/** Applies the whole log from scratch in (ts, id) order, up to `until` when given. */
export function rebuildWorld(workspace: Workspace, progress: Progress = silentProgress, until?: number): { world: World; out: EngineOutput } {
  const { engine, store, program } = workspace;
  const world = createWorld(program.version);
  const out = engine.newOutput();
  const phases = new PhaseTimer();
  const events = readLogInOrder(store, until);
  phases.lap('read+sort');
  progress.start(events.length, 'replay');
  for (let i = 0; i < events.length; i++) {
    engine.apply(world, events[i], out);
    if (i % 20_000 === 0) progress.update(i);
  }
  progress.update(events.length);
  progress.stop();
  phases.lap('engine');
  phases.report('rebuild');
  return { world, out };
}

export interface CatchUpResult {
  readonly applied: number;
  readonly rebuilt: boolean;
  readonly world: World;
}

/**
 * Brings the stored state up to the end of the log. New events all after the last applied one
 * are applied incrementally; an earlier arrival, a program change or a missing state rebuild
 * from the log. `pending` may pass the already-parsed events of seq > appliedSeq.
 */
export function catchUp(workspace: Workspace, progress: Progress = silentProgress, pending?: FanEvent[]): CatchUpResult {
  return workspace.store.exclusive(() => catchUpLocked(workspace, progress, pending));
}

function catchUpLocked(workspace: Workspace, progress: Progress, pending?: FanEvent[]): CatchUpResult {
  const { store, engine, program } = workspace;
  const maxSeq = store.maxSeq();
  const loaded = loadStoredWorld(workspace);
  const stale = !loaded || loaded.world.programVersion !== program.version;
  if (!stale && loaded.appliedSeq === maxSeq) return { applied: 0, rebuilt: false, world: loaded.world };
  // `pending` is usable only when it is exactly the unapplied tail (no other writer in between).
  const usable = pending !== undefined && loaded !== null && loaded.appliedSeq + pending.length === maxSeq;
  let events = stale ? [] : usable ? (pending as FanEvent[]) : [...store.readAfter(loaded.appliedSeq)].map(parseStored);
  if (!stale) events = [...events].sort(compareEvents);
  const world = loaded?.world;
  const inOrder = !stale && world !== undefined && (events.length === 0 || compareEvents(events[0], { ts: world.lastTs, id: world.lastId }) > 0);
  if (!inOrder || !world) {
    const rebuilt = rebuildWorld(workspace, progress);
    persist(workspace, rebuilt.world, rebuilt.out, maxSeq, true);
    return { applied: maxSeq - (loaded?.appliedSeq ?? 0), rebuilt: true, world: rebuilt.world };
  }
  const phases = new PhaseTimer();
  const out = engine.newOutput();
  progress.start(events.length, 'apply');
  for (let i = 0; i < events.length; i++) {
    engine.apply(world, events[i], out);
    if (i % 20_000 === 0) progress.update(i);
  }
  progress.update(events.length);
  progress.stop();
  phases.lap('engine');
  persist(workspace, world, out, maxSeq, false);
  phases.lap('save');
  phases.report('apply');
  return { applied: events.length, rebuilt: false, world };
}

/**
 * The world as it was, or will be, at `asOf`: the current state advanced through the midnights
 * up to `asOf`, or for an earlier instant a replay of the log up to it. Never written back.
 */
export function worldAt(workspace: Workspace, asOf: number, current?: World): World {
  const world = current ?? catchUp(workspace).world;
  if (asOf >= world.clock) {
    workspace.engine.advanceClock(world, asOf, workspace.engine.newOutput());
    return world;
  }
  const replayed = rebuildWorld(workspace, silentProgress, asOf).world;
  workspace.engine.advanceClock(replayed, asOf, workspace.engine.newOutput());
  return replayed;
}
