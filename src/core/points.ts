/**
 * Points rules (PRODUCT §3.2): daily lines with caps, weekly once-per-ISO-week lines, one-time
 * awards when a counter first reaches a value.
 */
import type { EngineContext } from './engine-context.js';
import type { EngineOutput } from './engine-output.js';
import type { FanEvent } from './events.js';
import { countFact } from './facts.js';
import type { FanState, World } from './state.js';

/** Floor of amountMinor × percent % × multiplier, in points (1 point per main currency unit). */
export function percentPoints(amountMinor: number, percent: number, multiplier: number): number {
  const percentBps = Math.round(percent * 100);
  const multiplierMilli = Math.round(multiplier * 1000);
  return Math.floor((amountMinor * percentBps * multiplierMilli) / 1_000_000_000);
}

export interface PointRules {
  checkOneTime(world: World, fan: FanState, counter: string, event: FanEvent, out: EngineOutput): void;
  enterWeek(fan: FanState, ts: number): void;
  weeklyOnce(world: World, fan: FanState, rule: string, points: number, event: FanEvent, out: EngineOutput): void;
  dailyPoints(world: World, fan: FanState, event: FanEvent, out: EngineOutput): void;
}

export function createPointRules(context: EngineContext): PointRules {
  const { program, calendar, award, multiplied } = context;
  const oneTimeCounter = (fan: FanState, counter: string, at: number): number => {
    switch (counter) {
      case 'profileComplete':
        return program.points.profileCompleteFields.every((field) => fan.profile[field] !== undefined) ? 1 : 0;
      case 'interactions':
        return fan.interactionsEver;
      case 'purchases':
        return countFact(fan, 'purchases', at, null);
      case 'qualifiedReferrals':
        return fan.qualifiedReferralTs.length;
      case 'selectedContents':
        return fan.selectedCount;
      default:
        return 0;
    }
  };
  const checkOneTime = (world: World, fan: FanState, counter: string, event: FanEvent, out: EngineOutput) => {
    for (const rule of program.points.oneTime) {
      if (rule.counter !== counter || fan.awarded.includes(rule.id)) continue;
      if (oneTimeCounter(fan, counter, event.ts) >= rule.reach) {
        fan.awarded.push(rule.id);
        award(world, fan, rule.points, `oneTime:${rule.id}`, event, out);
      }
    }
  };
  const enterWeek = (fan: FanState, ts: number) => {
    const week = calendar.weekIndex(ts);
    if (week !== fan.weekKey) {
      fan.weekKey = week;
      fan.weekInteractions = 0;
      fan.weekAwarded = [];
    }
  };
  const weeklyOnce = (world: World, fan: FanState, rule: string, points: number, event: FanEvent, out: EngineOutput) => {
    enterWeek(fan, event.ts);
    if (fan.weekAwarded.includes(rule)) return;
    fan.weekAwarded.push(rule);
    award(world, fan, multiplied(fan, points), `weekly:${rule}`, event, out);
  };
  const dailyZero: Record<string, number> = Object.fromEntries(Object.keys(program.points.daily).map((type) => [type, 0]));
  // The rule names postings carry, made once instead of per award.
  const dailyRule: Record<string, string> = Object.fromEntries(Object.keys(program.points.daily).map((type) => [type, `daily:${type}`]));
  const dailyPoints = (world: World, fan: FanState, event: FanEvent, out: EngineOutput) => {
    const rule = program.points.daily[event.type as keyof typeof program.points.daily];
    if (!rule) return;
    const day = calendar.dayIndex(event.ts);
    if (day !== fan.dailyKey) {
      fan.dailyKey = day;
      // Every rewarded type present from the start: one object shape for all fans.
      fan.dailyRewarded = { ...dailyZero };
    }
    const rewarded = fan.dailyRewarded[event.type] ?? 0;
    if (rewarded >= rule.capPerDay) return;
    fan.dailyRewarded[event.type] = rewarded + 1;
    award(world, fan, multiplied(fan, rule.points), dailyRule[event.type], event, out);
  };

  return { checkOneTime, enterWeek, weeklyOnce, dailyPoints };
}
