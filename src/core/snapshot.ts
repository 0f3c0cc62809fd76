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

/** The first instant of the month that a boundary at `at` ends. */
function monthStartBefore(calendar: Calendar, at: number): number {
  return calendar.startOfMonth(calendar.monthKey(at - 1));
}

/** Whether the fan had activity in the month from `monthStart` up to `at`. */
function activeInMonth(fan: FanState, monthStart: number, at: number): boolean {
  return fan.lastActivityTs !== null && fan.lastActivityTs >= monthStart && fan.lastActivityTs <= at;
}

/** Purchases in the 365 days up to `at`, capped at 2 (what the repurchase figures need). */
function purchaseBucket(fan: FanState, at: number): number {
  return Math.min(2, countPurchases(fan, at, 365));
}

function snapshotOf(at: number, layers: string, levels: string, active: string, purchases365: string, world: World): Snapshot {
  return { at, layers, levels, active, purchases365, revenueToDateMinor: world.revenueToDateMinor, buyersToDate: world.buyersToDate };
}

const DASH = 0x2d;

/**
 * A snapshot built fan by fan in one byte per fan and figure (an array of strings costs eight
 * times the memory and twice the time): a fan set again replaces its figures.
 */
export class SnapshotBuilder {
  private size = 0;
  private bytes: Uint8Array[] = [];

  constructor(
    readonly at: number,
    private readonly monthStart: number,
  ) {
    this.grow(1024);
  }

  static forBoundary(calendar: Calendar, at: number): SnapshotBuilder {
    return new SnapshotBuilder(at, monthStartBefore(calendar, at));
  }

  private grow(capacity: number): void {
    this.bytes = [0, 1, 2, 3].map((index) => {
      const next = new Uint8Array(capacity).fill(DASH);
      if (this.bytes[index]) next.set(this.bytes[index]);
      return next;
    });
  }

  set(fan: FanState, program: Program): void {
    const { at, monthStart } = this;
    if (fan.no >= this.bytes[0].length) this.grow(Math.max(fan.no + 1, this.bytes[0].length * 2));
    const [layers, levels, active, purchases] = this.bytes;
    layers[fan.no] = layerCode(fan, program, at).charCodeAt(0);
    levels[fan.no] = 0x30 + fan.level;
    active[fan.no] = activeInMonth(fan, monthStart, at) ? 0x31 : 0x30;
    purchases[fan.no] = 0x30 + purchaseBucket(fan, at);
    if (fan.no >= this.size) this.size = fan.no + 1;
  }

  finish(world: World): Snapshot {
    // The bytes are ASCII codes, which latin1 decodes one to one.
    const decoder = new TextDecoder('latin1');
    const text = (bytes: Uint8Array) => decoder.decode(bytes.subarray(0, this.size));
    const [layers, levels, active, purchases] = this.bytes;
    return snapshotOf(this.at, text(layers), text(levels), text(active), text(purchases), world);
  }
}

/** Figures at instant `at` for the month containing `at − 1 ms` (the month that just ended). */
export function takeSnapshot(world: World, program: Program, calendar: Calendar, at: number, fans: Iterable<FanState> = world.fans.values()): Snapshot {
  // One byte per fan and figure: a string per fan and figure, joined at the end, took twice as long.
  const builder = SnapshotBuilder.forBoundary(calendar, at);
  for (const fan of fans) builder.set(fan, program);
  return builder.finish(world);
}
