/**
 * The program: the rules as configuration (PRODUCT §1.3). A YAML file validated by one zod schema,
 * with every error reported at its line and path.
 */
import { LineCounter, parseDocument, isNode } from 'yaml';
import { z } from 'zod';
import { COUNT_FACTS, collectWindows, type Condition } from './conditions.js';
import { isValidTimeZone } from './calendar.js';
import { parseTimestamp } from './events.js';
import defaultProgramText from './default-program-text.js';

const countCondition = z.strictObject({
  fact: z.enum(COUNT_FACTS as [string, ...string[]]),
  windowDays: z.number().int().positive().max(3650).optional(),
  gte: z.number().int().nonnegative().optional(),
  lte: z.number().int().nonnegative().optional(),
  eq: z.number().int().nonnegative().optional(),
});
const recognizedCondition = z.strictObject({ fact: z.literal('recognized'), eq: z.boolean() });
const profileCondition = z.strictObject({
  profile: z.string().min(1),
  gte: z.number().optional(),
  lte: z.number().optional(),
  eq: z.union([z.string(), z.number()]).optional(),
  in: z.array(z.union([z.string(), z.number()])).optional(),
});
export const conditionSchema: z.ZodType<Condition> = z.lazy(() =>
  z.union([
    z.strictObject({ all: z.array(conditionSchema).min(1) }),
    z.strictObject({ any: z.array(conditionSchema).min(1) }),
    z.strictObject({ not: conditionSchema }),
    recognizedCondition,
    countCondition,
    profileCondition,
  ]),
) as z.ZodType<Condition>;

const levelSchema = z.strictObject({
  level: z.number().int().min(1).max(5),
  name: z.string().min(1),
  pointsMultiplier: z.number().positive().max(100),
  benefits: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])).default({}),
  entry: conditionSchema.optional(),
  maintain: conditionSchema.optional(),
});

/** An amount of money in the currency's main unit, at most 2 decimals (kept exact as minor units). */
const money = z
  .number()
  .nonnegative()
  .refine((value) => Math.abs(value * 100 - Math.round(value * 100)) < 1e-6, { message: 'at most 2 decimals' });
const percent = z.number().nonnegative().max(100);

/** Above this depth a referral tree is treated as a pyramid scheme in China (≥ 3 levels, ≥ 30 people). */
export const MAX_REFERRAL_DEPTH = 3;

const catalogItemSchema = z.strictObject({
  id: z.string().min(1),
  points: z.number().int().positive(),
  title: z.string(),
  /** Units available in all (null: unlimited). */
  stock: z.number().int().nonnegative().nullable().default(null),
  /** Redemptions one fan may make (null: unlimited). */
  perFanLimit: z.number().int().positive().nullable().default(null),
  minLevel: z.number().int().min(1).max(5).default(1),
});

const referralSchema = z.strictObject({
  /** false: referrals are attributed and counted (levels, reports) but pay nothing and issue no codes. */
  enabled: z.boolean().default(true),
  depth: z
    .number()
    .int()
    .min(1)
    .max(MAX_REFERRAL_DEPTH, { message: `referral depth is at most ${MAX_REFERRAL_DEPTH} levels: China treats 3 or more levels with 30 or more people as a pyramid scheme` })
    .default(2),
  qualifyOn: z.enum(['purchase', 'follow']).default('purchase'),
  codeSalt: z.string().default(''),
  link: z.string().default('https://example.com/r/{code}'),
  poster: z.string().default('{name} invites you: follow with code {code} and get a {coupon} coupon. {link}'),
  refereeCoupon: money.default(20),
  referrerReward: money.default(20),
  commission: z
    .strictObject({
      firstPurchasePercent: percent.default(10),
      repurchasePercent: percent.default(5),
      repurchases: z.number().int().nonnegative().default(3),
      indirectPercent: z.array(percent).max(MAX_REFERRAL_DEPTH - 1).default([2]),
    })
    .prefault({}),
  refundWindowDays: z.number().int().nonnegative().max(365).default(7),
  milestones: z
    .array(z.strictObject({ referrals: z.number().int().positive(), reward: money, badges: z.array(z.string().min(1)).default([]) }))
    .default([
      { referrals: 3, reward: 50, badges: [] },
      { referrals: 5, reward: 150, badges: ['koc-certified'] },
      { referrals: 10, reward: 500, badges: ['core-group', 'product-tester', 'referral-expert'] },
    ]),
  /** Task fission (seed 002): bring N genuinely new followers with your code between two instants. */
  campaigns: z
    .array(
      z.strictObject({
        id: z.string().min(1),
        title: z.string().default(''),
        from: z.string().refine((text) => typeof parseTimestamp(text) === 'number', { message: 'must be RFC 3339 with an offset' }),
        to: z.string().refine((text) => typeof parseTimestamp(text) === 'number', { message: 'must be RFC 3339 with an offset' }),
        newFollowers: z.number().int().positive(),
        rewardPoints: z.number().int().nonnegative().default(0),
        rewardCash: money.default(0),
      }),
    )
    .default([]),
  fraud: z
    .strictObject({
      selfReferral: z.boolean().default(true),
      sharedDevice: z.boolean().default(true),
      burst: z.strictObject({ referrals: z.number().int().min(2), minutes: z.number().int().positive() }).nullable().default({ referrals: 5, minutes: 10 }),
      /** Hold a referral's cash when the referee did nothing between the follow and the end of the refund window. */
      neverActed: z.boolean().default(true),
      /** Hold a referral whose qualifying purchase is no more than the referee's coupon (it may have bought only with it). */
      couponOnly: z.boolean().default(false),
      /** Hold a referral at the end of a chain of this many fans who each bought once, only to qualify, and referred only the next. */
      ring: z.strictObject({ chain: z.number().int().min(3) }).nullable().default({ chain: 4 }),
    })
    .prefault({}),
});

const dailySchema = z.strictObject({ points: z.number().int().nonnegative(), capPerDay: z.number().int().nonnegative() });
const DAILY_TYPES = ['checkin', 'view', 'like', 'collect', 'comment', 'share', 'message'] as const;
const ONE_TIME_COUNTERS = ['profileComplete', 'interactions', 'purchases', 'qualifiedReferrals', 'selectedContents'] as const;

export const programSchema = z
  .strictObject({
    name: z.string().min(1).default('custom'),
    timezone: z
      .string()
      .default('Asia/Shanghai')
      .refine(isValidTimeZone, { message: 'unknown IANA time zone' }),
    currency: z.string().min(1).default('CNY'),
    levels: z.array(levelSchema).length(5),
    demotion: z.strictObject({ graceDays: z.number().int().nonnegative() }),
    points: z.strictObject({
      daily: z.partialRecord(z.enum(DAILY_TYPES), dailySchema),
      weekly: z.strictObject({
        nthInteraction: z.strictObject({ n: z.number().int().positive(), points: z.number().int().nonnegative() }),
        firstPurchaseShare: z.strictObject({ points: z.number().int().nonnegative() }),
        firstReferralQualified: z.strictObject({ points: z.number().int().nonnegative() }),
      }),
      perEvent: z.strictObject({
        purchasePercent: z.number().nonnegative().max(100),
        referralPurchasePercent: z.number().nonnegative().max(100),
        contentFirstSelected: z.number().int().nonnegative(),
      }),
      oneTime: z.array(
        z.strictObject({
          id: z.string().min(1),
          counter: z.enum(ONE_TIME_COUNTERS),
          reach: z.number().int().positive(),
          points: z.number().int().nonnegative(),
        }),
      ),
      profileCompleteFields: z.array(z.string().min(1)).min(1),
      catalog: z.array(catalogItemSchema),
    }),
    layers: z.strictObject({
      windowDays: z.number().int().positive(),
      core: conditionSchema,
      backbone: conditionSchema,
      general: conditionSchema,
    }),
    tags: z.strictObject({
      interactionFrequency: z.strictObject({ windowDays: z.number().int().positive(), highGte: z.number().int(), mediumGte: z.number().int() }),
      consumptionLevel: z.strictObject({ windowDays: z.number().int().positive(), highGte: z.number(), mediumGte: z.number() }),
      churnRisk: z.strictObject({ mediumAfterDays: z.number().int().positive(), highAfterDays: z.number().int().positive() }),
      loyalty: z.strictObject({
        monthlyDecay: z.number().gt(0).lt(1),
        weights: z.record(z.string(), z.number().nonnegative()),
      }),
      koc: z.strictObject({ reachGt: z.number().nonnegative() }),
      portraits: z.array(z.strictObject({ id: z.string().min(1), name: z.string(), when: conditionSchema })),
    }),
    health: z.strictObject({ cac: z.number().nonnegative().nullable().default(null) }),
    referral: referralSchema.prefault({}),
  })
  .superRefine((program, ctx) => {
    program.levels.forEach((level, index) => {
      if (level.level !== index + 1) {
        ctx.addIssue({ code: 'custom', path: ['levels', index, 'level'], message: `levels must be listed 1 to 5; expected ${index + 1}` });
      }
      if (index > 0 && !level.entry) {
        ctx.addIssue({ code: 'custom', path: ['levels', index, 'entry'], message: 'levels 2–5 need an entry condition' });
      }
    });
    // History is kept for the longest window only; "ever" counts exist for these facts.
    const everCounts = new Set(['interactions', 'purchases', 'qualifiedReferrals', 'selectedContents']);
    const checkEver = (cond: Condition, path: (string | number)[]): void => {
      if ('all' in cond) cond.all.forEach((child, i) => checkEver(child, [...path, 'all', i]));
      else if ('any' in cond) cond.any.forEach((child, i) => checkEver(child, [...path, 'any', i]));
      else if ('not' in cond) checkEver(cond.not, [...path, 'not']);
      else if ('fact' in cond && cond.fact !== 'recognized' && cond.windowDays === undefined && !everCounts.has(cond.fact)) {
        ctx.addIssue({ code: 'custom', path: [...path, 'windowDays'], message: `${cond.fact} needs windowDays (no count "ever" is kept)` });
      }
    };
    program.levels.forEach((level, i) => {
      if (level.entry) checkEver(level.entry, ['levels', i, 'entry']);
      if (level.maintain) checkEver(level.maintain, ['levels', i, 'maintain']);
    });
    for (const layer of ['core', 'backbone', 'general'] as const) checkEver(program.layers[layer], ['layers', layer]);
    const referral = program.referral;
    if (referral.commission.indirectPercent.length > referral.depth - 1) {
      ctx.addIssue({
        code: 'custom',
        path: ['referral', 'commission', 'indirectPercent'],
        message: `pays ${referral.commission.indirectPercent.length} level(s) above the referrer, but referral.depth ${referral.depth} allows ${referral.depth - 1}`,
      });
    }
    referral.milestones.forEach((milestone, i) => {
      // Recruitment alone never pays: a milestone reward needs referrals that bought.
      if (referral.qualifyOn === 'follow' && milestone.reward > 0) {
        ctx.addIssue({ code: 'custom', path: ['referral', 'milestones', i, 'reward'], message: 'must be 0 when referrals qualify on follow: recruiting alone must not pay beyond the one-time reward' });
      }
    });
    const campaignIds = new Set<string>();
    referral.campaigns.forEach((campaign, i) => {
      if (campaignIds.has(campaign.id)) ctx.addIssue({ code: 'custom', path: ['referral', 'campaigns', i, 'id'], message: `duplicate campaign ${campaign.id}` });
      campaignIds.add(campaign.id);
      const from = parseTimestamp(campaign.from);
      const to = parseTimestamp(campaign.to);
      if (typeof from === 'number' && typeof to === 'number' && to <= from) ctx.addIssue({ code: 'custom', path: ['referral', 'campaigns', i, 'to'], message: 'must be after from' });
    });
    const itemIds = new Set<string>();
    program.points.catalog.forEach((item, i) => {
      if (itemIds.has(item.id)) ctx.addIssue({ code: 'custom', path: ['points', 'catalog', i, 'id'], message: `duplicate catalog item ${item.id}` });
      itemIds.add(item.id);
    });
    if (program.tags.churnRisk.highAfterDays <= program.tags.churnRisk.mediumAfterDays) {
      ctx.addIssue({ code: 'custom', path: ['tags', 'churnRisk', 'highAfterDays'], message: 'must be greater than mediumAfterDays' });
    }
  });

export type ProgramSpec = z.infer<typeof programSchema>;

/** A validated program with its version (a content hash computed at the edge) and derived limits. */
export interface Program extends ProgramSpec {
  readonly version: string;
  /** The longest count window any rule reads: how much per-fan history the engine keeps. */
  readonly historyDays: number;
}

export interface ProgramIssue {
  readonly path: string;
  readonly line: number | null;
  readonly message: string;
}

export type ProgramParseResult =
  | { readonly ok: true; readonly spec: ProgramSpec }
  | { readonly ok: false; readonly issues: ProgramIssue[] };

function formatPath(path: readonly PropertyKey[]): string {
  return path.reduce<string>((out, key) => (typeof key === 'number' ? `${out}[${key}]` : out ? `${out}.${String(key)}` : String(key)), '');
}

/**
 * A program is parsed once per process (or per activation), so zod's compiled fast path, which
 * pays off only over many parses, would cost a process more than it saves: a cold parse takes
 * about 12 ms without it and 29 ms with it.
 */
const ONCE = { jitless: true } as const;

/** Parses and validates program YAML; every problem carries its line (1-based) and path. */
export function parseProgram(text: string): ProgramParseResult {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false });
  if (doc.errors.length > 0) {
    return {
      ok: false,
      issues: doc.errors.map((error) => ({
        path: '(yaml)',
        line: lineCounter.linePos(error.pos[0]).line,
        message: error.message.split('\n')[0],
      })),
    };
  }
  const result = programSchema.safeParse(doc.toJS() ?? {}, ONCE);
  if (result.success) return { ok: true, spec: result.data };
  const lineOf = (path: readonly PropertyKey[]): number | null => {
    for (let length = path.length; length >= 0; length--) {
      const node = doc.getIn(path.slice(0, length) as unknown[], true);
      if (isNode(node) && node.range) return lineCounter.linePos(node.range[0]).line;
    }
    return null;
  };
  return {
    ok: false,
    issues: result.error.issues.map((issue) => ({
      path: formatPath(issue.path) || '(root)',
      line: lineOf(issue.path),
      message: issue.message,
    })),
  };
}

/**
 * A digest of programSchema's output shape: types, bounds and defaults (test/program.test.ts
 * derives it from the schema and fails until it is updated here). A spec stored under the same
 * digest was produced by this very schema, so reading it back needs no second parse.
 */
export const PROGRAM_SCHEMA_DIGEST = '553b05de8b8dee5f';

/** A validated spec as the store keeps it: its JSON, marked with the schema's digest. */
export function storedSpecJson(spec: ProgramSpec): string {
  return JSON.stringify({ ...spec, $schema: PROGRAM_SCHEMA_DIGEST });
}

/**
 * A stored spec back. One stored under another schema (an older fanflow, or before specs were
 * marked) is parsed again, so that sections added since get their defaults.
 */
export function parseStoredSpec(json: string): ProgramSpec {
  const { $schema, ...spec } = JSON.parse(json) as Record<string, unknown>;
  return $schema === PROGRAM_SCHEMA_DIGEST ? (spec as ProgramSpec) : (programSchema.parse(spec, ONCE) as ProgramSpec);
}

/** Completes a validated spec with its version and derived limits. */
export function compileProgram(spec: ProgramSpec, version: string): Program {
  const windows = new Set<number>([spec.layers.windowDays, spec.tags.interactionFrequency.windowDays]);
  for (const level of spec.levels) {
    if (level.entry) collectWindows(level.entry, windows);
    if (level.maintain) collectWindows(level.maintain, windows);
  }
  for (const cond of [spec.layers.core, spec.layers.backbone, spec.layers.general]) collectWindows(cond, windows);
  return { ...spec, version, historyDays: Math.max(...windows) };
}

export const DEFAULT_PROGRAM_YAML: string = defaultProgramText;
