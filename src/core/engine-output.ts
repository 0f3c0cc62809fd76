/**
 * What the engine produces besides the new state: ledger postings, derived events, touched fans.
 */
import type { LevelChange } from './levels.js';
import type { LayerName, Posting } from './state.js';

export type DerivedEvent =
  | { type: 'LevelChanged'; fan: string; ts: number; eventId: string | null; from: number; to: number; kind: LevelChange['kind'] }
  | { type: 'LayerChanged'; fan: string; ts: number; eventId: string; from: LayerName; to: LayerName }
  | { type: 'ReferralQualified'; fan: string; referee: string; ts: number; eventId: string }
  | { type: 'ReferralHeld'; fan: string; referee: string; ts: number; eventId: string; reasons: string[] }
  | { type: 'Lv5Eligible'; fan: string; ts: number; eventId: string }
  | { type: 'BadgeGranted' | 'BadgeRevoked'; fan: string; ts: number; eventId: string; badge: string }
  | { type: 'Inapplicable'; fan: string | null; ts: number; eventId: string; reason: string };

export interface EngineOutput {
  postings: Posting[];
  derived: DerivedEvent[];
  /** Fans whose state changed: what a store must write back. */
  touched: Set<string>;
}
