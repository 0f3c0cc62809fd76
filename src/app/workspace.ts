/**
 * The application around the pure engine: keeps the stored state equal to applying the whole log
 * in (ts, id) order under the active program, and evaluates the world as of any instant.
 */
import { createEngine, type Engine, type EngineOutput } from '../core/engine.js';
import { compareEvents, type FanEvent } from '../core/events.js';
import { compileProgram, parseStoredSpec, storedSpecJson, type Program } from '../core/program.js';
import { createWorld, ENGINE_VERSION, type FanState, type World } from '../core/state.js';
import type { HeldCandidates } from './queries.js';
import type { AdvancedBoundaries } from './report-pass.js';
import { SnapshotBuilder } from '../core/snapshot.js';
import { countFact } from '../core/facts.js';
import { distanceTo } from '../core/layers.js';
import { LAYER_CODES, LAYER_NAMES } from '../core/state.js';
import type { FanRow, Notification, StateWrite, Store, WebhookEventType } from '../store/store.js';
import { derivedNotifications, postingNotifications } from './notifications.js';
import { decodeZoneOffsets, zoneOffsetsToKeep } from './zone-offsets.js';
import { HeldRanks, ranksOf, type LoyaltyRanks } from '../store/loyalty-ranks.js';
import { encodePostingBlocks, POSTINGS_PER_BLOCK, type PostingBlock } from '../store/posting-codec.js';
import { compileProgramText, defaultProgram, type LoadedProgram } from './program-source.js';
import { PhaseTimer } from './phase-timer.js';
import { parseStored, readLogInOrder } from './log-reader.js';
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
  /**
   * A long-running process (the server) keeps the world it last stored, so that catching up
   * applies only the new events instead of loading every fan. Valid while the stored state is
   * still at its position; dropped on any failure and whenever a caller mutates the world.
   */
  keepWorld?: boolean;
  /**
   * What a state write does with the provisional snapshot: store it ('each-write', the default);
   * store none, a report computing one from the kept world ('on-demand'); or store none but keep
   * its figures up to date with the kept world, to be stored apart when wanted ('apart', see
   * storeProvisional): joining and writing every fan's figures at each write cost a busy server's
   * state worker most of its writes.
   */
  provisionalWrites?: 'each-write' | 'on-demand' | 'apart';
  /** Has the provisional snapshot of the current state stored by whoever defers it (a server's state worker). */
  askProvisional?: () => Promise<void>;
  cache?: { world: World; appliedSeq: number } | null;
  /** The kept world's figures at the next month boundary, updated per pass (see provisionalSnapshot). */
  provisional?: { world: World; month: string; parts: SnapshotBuilder } | null;
  /** The kept world's sorted loyalty values, updated per pass from the fans it rewrote (see loyaltyRanksOf). */
  ranks?: { world: World; held: HeldRanks } | null;
  /** The monthly report's Core/Backbone/Lv4 candidates, kept for the next report (see queries.ts). */
  reportCandidates?: HeldCandidates | null;
  /**
   * False in a process that makes one report and exits (`fanflow report`): the candidates are then
   * looked at as they are read and not kept, which spares their memory and the collector's copying
   * of them.
   */
  holdReportCandidates?: boolean;
  /** Where a long read (a pass over every stored fan) reports how far it got; none by default. */
  progress?: Progress;
  /** The stored state's month boundaries after its clock, from the last pass over its fans (see report-pass.ts). */
  advanced?: AdvancedBoundaries | null;
  /** Events a catch-up in steps read but left for its next pass (see CatchUpOptions.maxEvents). */
  backlog?: Backlog | null;
  /** How many of the zone's offset blocks the store keeps (see zone-offsets.ts). */
  zoneBlocksKept?: number;
}

/**
 * Opens the workspace under a program: the one given, else the store's active one, else the
 * built-in default. `activate` makes a given program the store's active one.
 */
export async function openWorkspace(store: Store, given: LoadedProgram | null): Promise<Workspace> {
  const loaded = given ?? (await activeProgramOf(store)) ?? defaultProgram();
  const offsets = decodeZoneOffsets(await store.zoneOffsets(loaded.program.timezone));
  return { store, program: loaded.program, yaml: loaded.yaml, engine: createEngine(loaded.program, offsets), zoneBlocksKept: offsets.length };
}

/** The store's active program; its spec was validated when it was activated. */
async function activeProgramOf(store: Store): Promise<LoadedProgram | null> {
  const active = await store.activeProgram();
  if (!active) return null;
  if (active.spec === null) return compileProgramText(active.yaml, `active program ${active.version}`);
  return { program: compileProgram(parseStoredSpec(active.spec), active.version), yaml: active.yaml };
}

/** Records a program as the store's active one (if it is not already). */
export async function activate(store: Store, loaded: LoadedProgram, at: string): Promise<void> {
  const active = await store.activeProgram();
  if (active && active.version === loaded.program.version && active.spec !== null) return;
  const { version: _version, historyDays: _history, ...spec } = loaded.program;
  await store.activateProgram(loaded.program.version, loaded.yaml, storedSpecJson(spec), at);
}

export async function loadStoredWorld(store: Store): Promise<{ world: World; appliedSeq: number } | null> {
  const stored = await store.loadState();
  if (!stored) return null;
  return {
    world: restoreWorld(stored.world, stored.fans.map((fan) => fan.state), stored.snapshots),
    appliedSeq: stored.appliedSeq,
  };
}

interface PersistExtra {
  /** Postings already encoded (a streaming import). */
  postingBlocks?: Iterable<PostingBlock>;
  /** Notifications already built (of the postings encoded early). */
  earlier?: readonly Notification[];
  fresh?: FreshFilter | null;
  /** The clock before this pass: month snapshots taken before it are stored already. */
  clockBefore?: number;
  /** The rows of the touched fans, serialised beforehand (outside the write lock). */
  rows?: readonly FanRow[];
}

/** A state write made ready outside the write lock; `write` stores it with its notifications. */
interface PreparedState {
  /** The write without its notifications; its fans are serialised as they are read. */
  readonly state: StateWrite;
  /** The notifications of the write, for the subscriptions that want these types. */
  notifications(wanted: ReadonlySet<WebhookEventType>): Notification[];
  /** Notes in the workspace what a stored write changed. */
  stored(): void;
  write(store: Store): Promise<void>;
}

/**
 * Writes a state through another connection (the import worker's), under that connection's write
 * lock, provided the log and the stored state are still where the caller expects them.
 */
export interface StateWriter {
  /** 'moved': another writer appended or wrote the state meanwhile, and nothing was written. */
  write(expected: { appliedSeq: number; maxSeq: number }, state: StateWrite): Promise<'saved' | 'moved'>;
}

async function persist(workspace: Workspace, store: Store, world: World, out: EngineOutput, appliedSeq: number, rebuild: boolean, extra: PersistExtra = {}): Promise<void> {
  await prepareState(workspace, world, out, appliedSeq, rebuild, extra).write(store);
}

/**
 * Everything a state write needs that follows from the world alone (the snapshots, the
 * provisional snapshot, the world's own record, the sorted loyalty values of every fan), computed
 * now, so that a caller can do it before taking the write lock and hold the lock only to write.
 */
function prepareState(workspace: Workspace, world: World, out: EngineOutput, appliedSeq: number, rebuild: boolean, extra: PersistExtra = {}): PreparedState {
  const { program, engine } = workspace;
  const { postingBlocks = [], earlier = [], fresh = null, clockBefore = Number.NEGATIVE_INFINITY } = extra;
  const isFresh = (eventId: string | null, ts: number) => !fresh || (eventId === null ? ts > fresh.after : fresh.ids.has(eventId));
  const fans = rebuild ? world.fans.values() : [...out.touched].map((id) => world.fans.get(id) as FanState);
  const rows = function* (): Generator<FanRow> {
    for (const fan of fans) yield fanRow(workspace, world, fan);
  };
  const zoneOffsets = zoneOffsetsToKeep(engine.calendar, workspace.zoneBlocksKept ?? 0, world.clock, Date.now());
  const ready: StateWrite = {
    programVersion: program.version,
    appliedSeq,
    rebuild,
    fans: extra.rows ?? rows(),
    postings: out.postings,
    postingBlocks,
    // Layer changes follow from the log and the clock; they are emitted, not stored.
    derived: out.derived.filter((event) => event.type !== 'LayerChanged'),
    // Month snapshots never change once taken: an incremental write stores only the new ones.
    snapshots: Object.entries(world.snapshots)
      .filter(([month]) => rebuild || engine.calendar.startOfMonth(month) > clockBefore)
      .map(([month, snapshot]) => ({ month, data: JSON.stringify(snapshot) })),
    // A long-running process may defer it (see Workspace.provisionalWrites).
    provisional: writtenProvisional(workspace, world, rebuild ? null : out.touched),
    world: serializeWorldMeta(world),
    // The world holds every fan: its loyalty values are sorted here rather than read back.
    loyalty: loyaltyRanksOf(workspace, world, rebuild ? null : out.touched),
    zoneOffsets,
  };
  const notifications = (wanted: ReadonlySet<WebhookEventType>): Notification[] =>
    wanted.size === 0
      ? []
      : [
          ...earlier,
          ...postingNotifications(fresh ? out.postings.filter((posting) => isFresh(posting.eventId, posting.ts)) : out.postings, wanted),
          ...derivedNotifications(fresh ? out.derived.filter((event) => isFresh('eventId' in event ? event.eventId : null, event.ts)) : out.derived, wanted),
        ];
  const stored = () => {
    if (zoneOffsets) workspace.zoneBlocksKept = zoneOffsets.blocks;
  };
  return {
    state: ready,
    notifications,
    stored,
    async write(store) {
      // Notifications are written with the state they announce, in one transaction (the outbox).
      // An incremental pass announces everything it derived; a rebuild only what the events new to
      // the state caused (`fresh`); a replay of known events nothing. The subscriptions are read
      // under the lock, with the write.
      const wanted = rebuild && !fresh ? new Set<WebhookEventType>() : await store.subscribedTypes();
      await store.saveState({ ...ready, notifications: notifications(wanted) });
      stored();
    },
  };
}

function* loyaltyValues(world: World): Generator<number> {
  for (const fan of world.fans.values()) yield fan.loyaltyLog;
}

/**
 * Every fan's loyalty value, sorted, for the state write. A kept world's are held between writes
 * and updated from the fans a pass rewrote (the only ones whose value changed, as for the
 * provisional figures); anything else sorts every fan's value.
 */
function loyaltyRanksOf(workspace: Workspace, world: World, touched: Iterable<string> | null): LoyaltyRanks {
  const held = workspace.ranks;
  if (touched && held && held.world === world) {
    held.held.update(fansOf(world, touched));
    return held.held.ranks(world.fans.size);
  }
  if (!workspace.keepWorld) {
    workspace.ranks = null;
    return ranksOf(loyaltyValues(world), world.fans.size);
  }
  const fresh = HeldRanks.of(world.fans.values(), world.fans.size);
  workspace.ranks = { world, held: fresh };
  return fresh.ranks(world.fans.size);
}

function* fansOf(world: World, ids: Iterable<string>): Generator<FanState> {
  for (const id of ids) {
    const fan = world.fans.get(id);
    if (fan) yield fan;
  }
}

/** One fan's stored row at the world's clock. */
function fanRow(workspace: Workspace, world: World, fan: FanState): FanRow {
  const { program } = workspace;
  return {
    id: fan.id,
    no: fan.no,
    level: fan.level,
    layer: LAYER_CODES[LAYER_NAMES.indexOf(fan.layer)],
    loyaltyLog: Number.isFinite(fan.loyaltyLog) ? fan.loyaltyLog : null,
    lastActivity: fan.lastActivityTs,
    recency: fan.firstFollowTs ?? fan.firstTs,
    backboneGap: distanceTo(fan, program, 'backbone', world.clock),
    interactionsInWindow: countFact(fan, 'interactions', world.clock, program.layers.windowDays),
    referrer: fan.referrer,
    referrals: fan.qualifiedReferralTs.length,
    state: serializeFan(fan),
  };
}

/**
 * The provisional snapshot of the stored state at `appliedSeq`, from the world this process
 * keeps (null when it keeps none at that position): a server stores none at each write, since
 * it costs a pass over every fan, and computes it here when a report needs it.
 */
export function provisionalFromCache(workspace: Workspace, appliedSeq: number): { month: string; data: string } | null {
  const cache = workspace.cache;
  return cache && cache.appliedSeq === appliedSeq ? provisionalSnapshot(workspace, cache.world) : null;
}

/** True when the stored state covers the whole log under the workspace's program. */
export async function isCurrent(workspace: Workspace, store: Store = workspace.store): Promise<boolean> {
  return (await currentMeta(workspace, store)) !== null;
}

export type StateMeta = NonNullable<Awaited<ReturnType<Store['loadStateMeta']>>>;

/** The stored state's meta when it covers the whole log under the workspace's program, else null. */
export async function currentMeta(workspace: Workspace, store: Store = workspace.store): Promise<StateMeta | null> {
  const meta = await store.loadStateMeta();
  return meta && metaIfCurrent(workspace, meta, await store.maxSeq());
}

/** The stored state's meta when it covers the log up to `maxSeq` under the workspace's program, else null. */
export function metaIfCurrent(workspace: Workspace, meta: StateMeta | null, maxSeq: number): StateMeta | null {
  return meta !== null && meta.programVersion === workspace.program.version && engineVersionOf(meta.world) === ENGINE_VERSION && meta.appliedSeq === maxSeq ? meta : null;
}

// The last world text read and its engine version: reads of an unchanged state skip the parse.
let lastWorldMeta: { text: string; version: number } | null = null;

export function engineVersionOf(worldMeta: string): number {
  if (lastWorldMeta?.text === worldMeta) return lastWorldMeta.version;
  const version = (JSON.parse(worldMeta) as { engineVersion?: number }).engineVersion ?? 0;
  lastWorldMeta = { text: worldMeta, version };
  return version;
}

/** Stores a full rebuild as the state, covering the log up to `appliedSeq`. */
export async function saveRebuild(workspace: Workspace, world: World, out: EngineOutput, appliedSeq: number): Promise<void> {
  await workspace.store.exclusive((store) => persist(workspace, store, world, out, appliedSeq, true));
  workspace.cache = null;
}

/** The provisional snapshot a state write stores (see Workspace.provisionalWrites). */
function writtenProvisional(workspace: Workspace, world: World, touched: Iterable<string> | null): { month: string; data: string } | null {
  if (workspace.provisionalWrites === 'on-demand') return null;
  if (workspace.provisionalWrites === 'apart') {
    provisionalParts(workspace, world, touched);
    return null;
  }
  return provisionalSnapshot(workspace, world, touched);
}

/**
 * The snapshot at the month start after the clock, as it will be if no event arrives before it:
 * the stored state plus the demotions of the midnights in between. Lets a report of the month
 * that just ended read stored figures instead of evaluating every fan.
 */
function provisionalSnapshot(workspace: Workspace, world: World, touched: Iterable<string> | null = null): { month: string; data: string } | null {
  const held = provisionalParts(workspace, world, touched);
  return held && { month: held.month, data: JSON.stringify(held.parts.finish(world)) };
}

/** The figures of every fan at the next month boundary after the world's clock, kept for the next pass when the world is. */
function provisionalParts(workspace: Workspace, world: World, touched: Iterable<string> | null): { month: string; parts: SnapshotBuilder } | null {
  if (!Number.isFinite(world.clock)) return null;
  const { engine, program } = workspace;
  const month = engine.calendar.nextMonthKey(engine.calendar.monthKey(world.clock));
  const boundary = engine.calendar.startOfMonth(month);
  // A fan that a midnight may demote is advanced to the boundary in place, its figures taken, and
  // set back: advanceFan changes only the level and the Lv5 eligibility, and a deep copy of every
  // such fan cost more than the rest of a server's state write together.
  const setAdvanced = (parts: SnapshotBuilder, fan: FanState): void => {
    if (!world.highLevel.has(fan.id)) {
      parts.set(fan, program);
      return;
    }
    const { level, eligibleForNext } = fan;
    try {
      engine.advanceFan(fan, world.clock, boundary);
      parts.set(fan, program);
    } finally {
      fan.level = level;
      fan.eligibleForNext = eligibleForNext;
    }
  };
  // A kept world's figures at the boundary change only for the fans a pass rewrote: a fan the
  // engine did not touch had no demotion at the midnights it passed, so advancing it from the
  // earlier clock gives the same figures. Anything else (another world, another month) counts all.
  const held = workspace.provisional;
  let parts: SnapshotBuilder;
  if (touched && held && held.world === world && held.month === month) {
    parts = held.parts;
    for (const id of touched) {
      const fan = world.fans.get(id);
      if (fan) setAdvanced(parts, fan);
    }
  } else {
    parts = SnapshotBuilder.forBoundary(engine.calendar, boundary);
    for (const fan of world.fans.values()) setAdvanced(parts, fan);
  }
  workspace.provisional = workspace.keepWorld ? { world, month, parts } : null;
  return { month, parts };
}

/**
 * Stores the provisional snapshot of the kept world, if the stored state is still the one it was
 * written as (see Workspace.provisionalWrites 'apart'); its figures are up to date already.
 */
export async function storeProvisional(workspace: Workspace): Promise<void> {
  const cache = workspace.cache;
  if (!cache || provisionalStored.get(cache.world) === cache.appliedSeq) return;
  // Joined before the write lock is taken; the figures are the kept world's, kept current by each pass.
  const provisional = provisionalSnapshot(workspace, cache.world, []);
  const stored = await workspace.store.exclusive(async (tx) => {
    const meta = await tx.loadStateMeta();
    if (meta?.appliedSeq !== cache.appliedSeq || meta.programVersion !== workspace.program.version || workspace.cache !== cache) return false;
    await tx.saveProvisional(provisional);
    return true;
  });
  if (stored) provisionalStored.set(cache.world, cache.appliedSeq);
}

// The log position whose provisional snapshot was stored last, by kept world.
const provisionalStored = new WeakMap<World, number>();

/**
 * The provisional snapshot of the stored state at `appliedSeq`: the stored one, else one from the
 * world this process keeps, else one the deferring writer is asked to store; null when none can
 * be had without a pass over the stored fans.
 */
export async function provisionalFor(workspace: Workspace, appliedSeq: number): Promise<{ month: string; data: string } | null> {
  const stored = (await workspace.store.loadProvisional()) ?? provisionalFromCache(workspace, appliedSeq);
  if (stored || !workspace.askProvisional) return stored;
  await workspace.askProvisional();
  return workspace.store.loadProvisional();
}

/** Applies the whole log from scratch in (ts, id) order, up to `until` when given. */
export async function rebuildWorld(
  workspace: Workspace,
  progress: Progress = silentProgress,
  until?: number,
  store: Store = workspace.store,
  sinceSeq: number | null = null,
): Promise<{ world: World; out: EngineOutput; appliedSeq: number; freshIds: Set<string> }> {
  const { engine, program } = workspace;
  const world = createWorld(program.version);
  const out = engine.newOutput();
  const phases = new PhaseTimer();
  const appliedSeq = await store.maxSeq();
  const freshIds = new Set<string>();
  progress.start(appliedSeq, 'replay');
  let done = 0;
  // Events appended after the position read above belong to the next catch-up. A store inside a
  // transaction is read here: another connection would not see what the transaction wrote.
  for await (const { events, seqs } of readLogInOrder(store, { until, upToSeq: appliedSeq, onWorker: store === workspace.store ? undefined : false })) {
    for (let i = 0; i < events.length; i++) {
      if (sinceSeq !== null && seqs[i] > sinceSeq) freshIds.add(events[i].id);
      engine.apply(world, events[i], out);
    }
    done += events.length;
    if (done % 20_000 < events.length) progress.update(done);
  }
  progress.update(done);
  progress.stop();
  phases.lap('read+parse+engine');
  phases.report('rebuild');
  return { world, out, appliedSeq, freshIds };
}

/** In a rebuild: the events new to the state (by id), and the clock before them (for midnight changes). */
interface FreshFilter {
  ids: Set<string>;
  after: number;
}

export interface CatchUpResult {
  readonly applied: number;
  readonly rebuilt: boolean;
  readonly world: World;
  /** What the pass changed in the stored state (absent where not tracked). */
  readonly change?: StateChange;
  /** The pass stopped short of the end of the log (see CatchUpOptions.maxEvents); another follows. */
  readonly partial?: boolean;
}

export interface CatchUpOptions {
  /** Between slices of this many events, the pass lets the event loop serve other work. */
  yieldEvery?: number;
  /**
   * At most about this many new events per pass (the state is written after each): a pass that
   * writes a few thousand fans holds the store's write lock for tens of milliseconds, where one
   * over a long backlog would hold it for seconds while appends wait. The pass ends at the first
   * point past this count where the events applied are exactly a prefix of the log, so that the
   * next pass continues in order; a backlog without such a point is applied whole.
   */
  maxEvents?: number;
}

/**
 * The stored state moved from position `fromSeq` to `toSeq`, rewriting the rows of `fans` only
 * (null: any fan may have changed, as after a rebuild). Equal positions: nothing changed.
 */
export interface StateChange {
  readonly fromSeq: number;
  readonly toSeq: number;
  readonly fans: readonly string[] | null;
}

/**
 * Brings the stored state up to the end of the log. New events all after the last applied one
 * are applied incrementally; an earlier arrival, a program change or a missing state rebuild
 * from the log.
 *
 * Optimistic: the engine runs without the store's write lock (so appends go on meanwhile, and
 * with `yieldEvery` the event loop serves other requests between slices of events); the lock is
 * taken only to write, after checking that no other writer moved the stored state meanwhile. If
 * one did, the pass starts again from its state; after two such losses it runs under the lock.
 */
export function catchUp(workspace: Workspace, progress: Progress = silentProgress, options: CatchUpOptions = {}): Promise<CatchUpResult> {
  return serialised(workspace, () => catchUpNow(workspace, progress, options));
}

// In one process, the passes over a workspace's world run one after another: the engine mutates
// the cached world in place, and a pass may yield to the event loop.
const passes = new WeakMap<Workspace, Promise<unknown>>();

function serialised<T>(workspace: Workspace, run: () => Promise<T>): Promise<T> {
  const previous = passes.get(workspace) ?? Promise.resolve();
  const next = previous.catch(() => undefined).then(run);
  passes.set(workspace, next);
  return next;
}

async function catchUpNow(workspace: Workspace, progress: Progress, options: CatchUpOptions): Promise<CatchUpResult> {
  for (let attempt = 0; attempt < 2; attempt++) {
    let plan: CatchUpPlan;
    try {
      plan = await planCatchUp(workspace, workspace.store, progress, options.yieldEvery ?? 0, options.maxEvents ?? Number.POSITIVE_INFINITY);
    } catch (error) {
      workspace.cache = null;
      throw error;
    }
    const write = plan.write;
    if (!write) return remember(workspace, plan, false);
    let saved: boolean;
    try {
      saved = await workspace.store.exclusive(async (tx) => {
        const meta = await tx.loadStateMeta();
        if ((meta?.appliedSeq ?? 0) !== plan.fromSeq || (meta?.programVersion ?? null) !== plan.fromProgram) return false;
        await write(tx);
        return true;
      });
    } catch (error) {
      workspace.cache = null;
      throw error;
    }
    if (saved) return remember(workspace, plan, true);
    workspace.cache = null;
  }
  return workspace.store.exclusive((store) => catchUpLocked(workspace, store, progress));
}

function remember(workspace: Workspace, plan: CatchUpPlan, written: boolean): CatchUpResult {
  workspace.cache = workspace.keepWorld ? { world: plan.result.world, appliedSeq: plan.appliedSeq } : null;
  // The rest of the backlog is good for the next pass only once this one's state is stored.
  workspace.backlog = written && workspace.cache ? plan.backlog : null;
  const change: StateChange = written ? { fromSeq: plan.fromSeq, toSeq: plan.appliedSeq, fans: plan.touched } : { fromSeq: plan.appliedSeq, toSeq: plan.appliedSeq, fans: [] };
  return { ...plan.result, change };
}

async function catchUpLocked(workspace: Workspace, store: Store, progress: Progress): Promise<CatchUpResult> {
  try {
    const plan = await planCatchUp(workspace, store, progress, 0, Number.POSITIVE_INFINITY);
    if (plan.write) await plan.write(store);
    return remember(workspace, plan, plan.write !== null);
  } catch (error) {
    workspace.cache = null;
    throw error;
  }
}

/** The cached world when the stored state is still where the cache left it, else the stored one. */
async function currentStoredWorld(workspace: Workspace, store: Store): Promise<{ world: World; appliedSeq: number } | null> {
  const { cache, program } = workspace;
  if (cache) {
    const meta = await store.loadStateMeta();
    if (meta && meta.appliedSeq === cache.appliedSeq && meta.programVersion === program.version) return cache;
    workspace.cache = null;
  }
  return loadStoredWorld(store);
}

/** What a catch-up computed, and how to write it (null: the state was current). */
interface CatchUpPlan {
  /** The stored state's position and program when the pass started. */
  fromSeq: number;
  fromProgram: string | null;
  appliedSeq: number;
  result: CatchUpResult;
  write: ((store: Store) => Promise<void>) | null;
  /** The fans whose rows the write rewrites (null: all, a rebuild). */
  touched: readonly string[] | null;
  /** The events read but left for the next pass (a pass in steps). */
  backlog: Backlog | null;
}

interface SeqEvent {
  readonly seq: number;
  readonly event: FanEvent;
}

/** New events of the log read and sorted by a pass in steps but not applied yet. */
export interface Backlog {
  /** The state position they follow (the seqs up to it are applied). */
  readonly fromSeq: number;
  /** Every event after fromSeq up to this seq is among them. */
  readonly upToSeq: number;
  /** In the order they apply, from `start` (those before it are applied). */
  readonly events: readonly SeqEvent[];
  readonly start: number;
}

const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

/**
 * How many of the new events, in the order they apply, a pass of at most about `maxEvents`
 * applies: the first count ≥ maxEvents whose events are exactly the `count` lowest seqs (a prefix
 * of the log, so a position can say what is applied), else all of them.
 */
export function prefixCut(seqsInApplyOrder: readonly number[], maxEvents: number): number {
  return cutOf(seqsInApplyOrder.length, (index) => seqsInApplyOrder[index], maxEvents);
}

/**
 * prefixCut over `count` seqs read through `seqAt`: the first count ≥ maxEvents whose highest seq
 * is below every later one (seqs are distinct). Linear, so that a long backlog worked off in many
 * passes costs each pass a scan rather than a sort of all of it.
 */
function cutOf(count: number, seqAt: (index: number) => number, maxEvents: number): number {
  if (count <= maxEvents) return count;
  const lowestFrom = new Float64Array(count + 1);
  lowestFrom[count] = Number.POSITIVE_INFINITY;
  for (let i = count - 1; i >= 0; i--) lowestFrom[i] = Math.min(seqAt(i), lowestFrom[i + 1]);
  let highest = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < count; i++) {
    highest = Math.max(highest, seqAt(i));
    if (i + 1 >= maxEvents && highest < lowestFrom[i + 1]) return i + 1;
  }
  return count;
}

/** The held events from `start` and the fresh ones, both in apply order, merged. */
function mergeInOrder(held: readonly SeqEvent[], start: number, fresh: readonly SeqEvent[]): SeqEvent[] {
  const merged: SeqEvent[] = new Array(held.length - start + fresh.length);
  let i = start;
  let j = 0;
  let k = 0;
  while (i < held.length && j < fresh.length) merged[k++] = compareEvents(fresh[j].event, held[i].event) < 0 ? fresh[j++] : held[i++];
  while (i < held.length) merged[k++] = held[i++];
  while (j < fresh.length) merged[k++] = fresh[j++];
  return merged;
}

async function planCatchUp(workspace: Workspace, store: Store, progress: Progress, yieldEvery: number, maxEvents: number): Promise<CatchUpPlan> {
  const { engine, program } = workspace;
  const meta = await store.loadStateMeta();
  const fromSeq = meta?.appliedSeq ?? 0;
  const fromProgram = meta?.programVersion ?? null;
  const maxSeq = await store.maxSeq();
  // A pass in steps starts a workspace without stored state from an empty world, in steps too.
  const loaded = (await currentStoredWorld(workspace, store)) ?? (meta === null && Number.isFinite(maxEvents) ? { world: createWorld(program.version), appliedSeq: 0 } : null);
  const stale = !loaded || loaded.world.programVersion !== program.version || loaded.world.engineVersion !== ENGINE_VERSION;
  if (!stale && loaded.appliedSeq === maxSeq) return { fromSeq, fromProgram, appliedSeq: maxSeq, result: { applied: 0, rebuilt: false, world: loaded.world }, write: null, touched: [], backlog: null };
  let events: FanEvent[] = [];
  let appliedSeq = maxSeq;
  let backlog: Backlog | null = null;
  if (!stale) {
    // Events a previous pass in steps read and left for later, when the state is where it left it.
    const held = workspace.backlog?.fromSeq === loaded.appliedSeq && workspace.backlog.upToSeq <= maxSeq ? workspace.backlog : null;
    const fresh: SeqEvent[] = [];
    for await (const rows of store.readAfter(held ? held.upToSeq : loaded.appliedSeq)) {
      for (const row of rows) if (row.seq <= maxSeq) fresh.push({ seq: row.seq, event: parseStored(row) });
    }
    // The held events are in order already: only the fresh ones are sorted (mostly in order, which
    // the sort finds in one pass), then merged among them in one linear pass.
    fresh.sort((a, b) => compareEvents(a.event, b.event));
    const all = held ? (fresh.length === 0 ? held.events : mergeInOrder(held.events, held.start, fresh)) : fresh;
    const start = held && fresh.length === 0 ? held.start : 0;
    const cut = cutOf(all.length - start, (index) => all[start + index].seq, maxEvents);
    const applied = all.slice(start, start + cut);
    events = applied.map((item) => item.event);
    if (start + cut < all.length) {
      // The applied events are the lowest seqs: the highest of them is the new position.
      appliedSeq = applied.reduce((highest, item) => Math.max(highest, item.seq), Number.NEGATIVE_INFINITY);
      backlog = { fromSeq: appliedSeq, upToSeq: maxSeq, events: all, start: start + cut };
    }
  }
  const world = loaded?.world;
  const inOrder = !stale && world !== undefined && (events.length === 0 || compareEvents(events[0], { ts: world.lastTs, id: world.lastId }) > 0);
  if (!inOrder || !world) {
    workspace.cache = null;
    const sinceSeq = loaded?.appliedSeq ?? 0;
    const rebuilt = await rebuildWorld(workspace, progress, undefined, store, sinceSeq);
    const after = loaded && Number.isFinite(loaded.world.clock) ? loaded.world.clock : Number.NEGATIVE_INFINITY;
    return {
      fromSeq,
      fromProgram,
      appliedSeq: rebuilt.appliedSeq,
      result: { applied: rebuilt.appliedSeq - (loaded?.appliedSeq ?? 0), rebuilt: true, world: rebuilt.world },
      write: (target) => persist(workspace, target, rebuilt.world, rebuilt.out, rebuilt.appliedSeq, true, { fresh: { ids: rebuilt.freshIds, after } }),
      touched: null,
      backlog: null,
    };
  }
  const phases = new PhaseTimer();
  const out = engine.newOutput();
  progress.start(events.length, 'apply');
  // From here the world differs from the stored one until it is written.
  workspace.cache = null;
  const clockBefore = world.clock;
  for (let i = 0; i < events.length; i++) {
    engine.apply(world, events[i], out);
    if (i % 20_000 === 0) progress.update(i);
    if (yieldEvery > 0 && i % yieldEvery === yieldEvery - 1) await nextTurn();
  }
  progress.update(events.length);
  progress.stop();
  // The touched fans are serialised here, outside the write lock, in slices like the events.
  const rows: FanRow[] = [];
  for (const id of out.touched) {
    rows.push(fanRow(workspace, world, world.fans.get(id) as FanState));
    if (yieldEvery > 0 && rows.length % yieldEvery === 0) await nextTurn();
  }
  // The rest of the write is made ready here too: the lock is then held only to store it.
  const prepared = prepareState(workspace, world, out, appliedSeq, false, { clockBefore, rows });
  phases.lap('engine');
  return {
    fromSeq,
    fromProgram,
    appliedSeq,
    result: { applied: events.length, rebuilt: false, world, partial: appliedSeq < maxSeq },
    touched: [...out.touched],
    backlog,
    write: async (target) => {
      await prepared.write(target);
      phases.lap('save');
      phases.report('apply');
    },
  };
}

export interface StreamingApply {
  /** The accepted events of one appended chunk: applied now while they continue the log in order. */
  offer(events: FanEvent[]): void;
  /**
   * Stores what was applied, or, if the log moved otherwise, catches up from it. With `writer`,
   * the state is written through it when the log did not move.
   */
  finish(progress: Progress, writer?: StateWriter | null): Promise<CatchUpResult | null>;
}

/**
 * Applies an import chunk by chunk while its events keep coming after the last applied one (a
 * file in ts order), so the import never holds the whole file. Out-of-order arrival or another
 * writer switches to catching up from the log at the end.
 */
export async function startStreamingApply(workspace: Workspace): Promise<StreamingApply> {
  const { store, engine } = workspace;
  const startSeq = await store.maxSeq();
  const loaded = (await isCurrent(workspace)) ? await loadStoredWorld(store) : null;
  let world: World | null = loaded ? loaded.world : startSeq === 0 ? createWorld(workspace.program.version) : null;
  const startClock = world ? world.clock : Number.NEGATIVE_INFINITY;
  workspace.cache = null;
  const out = engine.newOutput();
  const blocks: PostingBlock[] = [];
  // Postings leave `out` as encoded blocks; their notifications are taken first.
  const wanted = await store.subscribedTypes();
  const postingNotices: Notification[] = [];
  let applied = 0;
  let offered = 0;
  return {
    offer(events) {
      offered += events.length;
      if (!world || events.length === 0) return;
      const sorted = [...events].sort(compareEvents);
      if (compareEvents(sorted[0], { ts: world.lastTs, id: world.lastId }) <= 0) {
        world = null; // arrived before the last applied event: the end rebuilds from the log
        return;
      }
      for (const event of sorted) engine.apply(world, event, out);
      applied += sorted.length;
      // Encoded postings take a fraction of the memory of posting objects.
      if (out.postings.length >= POSTINGS_PER_BLOCK) {
        const full = out.postings.length - (out.postings.length % POSTINGS_PER_BLOCK);
        postingNotices.push(...postingNotifications(out.postings.slice(0, full), wanted));
        blocks.push(...encodePostingBlocks(out.postings.slice(0, full)));
        out.postings.splice(0, full);
      }
    },
    async finish(progress, writer) {
      if (offered === 0 && (await isCurrent(workspace))) return null;
      const extra = { postingBlocks: blocks, earlier: postingNotices, clockBefore: startClock };
      if (world && writer) {
        // Written by the other connection while this thread serialises the fans. The subscriptions
        // are read just before that connection takes its lock, not under it. The posting blocks
        // are handed over one by one and dropped here, so that they are not held twice; the
        // state can then no longer be written here, and if the log moved, it is caught up from it.
        const handedOver = function* (): Generator<PostingBlock> {
          for (let block = blocks.shift(); block !== undefined; block = blocks.shift()) yield block;
        };
        const prepared = prepareState(workspace, world, out, startSeq + applied, false, { ...extra, postingBlocks: handedOver() });
        const state = { ...prepared.state, notifications: prepared.notifications(await store.subscribedTypes()) };
        const outcome = await writer.write({ appliedSeq: loaded?.appliedSeq ?? 0, maxSeq: startSeq + applied }, state);
        if (outcome === 'saved') {
          prepared.stored();
          return { applied, rebuilt: false, world };
        }
        world = null;
      }
      return store.exclusive(async (tx) => {
        const meta = await tx.loadStateMeta();
        const untouched = (meta?.appliedSeq ?? 0) === (loaded?.appliedSeq ?? 0) && (await tx.maxSeq()) === startSeq + applied;
        if (world && untouched) {
          await persist(workspace, tx, world, out, startSeq + applied, false, extra);
          return { applied, rebuilt: false, world };
        }
        world = null;
        return catchUpLocked(workspace, tx, progress);
      });
    },
  };
}

/**
 * Runs `run` as the workspace's one state writer, with the world current with the whole log:
 * decisions that read balances (a payout run) and append what they decided, with no other
 * writer in between. `run` may change the world it is given (it is not kept).
 */
export function underStateLock<T>(workspace: Workspace, run: (tx: Store, world: World) => Promise<T>): Promise<T> {
  return serialised(workspace, () =>
    workspace.store.exclusive(async (tx) => {
      const { world } = await catchUpLocked(workspace, tx, silentProgress);
      workspace.cache = null;
      return run(tx, world);
    }),
  );
}

/**
 * The world as it was, or will be, at `asOf`: the current state advanced through the midnights
 * up to `asOf`, or for an earlier instant a replay of the log up to it. Never written back.
 */
export async function worldAt(workspace: Workspace, asOf: number): Promise<World> {
  const world = await serialised(workspace, async () => {
    const current = (await catchUpNow(workspace, silentProgress, {})).world;
    // The caller changes this world (the clock below): it is no longer the stored one.
    if (workspace.cache?.world === current) workspace.cache = null;
    return current;
  });
  if (asOf >= world.clock) {
    workspace.engine.advanceClock(world, asOf, workspace.engine.newOutput());
    return world;
  }
  const replayed = (await rebuildWorld(workspace, silentProgress, asOf)).world;
  workspace.engine.advanceClock(replayed, asOf, workspace.engine.newOutput());
  return replayed;
}
