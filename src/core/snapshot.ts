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

/** A snapshot's per-fan figures as character arrays indexed by fan number, before joining. */
export interface SnapshotParts {
  readonly at: number;
  readonly monthStart: number;
  readonly layers: string[];
  readonly levels: string[];
  readonly active: string[];
  readonly purchases365: string[];
}

export function emptySnapshotParts(calendar: Calendar, at: number): SnapshotParts {
  return { at, monthStart: calendar.startOfMonth(calendar.monthKey(at - 1)), layers: [], levels: [], active: [], purchases365: [] };
}

/** Sets (or replaces) one fan's figures at the parts' instant. */
export function setSnapshotFan(parts: SnapshotParts, fan: FanState, program: Program): void {
  const { at, monthStart } = parts;
  parts.layers[fan.no] = layerCode(fan, program, at);
  parts.levels[fan.no] = String(fan.level);
  parts.active[fan.no] = fan.lastActivityTs !== null && fan.lastActivityTs >= monthStart && fan.lastActivityTs <= at ? '1' : '0';
  parts.purchases365[fan.no] = String(Math.min(2, countPurchases(fan, at, 365)));
}

export function joinSnapshot(parts: SnapshotParts, world: World): Snapshot {
  const join = (chars: string[]) => Array.from(chars, (char) => char ?? '-').join('');
  return {
    at: parts.at,
    layers: join(parts.layers),
    levels: join(parts.levels),
    active: join(parts.active),
    purchases365: join(parts.purchases365),
    revenueToDateMinor: world.revenueToDateMinor,
    buyersToDate: world.buyersToDate,
  };
}

/** Figures at instant `at` for the month containing `at − 1 ms` (the month that just ended). */
export function takeSnapshot(world: World, program: Program, calendar: Calendar, at: number, fans: Iterable<FanState> = world.fans.values()): Snapshot {
  const parts = emptySnapshotParts(calendar, at);
  for (const fan of fans) setSnapshotFan(parts, fan, program);
  return joinSnapshot(parts, world);
}
