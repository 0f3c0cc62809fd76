/**
 * Serialises the derived state for the store. JSON cannot hold −∞ or NaN, which the state uses
 * for "nothing yet"; they are written as null and restored on load.
 */
import type { FanState, Snapshot, World } from '../core/state.js';
import { createWorld } from '../core/state.js';

export function serializeFan(fan: FanState): string {
  return JSON.stringify(fan);
}

export function deserializeFan(text: string): FanState {
  const fan = JSON.parse(text) as FanState;
  if (fan.loyaltyLog === null) fan.loyaltyLog = Number.NEGATIVE_INFINITY;
  if (fan.dailyKey === null) fan.dailyKey = Number.NaN;
  if (fan.weekKey === null) fan.weekKey = Number.NaN;
  return fan;
}

export function serializeWorldMeta(world: World): string {
  const { fans: _fans, orders: _orders, highLevel: _high, snapshots: _snapshots, ...meta } = world;
  return JSON.stringify(meta);
}

export function restoreWorld(metaText: string, fanTexts: Iterable<string>, snapshots: Iterable<{ month: string; data: string }>): World {
  const meta = JSON.parse(metaText) as Omit<World, 'fans' | 'orders' | 'highLevel' | 'snapshots'>;
  const world = createWorld(meta.programVersion);
  Object.assign(world, meta);
  if (meta.clock === null) world.clock = Number.NEGATIVE_INFINITY;
  if (meta.lastTs === null) world.lastTs = Number.NEGATIVE_INFINITY;
  for (const text of fanTexts) {
    const fan = deserializeFan(text);
    world.fans.set(fan.id, fan);
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
