/**
 * Serialises the derived state for the store. JSON cannot hold −∞ or NaN, which the state uses
 * for "nothing yet"; they are written as null and restored on load.
 */
import type { FanState, Order, Snapshot, World } from '../core/state.js';
import { createFan, createWorld } from '../core/state.js';

// Fan states are stored positionally (format 1): the values in the key order of createFan, with
// orders and recent postings as tuples. Key names made up about half of the JSON otherwise.
const FORMAT = 1;
// A fan as createFan makes it: loaded fans are copies of it (its shape, none of its arrays' cost).
const FAN_TEMPLATE = createFan('', 0, 0);
const FAN_KEYS = Object.keys(FAN_TEMPLATE) as (keyof FanState)[];
const ORDER_KEYS: (keyof Order)[] = ['orderId', 'ts', 'amountMinor', 'refundedMinor', 'series', 'pointsAwarded', 'pointsReversed', 'referrer', 'referrerPointsAwarded', 'referrerPointsReversed', 'cash'];

export function serializeFan(fan: FanState): string {
  const values: unknown[] = [FORMAT];
  for (const key of FAN_KEYS) {
    if (key === 'orders') values.push(fan.orders.map((order) => ORDER_KEYS.map((k) => order[k])));
    else if (key === 'recentPostings') values.push(fan.recentPostings.map((p) => [p.ts, p.points, p.rule, p.eventId]));
    else values.push(fan[key]);
  }
  return JSON.stringify(values);
}

/**
 * An order from its tuple (ORDER_KEYS order), written out as one literal: objects built key by key
 * from entries were slower to make and, in V8's dictionary mode, to read.
 */
function orderOf(tuple: unknown[]): Order {
  return {
    orderId: tuple[0] as string,
    ts: tuple[1] as number,
    amountMinor: tuple[2] as number,
    refundedMinor: tuple[3] as number,
    series: tuple[4] as string | null,
    pointsAwarded: tuple[5] as number,
    pointsReversed: tuple[6] as number,
    referrer: tuple[7] as string | null,
    referrerPointsAwarded: tuple[8] as number,
    referrerPointsReversed: tuple[9] as number,
    cash: tuple[10] as [string, number][],
  };
}

export function deserializeFan(text: string): FanState {
  const values = JSON.parse(text) as unknown[];
  if (values[0] !== FORMAT) throw new Error(`invariant: unknown fan state format ${String(values[0])}`);
  // Filled into a copy of createFan's fan, so that a loaded fan has the shape of one the engine made:
  // sixty-odd keys added one by one to an empty object leave it in V8's slow dictionary mode,
  // which cost every later read of the fan (loading and classifying took about a third longer).
  const fan = { ...FAN_TEMPLATE } as unknown as Record<string, unknown>;
  for (let index = 0; index < FAN_KEYS.length; index++) {
    const key = FAN_KEYS[index];
    const value = values[index + 1];
    if (key === 'orders') fan.orders = (value as unknown[][]).map(orderOf);
    else if (key === 'recentPostings') fan.recentPostings = (value as [number, number, string, string][]).map(([ts, points, rule, eventId]) => ({ ts, points, rule, eventId }));
    else fan[key] = value;
  }
  const state = fan as unknown as FanState;
  if (state.loyaltyLog === null) state.loyaltyLog = Number.NEGATIVE_INFINITY;
  if (state.dailyKey === null) state.dailyKey = Number.NaN;
  if (state.weekKey === null) state.weekKey = Number.NaN;
  return state;
}

export function serializeWorldMeta(world: World): string {
  const { fans: _fans, orders: _orders, highLevel: _high, snapshots: _snapshots, codes: _codes, ...meta } = world;
  return JSON.stringify(meta);
}

export function restoreWorld(metaText: string, fanTexts: Iterable<string>, snapshots: Iterable<{ month: string; data: string }>): World {
  const meta = JSON.parse(metaText) as Omit<World, 'fans' | 'orders' | 'highLevel' | 'snapshots' | 'codes'>;
  const world = createWorld(meta.programVersion);
  Object.assign(world, meta);
  // A state written before engine versions were recorded is of no known version.
  if (meta.engineVersion === undefined) world.engineVersion = 0;
  if (meta.clock === null) world.clock = Number.NEGATIVE_INFINITY;
  if (meta.lastTs === null) world.lastTs = Number.NEGATIVE_INFINITY;
  for (const text of fanTexts) {
    const fan = deserializeFan(text);
    world.fans.set(fan.id, fan);
    if (fan.code) world.codes.set(fan.code, fan.id);
    for (const order of fan.orders) world.orders.set(order.orderId, fan.id);
    if (fan.level >= 4 && fan.lockedLevel === null) world.highLevel.add(fan.id);
  }
  for (const { month, data } of snapshots) world.snapshots[month] = JSON.parse(data) as Snapshot;
  return world;
}

/** A canonical text of the whole derived state, for comparing an incremental run with a replay. */
export function fingerprintWorld(world: World): string[] {
  const lines = [serializeWorldMeta(world)];
  for (const fan of world.fans.values()) lines.push(serializeFan(fan));
  for (const month of Object.keys(world.snapshots).sort()) lines.push(`${month}:${JSON.stringify(world.snapshots[month])}`);
  return lines;
}
