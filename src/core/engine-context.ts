/**
 * What the engine's rule modules share: the calendar, level multipliers, month figures and the
 * points posting that also counts the month's points earned.
 */
import { type Calendar } from './calendar.js';
import type { EngineOutput } from './engine-output.js';
import type { FanEvent } from './events.js';
import { postPoints } from './ledger.js';
import type { Program } from './program.js';
import { emptyMonthStats, type FanState, type MonthStats, type World } from './state.js';

export interface EngineContext {
  readonly program: Program;
  readonly calendar: Calendar;
  readonly multipliers: readonly number[];
  /** Points × the multiplier of the fan's current level, floored. */
  multiplied(fan: FanState, points: number): number;
  monthOf(world: World, ts: number): MonthStats;
  monthStart(ts: number): number;
  /** Posts a signed points movement for a fan caused by `event`. */
  award(world: World, fan: FanState, points: number, rule: string, event: FanEvent, out: EngineOutput): void;
  /**
   * Per high-level fan, the instant before which a midnight cannot demote it unless its facts
   * change (see maintenanceSteadyUntil): kept beside the world, never stored, so that a world
   * read back from the store checks every such fan at its first midnight.
   */
  steadyUntil(world: World): Map<string, number>;
  /** Forgets the fan's steady instant: its facts changed by an event, not by time. */
  factsChanged(world: World, fanId: string): void;
}

export function createEngineContext(program: Program, calendar: Calendar): EngineContext {
  const multipliers = program.levels.map((level) => level.pointsMultiplier);
  const monthStartCache = new Map<string, number>();

  const multiplied = (fan: FanState, points: number) => Math.floor(points * multipliers[fan.level - 1] + 1e-9);
  const monthKeyByDay = new Map<number, string>();
  const monthKeyOf = (ts: number): string => {
    const day = calendar.dayIndex(ts);
    let key = monthKeyByDay.get(day);
    if (key === undefined) {
      key = calendar.monthKey(ts);
      monthKeyByDay.set(day, key);
    }
    return key;
  };
  const monthOf = (world: World, ts: number): MonthStats => {
    const key = monthKeyOf(ts);
    let stats = world.months[key];
    if (!stats) {
      stats = emptyMonthStats();
      world.months[key] = stats;
      if (world.firstMonth === null || key < world.firstMonth) world.firstMonth = key;
    }
    return stats;
  };
  const monthStart = (ts: number): number => {
    const key = monthKeyOf(ts);
    let start = monthStartCache.get(key);
    if (start === undefined) {
      start = calendar.startOfMonth(key);
      monthStartCache.set(key, start);
    }
    return start;
  };

  const award = (world: World, fan: FanState, points: number, rule: string, event: FanEvent, out: EngineOutput) => {
    const posting = postPoints(world, fan, points, rule, event.id, event.ts, out.postings);
    if (posting && points > 0) monthOf(world, event.ts).pointsEarned += points;
  };

  const steady = new WeakMap<World, Map<string, number>>();
  const steadyUntil = (world: World): Map<string, number> => {
    let until = steady.get(world);
    if (!until) {
      until = new Map();
      steady.set(world, until);
    }
    return until;
  };
  const factsChanged = (world: World, fanId: string) => {
    steady.get(world)?.delete(fanId);
  };

  return { program, calendar, multipliers, multiplied, monthOf, monthStart, award, steadyUntil, factsChanged };
}
