/**
 * Whole-community evaluations as of an instant: the lists of fans to act on and the monthly
 * report assembled from month snapshots and month figures.
 */
import { computeChurnRisk } from './fan-view.js';
import { countFact } from './facts.js';
import { classifyLayer, distanceTo } from './layers.js';
import { isEligibleForTop } from './levels.js';
import type { Engine } from './engine.js';
import { computeReport, type ActionLists, type MonthlyReport } from './report.js';
import { takeSnapshot } from './snapshot.js';
import type { FanState, LayerName, Snapshot, World } from './state.js';
import type { Condition } from './conditions.js';

interface Ranked {
  id: string;
  key: number[];
}

function top(ranked: Ranked[], limit: number): string[] {
  ranked.sort((a, b) => {
    for (let i = 0; i < a.key.length; i++) if (a.key[i] !== b.key[i]) return a.key[i] - b.key[i];
    return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
  });
  return ranked.slice(0, limit).map((entry) => entry.id);
}

/** How many fans each list of fans to act on holds. */
export const ACTION_LIST_LENGTH = 20;

/**
 * The lists of fans an operator should act on first, as of `at` (each sorted, most urgent
 * first), built one fan at a time: a caller that reads fans from the store need not keep them.
 */
export interface ActionListsBuilder {
  /** Ranks the fan; returns its closestToBackbone key (gap, −interactions) when it is General, else null. */
  add(fan: FanState): readonly number[] | null;
  lists(): ActionLists;
}

export function actionListsBuilder(engine: Engine, at: number, limit = ACTION_LIST_LENGTH): ActionListsBuilder {
  const { program } = engine;
  const lists: Record<keyof ActionLists, Ranked[]> = {
    eligibleForTop: [], closestToCore: [], closestToBackbone: [], coreAtRisk: [], slipping: [], observationRecent: [],
  };
  return {
    add(fan) {
      const layer: LayerName = classifyLayer(fan, program, at);
      const interactions = countFact(fan, 'interactions', at, program.layers.windowDays);
      const idleDays = (at - (fan.lastActivityTs ?? fan.firstTs)) / 86_400_000;
      if (fan.level === 4 && isEligibleForTop(fan, program, at)) lists.eligibleForTop.push({ id: fan.id, key: [-interactions] });
      if (layer === 'backbone') lists.closestToCore.push({ id: fan.id, key: [distanceTo(fan, program, 'core', at), -interactions] });
      const general = layer === 'general' ? [distanceTo(fan, program, 'backbone', at), -interactions] : null;
      if (general) lists.closestToBackbone.push({ id: fan.id, key: general });
      if (layer === 'core' || layer === 'backbone') {
        const risk = computeChurnRisk(fan, program, at);
        if (risk !== 'low') {
          lists.slipping.push({ id: fan.id, key: [layer === 'core' ? 0 : 1, -idleDays] });
          if (layer === 'core') lists.coreAtRisk.push({ id: fan.id, key: [-idleDays] });
        }
      }
      if (layer === 'observation') lists.observationRecent.push({ id: fan.id, key: [-(fan.firstFollowTs ?? fan.firstTs)] });
      return general;
    },
    lists: () => ({
      eligibleForTop: top(lists.eligibleForTop, limit),
      closestToCore: top(lists.closestToCore, limit),
      closestToBackbone: top(lists.closestToBackbone, limit),
      coreAtRisk: top(lists.coreAtRisk, limit),
      slipping: top(lists.slipping, limit),
      observationRecent: top(lists.observationRecent, limit),
    }),
  };
}

/** The lists of fans to act on among `fans`, as of `at`. */
export function computeActionLists(fans: Iterable<FanState>, engine: Engine, at: number, limit = ACTION_LIST_LENGTH): ActionLists {
  const builder = actionListsBuilder(engine, at, limit);
  for (const fan of fans) builder.add(fan);
  return builder.lists();
}

/**
 * True when every layer condition only asks for minimum counts: without new events a fan's
 * layer can then only fall as windows slide, so stored layers bound the candidates of each list.
 */
export function hasMonotoneLayers(program: Engine['program']): boolean {
  const monotone = (cond: Condition): boolean => {
    if ('all' in cond) return cond.all.every(monotone);
    if ('any' in cond) return cond.any.every(monotone);
    if ('not' in cond || 'profile' in cond) return false;
    if (cond.fact === 'recognized') return false;
    return cond.lte === undefined && cond.eq === undefined;
  };
  const general = program.layers.general;
  const activityOnly = 'fact' in general && general.fact === 'activity' && general.windowDays === program.layers.windowDays && general.gte === 1;
  return activityOnly && monotone(program.layers.core) && monotone(program.layers.backbone);
}

/**
 * The report of `month` as of `asOf`. The world must already be advanced to `asOf`
 * (engine.advanceClock), so every boundary up to it has its snapshot. `liveEnd`: the figures at
 * `asOf` when the month is still running then, if the caller took them (else taken from the
 * world's fans).
 */
export function evaluateMonthlyReport(world: World, engine: Engine, month: string, asOf: number, actionFans: Iterable<FanState> = world.fans.values(), liveEnd?: Snapshot): MonthlyReport {
  // Whom to act on is a question about now: the lists are as of asOf, whatever the month.
  return monthlyReportWith(world, engine, month, asOf, computeActionLists(actionFans, engine, asOf), liveEnd);
}

/** evaluateMonthlyReport with the lists of fans to act on already made (see actionListsBuilder). */
export function monthlyReportWith(world: World, engine: Engine, month: string, asOf: number, actions: ActionLists, liveEnd?: Snapshot): MonthlyReport {
  const { calendar, program } = engine;
  const monthStart = calendar.startOfMonth(month);
  const nextKey = calendar.nextMonthKey(month);
  const monthEnd = calendar.startOfMonth(nextKey);
  const endAt = Math.min(monthEnd, asOf);
  const start: Snapshot | null = monthStart <= asOf ? world.snapshots[month] ?? null : null;
  const stored = endAt === monthEnd ? world.snapshots[nextKey] : undefined;
  // The end snapshot is live when the month is still running at asOf (or ended after the last event).
  const end = stored ?? (liveEnd && liveEnd.at === endAt ? liveEnd : takeSnapshot(world, program, calendar, endAt));
  return computeReport({
    month,
    asOf: calendar.formatLocal(asOf),
    partial: asOf < monthEnd,
    programVersion: program.version,
    currency: program.currency,
    cac: program.health.cac,
    start,
    end,
    stats: world.months[month],
    previousStats: world.months[calendar.previousMonthKey(month)],
    groupEventsSeen: world.groupEventsSeen,
    actions,
  });
}
