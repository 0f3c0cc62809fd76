/**
 * Month-boundary snapshots: every fan's layer, level, activity and purchase figures at the local
 * midnight that starts a month, the figures the monthly report compares (PRODUCT §4).
 */
import type { Calendar } from './calendar.js';
import { countPurchases } from './facts.js';
import { classifyLayer } from './layers.js';
import type { Program } from './program.js';
import { LAYER_CODES, LAYER_NAMES, type FanState, type Snapshot, type World } from './state.js';

export function layerCode(fan: FanState, program: Program, at: number): string {
  return LAYER_CODES[LAYER_NAMES.indexOf(classifyLayer(fan, program, at))];
}

/** Figures at instant `at` for the month containing `at − 1 ms` (the month that just ended). */
export function takeSnapshot(world: World, program: Program, calendar: Calendar, at: number, fans: Iterable<FanState> = world.fans.values()): Snapshot {
  const monthStart = calendar.startOfMonth(calendar.monthKey(at - 1));
  const layers: string[] = [];
  const levels: string[] = [];
  const active: string[] = [];
  const purchases365: string[] = [];
  for (const fan of fans) {
    layers[fan.no] = layerCode(fan, program, at);
    levels[fan.no] = String(fan.level);
    active[fan.no] = fan.lastActivityTs !== null && fan.lastActivityTs >= monthStart && fan.lastActivityTs <= at ? '1' : '0';
    purchases365[fan.no] = String(Math.min(2, countPurchases(fan, at, 365)));
  }
  const join = (chars: string[]) => Array.from(chars, (char) => char ?? '-').join('');
  return {
    at,
    layers: join(layers),
    levels: join(levels),
    active: join(active),
    purchases365: join(purchases365),
    revenueToDateMinor: world.revenueToDateMinor,
    buyersToDate: world.buyersToDate,
  };
}
