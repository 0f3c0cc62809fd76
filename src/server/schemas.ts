/**
 * The API's shapes as zod schemas: they validate requests and generate the OpenAPI document.
 * The event schema is generated from the engine's event table (src/core/events.ts), the one
 * source of what each type carries; the engine's own validator gives the per-event verdicts.
 */
import { z } from '@hono/zod-openapi';
import { CHANNELS, REVIEW_DECISIONS, EVENT_TYPE_NAMES, EVENT_TYPES, type PropKind, type PropSpec } from '../core/events.js';
import { LAYER_NAMES } from '../core/state.js';
import { WEBHOOK_EVENT_TYPES } from '../store/store.js';

const PROP_SCHEMAS: Record<PropKind, () => z.ZodType> = {
  id: () => z.string().min(1),
  string: () => z.string(),
  amount: () => z.union([z.number(), z.string()]).openapi({ description: 'RMB (or the program currency), at most 2 decimals; a decimal string keeps exactness' }),
  score0to10: () => z.number().int().min(0).max(10),
  score1to5: () => z.number().int().min(1).max(5),
  integer: () => z.number().int(),
  level: () => z.union([z.number().int().min(1).max(5), z.null()]),
  contentKind: () => z.enum(['purchase_share', 'experience', 'note', 'question']),
  profileValue: () => z.union([z.string(), z.number(), z.null()]),
  positiveInteger: () => z.number().int().min(1),
  reviewDecision: () => z.enum(REVIEW_DECISIONS),
};

function propsSchema(spec: Record<string, PropSpec>): z.ZodType {
  const shape: Record<string, z.ZodType> = {};
  for (const [name, prop] of Object.entries(spec)) shape[name] = prop.required ? PROP_SCHEMAS[prop.kind]() : PROP_SCHEMAS[prop.kind]().optional();
  return z.looseObject(shape);
}

/** One event of PRODUCT §2, one variant per type (for the document; verdicts come from the engine). */
export const EventSchema = z
  .union(
    EVENT_TYPE_NAMES.map((type) =>
      z
        .object({
          id: z.string().min(1).openapi({ description: 'Unique per workspace; the idempotency key', example: 'e-0000001' }),
          type: z.literal(type),
          fan: type === 'post' ? z.string().min(1).nullable().optional() : z.string().min(1),
          ts: z.union([z.string(), z.number()]).openapi({ description: 'RFC 3339 with offset, or epoch milliseconds', example: '2026-10-01T09:30:00+08:00' }),
          channel: z.enum(CHANNELS).nullable().optional(),
          props: propsSchema((EVENT_TYPES as Record<string, Record<string, PropSpec>>)[type]).optional(),
        })
        .openapi(`Event_${type}`),
    ) as unknown as [z.ZodType, z.ZodType, ...z.ZodType[]],
  )
  .openapi('Event');

export const MAX_BATCH = 5000;

export const IngestRequestSchema = z
  .object({
    events: z.array(z.unknown()).openapi({ description: `Up to ${MAX_BATCH} events (see the Event schema); each gets its own verdict`, type: 'array', items: { $ref: '#/components/schemas/Event' } }),
  })
  .openapi('IngestRequest');

export const IngestResultSchema = z
  .object({
    id: z.string().nullable(),
    status: z.enum(['accepted', 'duplicate', 'conflict', 'rejected']),
    reason: z.string().optional().openapi({ description: 'For rejected: the first issue as `field: reason`' }),
    issues: z.array(z.object({ field: z.string(), reason: z.string() })).optional(),
  })
  .openapi('IngestResult');

export const IngestResponseSchema = z.object({ results: z.array(IngestResultSchema) }).openapi('IngestResponse');

export const ProblemSchema = z
  .object({
    type: z.string(),
    title: z.string(),
    status: z.number().int(),
    code: z.string(),
    detail: z.string().optional(),
    issues: z.array(z.object({ field: z.string(), reason: z.string() })).optional(),
    instance: z.string().optional(),
  })
  .openapi('Problem');

export const FanViewSchema = z
  .looseObject({
    id: z.string(),
    level: z.looseObject({
      level: z.number().int(),
      name: z.string(),
      locked: z.boolean(),
      eligibleForNext: z.boolean(),
      reasons: z.array(z.string()),
      next: z.looseObject({ level: z.number().int(), name: z.string(), missing: z.array(z.string()), met: z.array(z.string()) }).nullable(),
    }),
    layer: z.object({ layer: z.enum(LAYER_NAMES as unknown as [string, ...string[]]), reasons: z.array(z.string()) }),
    points: z.object({ balance: z.number(), recent: z.array(z.looseObject({})) }),
    referrer: z.string().nullable(),
    qualifiedReferrals: z.number().int(),
    churnRisk: z.string(),
    tags: z.record(z.string(), z.union([z.string(), z.number(), z.boolean(), z.null()])),
    badges: z.array(z.string()),
    firstSeen: z.string(),
    lastActivity: z.string().nullable(),
    programVersion: z.string(),
    asOf: z.string(),
  })
  .openapi('Fan', { description: 'The object of `fanflow fan ID --json`' });

export const FanPageSchema = z
  .object({ items: z.array(FanViewSchema), nextCursor: z.string().nullable() })
  .openapi('FanPage');

export const ReportSchema = z
  .looseObject({
    month: z.string(),
    asOf: z.string(),
    partial: z.boolean(),
    programVersion: z.string(),
    layers: z.record(z.string(), z.looseObject({})),
    indicators: z.array(z.looseObject({})),
    maturity: z.looseObject({ level: z.number().int() }),
    signals: z.array(z.looseObject({})),
    actions: z.looseObject({}),
  })
  .openapi('Report', { description: 'The object of `fanflow report --json` (PRODUCT §4)' });

export const ProgramSchema = z
  .object({ version: z.string(), yaml: z.string(), activatedAt: z.string().nullable() })
  .openapi('Program');

export const ProgramRequestSchema = z.object({ yaml: z.string().min(1).max(1_000_000) }).openapi('ProgramRequest');

export const ProgramCheckSchema = z
  .object({
    ok: z.boolean(),
    version: z.string().nullable(),
    issues: z.array(z.object({ path: z.string(), message: z.string(), line: z.number().int().nullable().optional() })),
  })
  .openapi('ProgramCheck');

export const OPERATOR_ACTIONS = ['recognize', 'lock_level', 'unlock_level', 'grant_badge', 'revoke_badge', 'adjust_points'] as const;

export const ActionRequestSchema = z
  .object({
    action: z.enum(OPERATOR_ACTIONS),
    level: z.number().int().min(1).max(5).optional().openapi({ description: 'lock_level: the level to hold' }),
    badge: z.string().min(1).max(200).optional().openapi({ description: 'grant_badge, revoke_badge' }),
    points: z.number().int().min(-1_000_000).max(1_000_000).optional().openapi({ description: 'adjust_points: signed amount' }),
    note: z.string().max(2000).optional(),
    requestId: z.string().min(1).max(200).optional().openapi({ description: 'Idempotency key: the same id again records nothing new' }),
  })
  .openapi('OperatorAction');

export const ActionResponseSchema = z
  .object({ event: z.looseObject({ id: z.string(), type: z.string() }), status: z.enum(['accepted', 'duplicate', 'conflict']), fan: FanViewSchema })
  .openapi('OperatorActionResult');

export const WebhookRequestSchema = z
  .object({
    url: z.string().min(1).max(2000).openapi({ example: 'https://crm.example.com/hooks/fanflow' }),
    events: z.array(z.string()).min(1).openapi({ description: `Any of: ${WEBHOOK_EVENT_TYPES.join(', ')}` }),
  })
  .openapi('WebhookRequest');

export const WebhookSchema = z
  .object({ id: z.string(), workspace: z.string(), url: z.string(), types: z.array(z.enum(WEBHOOK_EVENT_TYPES)), createdAt: z.string() })
  .openapi('Webhook');

export const WebhookCreatedSchema = WebhookSchema.extend({ secret: z.string().openapi({ description: 'HMAC-SHA256 key of the Fanflow-Signature header; shown only here' }) }).openapi('WebhookCreated');

export const DeliverySchema = z
  .object({ seq: z.number().int(), subscription: z.string(), url: z.string(), type: z.string(), attempts: z.number().int(), lastError: z.string().nullable(), createdAt: z.string(), payload: z.looseObject({}) })
  .openapi('Delivery');

const money = z.number().openapi({ description: 'In the currency\'s main unit (RMB), exact to 2 decimals' });

export const RedemptionRequestSchema = z
  .object({
    requestId: z.string().min(1).max(200).openapi({ description: 'Idempotency key: the same id again returns the first outcome', example: 'order-778-redeem' }),
    fan: z.string().min(1).max(500),
    item: z.string().min(1).max(200).openapi({ example: 'coupon-20' }),
  })
  .openapi('RedemptionRequest');

export const RedemptionSchema = z
  .object({
    status: z.literal('redeemed'),
    requestId: z.string(),
    fan: z.string(),
    item: z.string(),
    points: z.number().int(),
    balance: z.number().int().openapi({ description: 'Points left after this redemption' }),
    eventId: z.string(),
    at: z.string(),
  })
  .openapi('Redemption');

export const ReferralSchema = z
  .looseObject({
    fan: z.string(),
    codes: z.array(z.string()),
    link: z.string(),
    poster: z.string(),
    referrer: z.string().nullable(),
    referees: z.array(z.looseObject({ fan: z.string(), depth: z.number().int().min(1).max(3), qualified: z.boolean() })),
    qualifiedReferrals: z.number().int(),
    cash: z.object({ pending: money, available: money, paid: money, voided: money, held: money }),
    coupons: money,
    badges: z.array(z.string()),
    asOf: z.string(),
  })
  .openapi('Referral');

export const ReviewItemSchema = z
  .object({ referee: z.string(), referrer: z.string(), reasons: z.array(z.string()), pending: money, held: money, attributedAt: z.string().nullable() })
  .openapi('ReferralReview');

export const ReviewDecisionSchema = z.object({ decision: z.enum(['release', 'void']) }).openapi('ReviewDecision');

export const PayoutRequestSchema = z
  .object({
    payoutId: z.string().regex(/^[\w.:-]{1,64}$/).openapi({ description: 'The run id; the same id again pays nothing twice', example: '2026-10' }),
    at: z.union([z.string(), z.number()]).optional().openapi({ description: 'Pay cash available at this instant (default now)' }),
  })
  .openapi('PayoutRequest');

export const PayoutSchema = z
  .object({
    payoutId: z.string(),
    at: z.string(),
    currency: z.string(),
    fans: z.number().int(),
    total: money,
    lines: z.array(z.object({ fan: z.string(), code: z.string(), amount: money, eventId: z.string() })),
    already: z.boolean(),
  })
  .openapi('PayoutRun');

export const LedgerCheckSchema = z
  .object({
    ok: z.boolean(),
    assets: z.array(z.object({ asset: z.string(), sum: z.number() })),
    negativeAccounts: z.array(z.object({ account: z.string(), asset: z.string(), balance: z.number() })),
    mismatchedFans: z.array(z.object({ fan: z.string(), account: z.string(), ledger: z.number(), state: z.number() })),
  })
  .openapi('LedgerCheck');

export const AuditSchema = z
  .object({
    fan: z.string(),
    balances: z.record(z.string(), z.number()),
    lines: z.array(
      z.object({ seq: z.number().int(), at: z.string(), asset: z.string(), account: z.string(), change: z.number(), balance: z.number(), rule: z.string(), eventId: z.string(), eventType: z.string().nullable() }),
    ),
  })
  .openapi('LedgerAudit');
