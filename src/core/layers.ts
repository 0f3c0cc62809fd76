/**
 * Layers (PRODUCT §3.3): as of an instant, over the program's window, tested in order.
 */
import { evaluateCondition } from './conditions.js';
import { factsOf, fanPredicate, fanShortfall } from './facts.js';
import type { Program } from './program.js';
import type { FanState, LayerName } from './state.js';

export interface LayerVerdict {
  readonly layer: LayerName;
  readonly reasons: string[];
}

/**
 * @example computeLayer(fan, program, Date.parse('2026-11-01T00:00:00+08:00'))
 * // → { layer: 'backbone', reasons: ['interactions in 90 d = 14 ≥ 10', 'purchases in 90 d = 1 ≥ 1'] }
 */
export function computeLayer(fan: FanState, program: Program, at: number): LayerVerdict {
  if (fan.follow === 2) return { layer: 'unfollowed', reasons: ['the last follow/unfollow is an unfollow'] };
  const facts = factsOf(fan, at);
  const core = evaluateCondition(program.layers.core, facts);
  if (core.ok) return { layer: 'core', reasons: core.reasons };
  const backbone = evaluateCondition(program.layers.backbone, facts);
  if (backbone.ok) return { layer: 'backbone', reasons: backbone.reasons };
  const general = evaluateCondition(program.layers.general, facts);
  if (general.ok) return { layer: 'general', reasons: general.reasons };
  return { layer: 'observation', reasons: [`no activity in ${program.layers.windowDays} d (${general.reasons.join(', ')})`] };
}

/** The layer alone, without reasons: the engine's hot path. */
export function classifyLayer(fan: FanState, program: Program, at: number): LayerName {
  if (fan.follow === 2) return 'unfollowed';
  if (fanPredicate(program.layers.core)(fan, at)) return 'core';
  if (fanPredicate(program.layers.backbone)(fan, at)) return 'backbone';
  if (fanPredicate(program.layers.general)(fan, at)) return 'general';
  return 'observation';
}

/** How far a fan is from a layer's condition: the sum of missing counts (0 = meets it). */
export function distanceTo(fan: FanState, program: Program, layer: 'core' | 'backbone', at: number): number {
  return fanShortfall(program.layers[layer])(fan, at);
}
