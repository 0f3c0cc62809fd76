/**
 * What the engine derived, as webhook notifications (PRODUCT §8): level and layer changes, Lv5
 * eligibility, points postings, badges, referral qualifications, inapplicable events. Only the
 * types some subscription wants are built; rebuilds (replay, a new program) notify nothing, since
 * their changes were announced when they first happened.
 */
import type { DerivedEvent } from '../core/engine.js';
import type { Posting } from '../core/state.js';
import type { Notification, WebhookEventType } from '../store/store.js';

const TYPE_OF: Record<DerivedEvent['type'], WebhookEventType> = {
  LevelChanged: 'level.changed',
  LayerChanged: 'layer.changed',
  Lv5Eligible: 'lv5.eligible',
  BadgeGranted: 'badge.granted',
  BadgeRevoked: 'badge.revoked',
  ReferralQualified: 'referral.qualified',
  ReferralHeld: 'referral.held',
  Inapplicable: 'event.inapplicable',
};

const at = (ts: number) => new Date(ts).toISOString();

export function derivedNotifications(derived: readonly DerivedEvent[], wanted: ReadonlySet<WebhookEventType>): Notification[] {
  const notifications: Notification[] = [];
  for (const event of derived) {
    const type = TYPE_OF[event.type];
    if (!wanted.has(type)) continue;
    const { type: _type, ts, ...rest } = event;
    notifications.push({ type, data: { ...rest, at: at(ts) } });
  }
  return notifications;
}

export function postingNotifications(postings: readonly Posting[], wanted: ReadonlySet<WebhookEventType>): Notification[] {
  const points = wanted.has('points.posted');
  const cash = wanted.has('cash.posted');
  if (!points && !cash) return [];
  const notifications: Notification[] = [];
  for (const posting of postings) {
    if (posting.asset === 'points') {
      // The fan's side of the posting: positive when points reach the fan's account.
      if (points) notifications.push({ type: 'points.posted', data: { fan: posting.fan, amount: posting.target === `fan:${posting.fan}` ? posting.amount : -posting.amount, asset: posting.asset, rule: posting.rule, eventId: posting.eventId, seq: posting.seq, at: at(posting.ts) } });
    } else if (cash) {
      // Cash and coupons in the currency's main unit, with both accounts (pending → available, …).
      notifications.push({ type: 'cash.posted', data: { fan: posting.fan, asset: posting.asset, amount: posting.amount / 100, from: posting.source, to: posting.target, rule: posting.rule, eventId: posting.eventId, seq: posting.seq, at: at(posting.ts) } });
    }
  }
  return notifications;
}
