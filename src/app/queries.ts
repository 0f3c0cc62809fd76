/**
 * Read models for the CLI (and later the HTTP API): one fan, a filtered list, a month's report.
 */
import { computeFanView, type FanView } from '../core/fan-view.js';
import { countBelow } from '../core/facts.js';
import { ACTION_LIST_LENGTH, actionListsBuilder, evaluateMonthlyReport, hasMonotoneLayers, monthlyReportWith } from '../core/analysis.js';
import type { MonthlyReport } from '../core/report.js';
import type { FanState, Snapshot, World } from '../core/state.js';
import { NotFoundError, UsageError } from './errors.js';
import { catchUp, currentMeta, provisionalFor, worldAt, type StateChange, type StateMeta, type Workspace } from './workspace.js';
import { completeMonthEnd, holdAdvanced, mergeAdvanced, passOverStoredFans } from './report-pass.js';
import { deserializeFan, restoreWorld } from './serialize.js';
import type { FanOrderQuery } from '../store/store.js';
import type { RanksOf } from '../store/loyalty-ranks.js';

/**
 * The meta of the state a read uses: `current` when the caller has just established it, else
 * the stored state's after catching it up with the log.
 */
async function readableMeta(workspace: Workspace, current?: StateMeta): Promise<StateMeta | null> {
  if (current) return current;
  const meta = await currentMeta(workspace);
  if (meta) return meta;
  await catchUp(workspace);
  return workspace.store.loadStateMeta();
}

// The clock of the last world text read: reads of an unchanged state skip parsing it again.
let lastClock: { world: string; clock: number } | null = null;

/** The clock of a stored state (−∞ when none). */
export function clockOf(meta: { world: string } | null): number {
  if (!meta) return Number.NEGATIVE_INFINITY;
  if (lastClock?.world !== meta.world) lastClock = { world: meta.world, clock: (JSON.parse(meta.world) as { clock: number | null }).clock ?? Number.NEGATIVE_INFINITY };
  return lastClock.clock;
}

function percentile(below: number, total: number): number {
  return total <= 1 ? 100 : Math.round((100 * below) / (total - 1));
}

/** Loyalty scores of every fan in a world: percentile rank of the decayed activity value. */
export function loyaltyScores(world: World): Map<string, number> {
  const ranked = [...world.fans.values()].map((fan) => fan.loyaltyLog).sort((a, b) => a - b);
  const scores = new Map<string, number>();
  for (const fan of world.fans.values()) {
    if (!Number.isFinite(fan.loyaltyLog)) {
      scores.set(fan.id, 0);
      continue;
    }
    scores.set(fan.id, percentile(countBelow(ranked, fan.loyaltyLog), ranked.length));
  }
  return scores;
}

/**
 * One fan as of `asOf`. At or after the stored state's clock this reads one row and runs the
 * fan's own midnights; an earlier instant replays the log up to it. `current`: the meta of a
 * state the caller has just found current (saves checking again).
 */
export async function queryFan(workspace: Workspace, id: string, asOf: number, current?: StateMeta): Promise<FanView> {
  const meta = await readableMeta(workspace, current);
  if (asOf >= clockOf(meta)) {
    const view = await storedFanView(workspace, id, asOf, meta && { appliedSeq: meta.appliedSeq, programVersion: meta.programVersion, clock: clockOf(meta) });
    if (view) return view;
  }
  const past = await worldAt(workspace, asOf);
  const fan = past.fans.get(id);
  if (!fan) throw new NotFoundError(`fan ${JSON.stringify(id)} did not exist at ${new Date(asOf).toISOString()}`);
  return computeFanView(fan, workspace.program, workspace.engine.calendar, asOf, loyaltyScores(past).get(id) ?? 0);
}

/** Where a stored state stands: its log position, its program and its clock. */
export interface StatePosition {
  readonly appliedSeq: number;
  readonly programVersion: string;
  readonly clock: number;
}

/**
 * One fan from the stored state, as of an instant at or after the clock of `position` (null: no
 * state). Null when the state was rewritten meanwhile and its new clock is later than `asOf`: the
 * caller then replays the log up to `asOf`.
 */
export async function storedFanView(workspace: Workspace, id: string, asOf: number, position: StatePosition | null): Promise<FanView | null> {
  const { engine, store, program } = workspace;
  let ranksOf: RanksOf | null = position;
  let clock = position?.clock ?? Number.NEGATIVE_INFINITY;
  let row = await store.loadFan(id);
  if (row && row.appliedSeq !== (position?.appliedSeq ?? null)) {
    // The state was rewritten between reading its position and reading the fan (a server reads
    // the position from its cache): both again, from one snapshot.
    const again = await store.readConsistently(async (reader) => ({ meta: await reader.loadStateMeta(), row: await reader.loadFan(id) }));
    row = again.row;
    ranksOf = again.meta;
    clock = clockOf(again.meta);
    if (asOf < clock) return null;
  }
  if (!row) throw new NotFoundError(`unknown fan ${JSON.stringify(id)}`);
  const fan = deserializeFan(row.state);
  engine.advanceFan(fan, clock, asOf);
  const rank = Number.isFinite(fan.loyaltyLog) ? await store.loyaltyRank(fan.loyaltyLog, ranksOf ?? undefined) : null;
  return computeFanView(fan, program, engine.calendar, asOf, rank === null ? 0 : percentile(rank.below, rank.total));
}

export interface FanFilter {
  layer?: string;
  level?: number;
  tags?: { key: string; value: string }[];
  limit?: number;
}

function tagMatches(view: FanView, key: string, value: string): boolean {
  const actual = key === 'churnRisk' ? view.churnRisk : key === 'layer' ? view.layer.layer : view.tags[key];
  if (actual === undefined) throw new UsageError(`unknown tag ${JSON.stringify(key)}; known: ${Object.keys(view.tags).join(', ')}`);
  return String(actual).toLowerCase() === value.toLowerCase();
}

/** Fans matching the filter as of `asOf`, in fan-number order, without long histories. */
export async function queryFans(workspace: Workspace, filter: FanFilter, asOf: number): Promise<FanView[]> {
  const world = await worldAt(workspace, asOf);
  const scores = loyaltyScores(world);
  const result: FanView[] = [];
  for (const stored of world.fans.values()) {
    if (filter.level !== undefined && stored.level !== filter.level) continue;
    const view = computeFanView(stored, workspace.program, workspace.engine.calendar, asOf, scores.get(stored.id) ?? 0);
    if (filter.layer !== undefined && view.layer.layer !== filter.layer) continue;
    if (filter.tags && !filter.tags.every((tag) => tagMatches(view, tag.key, tag.value))) continue;
    view.points = { balance: view.points.balance, recent: [] };
    result.push(view);
    if (filter.limit !== undefined && result.length >= filter.limit) break;
  }
  return result;
}

/** Stored fans read per page request at most: a page may come back short, with a cursor to go on. */
export const PAGE_SCAN_ROWS = 2000;

/** The fan's loyalty score from the stored ranks. */
async function storedLoyalty(workspace: Workspace, fan: FanState): Promise<number> {
  if (!Number.isFinite(fan.loyaltyLog)) return 0;
  const rank = await workspace.store.loyaltyRank(fan.loyaltyLog);
  return percentile(rank.below, rank.total);
}

/**
 * One page of the fans matching the filter as of `asOf`, in fan-number order after `cursor` (a fan
 * number; 0 for the first page). Reads stored fans in number order, so a page costs at most
 * PAGE_SCAN_ROWS rows whatever the community's size; `next` is null after the last fan.
 */
export async function queryFanPage(workspace: Workspace, filter: FanFilter, asOf: number, cursor: number, limit: number, current?: StateMeta): Promise<{ items: FanView[]; next: number | null }> {
  const { engine, store, program } = workspace;
  const clock = clockOf(await readableMeta(workspace, current));
  const matches = (view: FanView) => filterMatches(filter, view);
  const items: FanView[] = [];
  if (asOf < clock) {
    // A past instant: the world replayed up to it, paged in memory.
    const past = await worldAt(workspace, asOf);
    const scores = loyaltyScores(past);
    const fans = [...past.fans.values()].filter((fan) => fan.no + 1 > cursor);
    let scanned = 0;
    for (const fan of fans) {
      scanned++;
      const view = computeFanView(fan, program, engine.calendar, asOf, scores.get(fan.id) ?? 0);
      if (matches(view)) items.push(brief(view));
      if (items.length >= limit || scanned >= PAGE_SCAN_ROWS) return { items, next: scanned < fans.length ? fan.no + 1 : null };
    }
    return { items, next: null };
  }
  let after = cursor;
  let scanned = 0;
  while (items.length < limit && scanned < PAGE_SCAN_ROWS) {
    const rows = await store.pageFans({ afterNo: after - 1, limit: Math.min(500, PAGE_SCAN_ROWS - scanned) });
    if (rows.length === 0) return { items, next: null };
    for (const row of rows) {
      scanned++;
      after = row.no + 1;
      const fan = deserializeFan(row.state);
      engine.advanceFan(fan, clock, asOf);
      const view = computeFanView(fan, program, engine.calendar, asOf, await storedLoyalty(workspace, fan));
      if (matches(view)) items.push(brief(view));
      if (items.length >= limit) break;
    }
  }
  return { items, next: (await store.pageFans({ afterNo: after - 1, limit: 1 })).length > 0 ? after : null };
}

export interface FanOrder {
  sort: FanOrderQuery['sort'];
  descending: boolean;
}

/**
 * One page of the matching fans in a stored column's order (level or loyalty), after `after`
 * (null for the first page). Like queryFanPage it reads at most PAGE_SCAN_ROWS rows, through the
 * column's index, so a page costs the same on a million fans; the order is the stored state's
 * (the column as of its clock), which a later `asOf` cannot reorder without reading every fan.
 */
export async function queryFanPageSorted(
  workspace: Workspace,
  filter: FanFilter,
  asOf: number,
  order: FanOrder,
  after: FanOrderQuery['after'],
  limit: number,
  current?: StateMeta,
): Promise<{ items: FanView[]; next: FanOrderQuery['after'] }> {
  const { engine, store, program } = workspace;
  const clock = clockOf(await readableMeta(workspace, current));
  if (asOf < clock) throw new UsageError('sorting applies to the current state; leave out asOf (or give an instant after the last event) to sort');
  const items: FanView[] = [];
  // Without new events a fan's level can only fall, so the stored level bounds it from above: in
  // ascending level order, a level filter starts at that level instead of reading every lower one.
  let position = after ?? (order.sort === 'level' && !order.descending && filter.level !== undefined ? { value: filter.level, no: -1 } : null);
  let scanned = 0;
  while (items.length < limit && scanned < PAGE_SCAN_ROWS) {
    const rows = await store.pageFansBy({ ...order, after: position, limit: Math.min(500, PAGE_SCAN_ROWS - scanned) });
    if (rows.length === 0) return { items, next: null };
    for (const row of rows) {
      scanned++;
      position = { value: row.value, no: row.no };
      const fan = deserializeFan(row.state);
      engine.advanceFan(fan, clock, asOf);
      const view = computeFanView(fan, program, engine.calendar, asOf, await storedLoyalty(workspace, fan));
      if (filterMatches(filter, view)) items.push(brief(view));
      if (items.length >= limit) break;
    }
  }
  return { items, next: (await store.pageFansBy({ ...order, after: position, limit: 1 })).length > 0 ? position : null };
}

function filterMatches(filter: FanFilter, view: FanView): boolean {
  return (
    (filter.level === undefined || view.level.level === filter.level) &&
    (filter.layer === undefined || view.layer.layer === filter.layer) &&
    (!filter.tags || filter.tags.every((tag) => tagMatches(view, tag.key, tag.value)))
  );
}

/** A fan in a list: the balance without the recent postings. */
function brief(view: FanView): FanView {
  view.points = { balance: view.points.balance, recent: [] };
  return view;
}

export async function queryReport(workspace: Workspace, month: string, asOf: number, current?: StateMeta): Promise<MonthlyReport> {
  const { calendar } = workspace.engine;
  if (calendar.startOfMonth(month) > asOf) throw new UsageError(`month ${month} starts after --as-of ${new Date(asOf).toISOString()}`);
  return (
    (await reportFromStoredSnapshots(workspace, month, asOf, current)) ??
    (await reportByPass(workspace, month, asOf)) ??
    evaluateMonthlyReport(await worldAt(workspace, asOf), workspace.engine, month, asOf)
  );
}

/**
 * Any month as of an instant at or after the stored state's clock, from one pass over the stored
 * fans (report-pass.ts): a month still running at `asOf`, a program whose layers the fast path
 * cannot bound. Null when `asOf` is before the clock (that state is rebuilt from the log).
 */
async function reportByPass(workspace: Workspace, month: string, asOf: number): Promise<MonthlyReport | null> {
  const { engine } = workspace;
  const running = engine.calendar.startOfMonth(engine.calendar.nextMonthKey(month)) > asOf;
  const pass = await passOverStoredFans(workspace, asOf, { live: running, actions: true });
  if (!pass || !Number.isFinite(pass.world.clock)) return null;
  mergeAdvanced(pass.world, pass, engine.calendar, asOf);
  holdAdvanced(workspace, pass);
  return evaluateMonthlyReport(pass.world, engine, month, asOf, pass.actionFans, pass.live ?? undefined);
}

// The candidate scan below must fill lists as long as the report's.
const LIST_LENGTH = ACTION_LIST_LENGTH;

// A set of candidates held longer than this many fans is read again each time (memory bound);
// so is one after a change that rewrote more than this many fans.
const REUSED_CANDIDATES_MAX = 20_000;
const PATCHED_FANS_MAX = 5_000;

/**
 * The monthly report's Core/Backbone/Lv4 candidates as a process holds them between reports:
 * read at `seq` of the stored state (then patched with the fans rewritten since), advanced to
 * the local day `day`.
 */
export interface HeldCandidates {
  /** The program version they were read under. */
  key: string;
  /** The local day they are advanced to. */
  day: number;
  seq: number;
  fans: Map<string, FanState>;
  /** Fans rewritten since the set was read or last patched: re-read at the next report. */
  pending: Set<string>;
  /** How many times the set was read whole, and patched: what a long-running process saves. */
  reads: number;
  patches: number;
}

/**
 * Records what a catch-up changed, so that the held candidates follow the stored state: the
 * fans it rewrote are re-read at the next report instead of every candidate. A change that does
 * not continue from the held position, or rewrote every fan, drops the set.
 */
export function noteStateChange(workspace: Workspace, change: StateChange | undefined): void {
  const held = workspace.reportCandidates;
  if (!held) return;
  if (change && change.toSeq <= held.seq) return;
  if (!change || change.fans === null || change.fromSeq !== held.seq || held.pending.size + change.fans.length > PATCHED_FANS_MAX) {
    workspace.reportCandidates = null;
    return;
  }
  for (const id of change.fans) held.pending.add(id);
  held.seq = change.toSeq;
}

/**
 * The stored Core/Backbone fans active in the window, and every Lv4 fan, advanced to `asOf`'s day.
 * Advancing applies the day boundaries up to asOf, so the advanced states depend on its local day
 * only; read with the window of that day's first instant (a superset of any later instant's), the
 * set serves every report while the stored state stays at `appliedSeq`, or moves from it through
 * changes noted with noteStateChange (a fan the engine did not rewrite had no demotion at the
 * boundaries it passed, so advancing it from the earlier clock gives the same state). A later day
 * advances the held fans over the midnights in between; an earlier day reads a set of its own.
 * The lists are still evaluated at the exact asOf; the fans read are not changed by that.
 */
async function* coreBackboneCandidates(workspace: Workspace, appliedSeq: number, clock: number, asOf: number): AsyncGenerator<FanState> {
  const { engine, program, store } = workspace;
  const { calendar } = engine;
  const day = calendar.dayIndex(asOf);
  const activeAfter = calendar.startOfDay(day) - program.layers.windowDays * 86_400_000;
  const advanced = (fan: FanState): FanState => {
    engine.advanceFan(fan, clock, asOf);
    return fan;
  };
  const held = workspace.reportCandidates;
  if (held && held.key === program.version && held.seq === appliedSeq && day >= held.day) {
    if (day > held.day) {
      for (const fan of held.fans.values()) engine.advanceFan(fan, calendar.startOfDay(held.day), asOf);
      held.day = day;
    }
    if (held.pending.size > 0) {
      for (const id of held.pending) {
        held.fans.delete(id);
        const row = await store.loadFan(id);
        if (!row) continue;
        const fan = deserializeFan(row.state);
        // What the read below selects on, as stored: layer and last activity, or level.
        const active = fan.lastActivityTs !== null && fan.lastActivityTs > activeAfter;
        if (fan.level === 4 || ((fan.layer === 'core' || fan.layer === 'backbone') && active)) held.fans.set(fan.id, advanced(fan));
      }
      held.pending.clear();
      held.patches++;
    }
    yield* held.fans.values();
    return;
  }
  // A report of an earlier day than the held set's leaves it in place; a process that makes one
  // report holds none, and the fans read go as soon as the caller has looked at them.
  const earlier = held && held.key === program.version && held.seq === appliedSeq && day < held.day;
  let kept: Map<string, FanState> | null = earlier || workspace.holdReportCandidates === false ? null : new Map();
  for await (const states of store.findFanStates({ layers: ['C', 'B'], activeAfter, level: 4 })) {
    for (const state of states) {
      const fan = advanced(deserializeFan(state));
      if (kept) {
        kept.set(fan.id, fan);
        if (kept.size > REUSED_CANDIDATES_MAX) kept = null;
      }
      yield fan;
    }
  }
  if (earlier) return;
  workspace.reportCandidates = kept ? { key: program.version, day, seq: appliedSeq, fans: kept, pending: new Set(), reads: (held?.reads ?? 0) + 1, patches: held?.patches ?? 0 } : null;
}

/**
 * The fast path for a month that ended by the state's clock: its figures come from the stored
 * month snapshots and month totals, and the lists of fans to act on from the few fans that can
 * be on them (stored layer and last activity select them), not from every fan.
 */
async function reportFromStoredSnapshots(workspace: Workspace, month: string, asOf: number, current?: StateMeta): Promise<MonthlyReport | null> {
  const { engine, store, program } = workspace;
  const meta = await readableMeta(workspace, current);
  if (!meta || !hasMonotoneLayers(program)) return null;
  const world = restoreWorld(meta.world, [], await store.readSnapshots());
  const endKey = engine.calendar.nextMonthKey(month);
  const monthEnd = engine.calendar.startOfMonth(endKey);
  if (asOf < world.clock || monthEnd > asOf) return null;
  if (!Number.isFinite(world.clock)) return null;
  if (!world.snapshots[endKey] && engine.calendar.dayIndex(world.clock) >= engine.calendar.dayIndex(monthEnd - 1)) {
    // The month totals hold what happened up to the clock; demotions at the midnights left in the
    // month after it belong to the month too. The provisional end serves from its last day only.
    const provisional = await provisionalFor(workspace, meta.appliedSeq);
    if (provisional?.month === endKey) world.snapshots[endKey] = JSON.parse(provisional.data) as Snapshot;
  }
  // A month that ended after the clock: its boundaries (and the demotions at its midnights) from
  // a pass over the stored fans advanced past the clock, held for the next reports.
  await completeMonthEnd(workspace, world, meta.appliedSeq, endKey, asOf);
  if (!world.snapshots[endKey]) return null;
  const windowStart = asOf - program.layers.windowDays * 86_400_000;
  // Each fan read is looked at once, for the lists and for the scan's bound, and not kept.
  const actions = actionListsBuilder(engine, asOf);
  const seen = new Set<string>();
  // General fans closest to Backbone: read in order of a lower bound of their gap (and an upper
  // bound of their interactions) until no further fan can enter the top of the list.
  const best: [number, number][] = [];
  const use = (fan: FanState) => {
    const key = actions.add(fan);
    if (!key) return;
    best.push([key[0], -key[1]]);
    best.sort((a, b) => a[0] - b[0] || b[1] - a[1]);
    if (best.length > LIST_LENGTH) best.length = LIST_LENGTH;
  };
  const take = (state: string) => {
    const fan = deserializeFan(state);
    if (seen.has(fan.id)) return;
    seen.add(fan.id);
    engine.advanceFan(fan, world.clock, asOf);
    use(fan);
  };
  // Without new events windows only lose events, so a stored Core/Backbone fan is at most that
  // now, a stored General fan at most General: the small Core/Backbone set is read whole.
  for await (const fan of coreBackboneCandidates(workspace, meta.appliedSeq, world.clock, asOf)) {
    seen.add(fan.id);
    use(fan);
  }
  for (const state of await store.findInactiveRecent(windowStart, LIST_LENGTH * 5)) take(state);
  scan: for await (const rows of store.iterateByBackboneGap('G', windowStart)) {
    for (const row of rows) {
      const worst = best.length === LIST_LENGTH ? best[LIST_LENGTH - 1] : null;
      if (worst && (row.backboneGap > worst[0] || (row.backboneGap === worst[0] && row.interactionsInWindow < worst[1]))) break scan;
      take(row.state);
    }
  }
  return monthlyReportWith(world, engine, month, asOf, actions.lists());
}
