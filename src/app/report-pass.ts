/**
 * Reports past the stored state's clock without holding every fan: one pass over the stored fans,
 * a page at a time, advancing each over the midnights after the clock (its demotions counted in
 * the month of their midnight), taking its figures at each month boundary on the way, and keeping
 * only the fans that can still be on a list of fans to act on. Memory stays at a few bytes per fan
 * and boundary, where loading the world costs kilobytes per fan (a million fans did not fit in the
 * default heap).
 */
import { computeActionLists } from '../core/analysis.js';
import type { Calendar } from '../core/calendar.js';
import { SnapshotBuilder } from '../core/snapshot.js';
import { ENGINE_VERSION, emptyMonthStats, type FanState, type Snapshot, type World } from '../core/state.js';
import { deserializeFan, restoreWorld } from './serialize.js';
import { engineVersionOf, silentProgress, type Workspace } from './workspace.js';

/** The stored state advanced past its clock: what a report of an ended month needs from it. */
export interface AdvancedBoundaries {
  /** The program version and log position of the stored state the pass read. */
  readonly key: string;
  readonly seq: number;
  /** The instant every fan was advanced to. */
  readonly through: number;
  /** Month key → figures at the month's first instant, for each month boundary in (clock, through]. */
  readonly snapshots: Record<string, Snapshot>;
  /** Month key → demotions at its midnights in (clock, through]. */
  readonly demotions: Record<string, number>;
}

export interface PassResult extends AdvancedBoundaries {
  /** Figures at `through` itself (asked for when a month is still running then). */
  readonly live: Snapshot | null;
  /** The fans on the lists of fans to act on at `through` (asked for by `actions`). */
  readonly actionFans: FanState[];
}

/** Month keys whose first instant lies in (from, to]. */
function boundariesBetween(calendar: Calendar, from: number, to: number): string[] {
  const keys: string[] = [];
  for (let key = calendar.nextMonthKey(calendar.monthKey(from)); calendar.startOfMonth(key) <= to; key = calendar.nextMonthKey(key)) keys.push(key);
  return keys;
}

/**
 * Fans read per store call: other requests of a server are served between pages. Small pages keep
 * the fans being advanced in the young generation of the heap (2,000 per page doubled the time in
 * garbage collection at a million fans).
 */
const PAGE_FANS = 250;

/**
 * One pass over the stored fans of `workspace`, advancing each to `through`, inside one read of the
 * store (Store.readConsistently): the state's position, world and every fan come from the same
 * moment, whatever the engine writes meanwhile. The fans are read a page at a time with the event
 * loop let through between pages. Null when the stored state is not of the workspace's program
 * and engine, or its clock is after `through`.
 */
export async function passOverStoredFans(workspace: Workspace, through: number, options: { live?: boolean; actions?: boolean } = {}): Promise<(PassResult & { world: World }) | null> {
  const { engine, program } = workspace;
  const { calendar } = engine;
  return workspace.store.readConsistently(async (store) => {
    const meta = await store.loadStateMeta();
    if (!meta || meta.programVersion !== program.version || engineVersionOf(meta.world) !== ENGINE_VERSION) return null;
    const world = restoreWorld(meta.world, [], await store.readSnapshots());
    const clock = world.clock;
    if (through < clock) return null;
    const keys = Number.isFinite(clock) ? boundariesBetween(calendar, clock, through) : [];
    const builders = keys.map((key) => SnapshotBuilder.forBoundary(calendar, calendar.startOfMonth(key)));
    const live = options.live ? SnapshotBuilder.forBoundary(calendar, through) : null;
    const demotions: Record<string, number> = {};
    const countDemotion = (boundary: number) => {
      const key = calendar.monthKey(boundary);
      demotions[key] = (demotions[key] ?? 0) + 1;
    };
    let kept: FanState[] = [];
    const progress = workspace.progress ?? silentProgress;
    progress.start(await store.countFans(), 'report');
    let done = 0;
    for (let afterNo = -1; ; ) {
      const rows = await store.pageFans({ afterNo, limit: PAGE_FANS });
      if (rows.length === 0) break;
      afterNo = rows[rows.length - 1].no;
      const pool: FanState[] = options.actions ? kept : [];
      for (const row of rows) {
        const fan = deserializeFan(row.state);
        let from = clock;
        for (const builder of builders) {
          engine.advanceFan(fan, from, builder.at, countDemotion);
          builder.set(fan, program);
          from = builder.at;
        }
        engine.advanceFan(fan, from, through, countDemotion);
        live?.set(fan, program);
        if (options.actions) pool.push(fan);
      }
      if (options.actions) {
        // The top of each list over (kept ∪ page) is the top over every fan read so far.
        const lists = computeActionLists(pool, engine, through);
        const onLists = new Set(Object.values(lists).flat());
        kept = pool.filter((fan) => onLists.has(fan.id));
      }
      progress.update((done += rows.length));
      if (rows.length < PAGE_FANS) break;
      await new Promise((resolve) => setImmediate(resolve));
    }
    progress.stop();
    const snapshots: Record<string, Snapshot> = {};
    keys.forEach((key, index) => (snapshots[key] = builders[index].finish(world)));
    return { key: program.version, seq: meta.appliedSeq, through, snapshots, demotions, live: live?.finish(world) ?? null, actionFans: kept, world };
  });
}

/**
 * Puts what a pass found into `world` (restored without fans from the state the pass read): the
 * snapshots of boundaries up to `upTo`, and the demotions of each month whose midnights up to
 * `upTo` the pass counted completely.
 */
export function mergeAdvanced(world: World, advanced: AdvancedBoundaries, calendar: Calendar, upTo: number): void {
  for (const [key, snapshot] of Object.entries(advanced.snapshots)) if (snapshot.at <= upTo && !world.snapshots[key]) world.snapshots[key] = snapshot;
  const counted = Math.min(upTo, advanced.through);
  for (const [key, count] of Object.entries(advanced.demotions)) {
    const complete = calendar.startOfMonth(calendar.nextMonthKey(key)) <= counted || upTo === advanced.through;
    if (!complete) continue;
    const stats = (world.months[key] ??= emptyMonthStats());
    stats.demotions += count;
  }
}

/**
 * Completes `world` (restored without fans from the stored state at `seq`) with the boundary that
 * ends the month before `endKey` when that month ended after the state's clock and by `asOf`: from
 * the boundaries a process holds when they cover it, else from a pass through `asOf`, held for later
 * reports. Leaves `world` as it is when the stored state moved away from `seq` during the pass.
 */
export async function completeMonthEnd(workspace: Workspace, world: World, seq: number, endKey: string, asOf: number): Promise<void> {
  const { calendar } = workspace.engine;
  const monthEnd = calendar.startOfMonth(endKey);
  if (world.snapshots[endKey] || monthEnd > asOf || monthEnd <= world.clock) return;
  if (!heldAdvanced(workspace, seq, monthEnd)) {
    const pass = await passOverStoredFans(workspace, asOf);
    if (pass) holdAdvanced(workspace, pass);
  }
  const held = heldAdvanced(workspace, seq, monthEnd);
  if (held) mergeAdvanced(world, held, calendar, asOf);
}

/** The boundaries the process holds for the stored state at `seq`, if they reach `needed`. */
export function heldAdvanced(workspace: Workspace, seq: number, needed = Number.NEGATIVE_INFINITY): AdvancedBoundaries | null {
  const held = workspace.advanced;
  return held && held.key === workspace.program.version && held.seq === seq && held.through >= needed ? held : null;
}

/** Keeps what a pass found for later reports, unless the process holds a pass that covers more. */
export function holdAdvanced(workspace: Workspace, pass: AdvancedBoundaries): void {
  const { key, seq, through, snapshots, demotions } = pass;
  if (!heldAdvanced(workspace, seq, through)) workspace.advanced = { key, seq, through, snapshots, demotions };
}
