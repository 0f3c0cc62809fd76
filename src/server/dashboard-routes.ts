/**
 * Routes the dashboard reads besides those the CLI mirrors: the overview (a month's report with
 * the indicator trend), layer movement, a fan's timeline, and the summary of a program change.
 * Open to API keys too: other tools may want the same figures.
 */
import { createRoute, z, type OpenAPIHono } from '@hono/zod-openapi';
import type { Context } from 'hono';
import { parseMonthKey } from '../core/calendar.js';
import { computeProgramChanges } from '../app/program-diff.js';
import type { KeyScope } from '../store/store.js';
import type { Env, problemResponses as ProblemResponses } from './app.js';
import { ApiProblem } from './problem.js';
import { ProgramRequestSchema, ReportSchema } from './schemas.js';

interface Helpers {
  requireScope(c: Context<Env>, scope: KeyScope): void;
  parseAsOfParam(value: string | undefined): number;
  security: { Bearer: never[] }[];
  problemResponses: typeof ProblemResponses;
}

const TrendPointSchema = z
  .object({
    month: z.string(),
    followers: z.looseObject({ start: z.number(), end: z.number(), new: z.number(), referredNew: z.number(), unfollows: z.number() }),
    layers: z.record(z.string(), z.number()),
    values: z.record(z.string(), z.number().nullable()),
    ok: z.record(z.string(), z.boolean().nullable()),
    maturity: z.number().int(),
    revenue: z.number(),
  })
  .openapi('TrendPoint');

const OverviewSchema = z.object({ report: ReportSchema, trend: z.array(TrendPointSchema) }).openapi('Overview');

const MovementSchema = z
  .object({
    month: z.string(),
    flows: z.array(z.object({ from: z.string(), to: z.string(), count: z.number().int() })),
    layers: z.array(z.looseObject({ layer: z.string(), start: z.number().int(), promotionRate: z.number().nullable(), churnRate: z.number().nullable() })),
  })
  .openapi('Movement');

const TimelineSchema = z
  .object({
    items: z.array(z.object({ at: z.string(), kind: z.enum(['event', 'change']), type: z.string(), eventId: z.string().nullable(), seq: z.number().int().nullable(), detail: z.record(z.string(), z.unknown()) })),
    nextBefore: z.number().int().nullable(),
  })
  .openapi('Timeline');

// Nested nodes of the same shape (described, not recursed: the document generator does not follow cycles).
const TreeNodeSchema = z.object({ fan: z.string(), children: z.array(z.looseObject({})).openapi({ description: 'Nodes of this same shape: { fan, children }' }) }).openapi('ReferralTreeNode');
const ReferralTreeSchema = z
  .object({ root: z.string(), people: z.number().int(), levels: z.number().int(), truncated: z.boolean(), tree: TreeNodeSchema })
  .openapi('ReferralTree');

const ProgramDiffSchema = z
  .object({
    ok: z.boolean(),
    version: z.string().nullable(),
    issues: z.array(z.object({ path: z.string(), message: z.string(), line: z.number().int().nullable().optional() })),
    changes: z.array(z.object({ path: z.string(), from: z.unknown(), to: z.unknown() })),
  })
  .openapi('ProgramDiff');

const monthParam = z.string().regex(/^\d{4}-\d{2}$/).openapi({ param: { name: 'month', in: 'path' }, example: '2026-10' });

function checkMonth(month: string): string {
  if (!parseMonthKey(month)) throw new ApiProblem(400, 'BAD_REQUEST', `month ${month}: use YYYY-MM`, [{ field: 'month', reason: 'use YYYY-MM' }]);
  return month;
}

export function registerDashboardRoutes(app: OpenAPIHono<Env>, helpers: Helpers): void {
  const { requireScope, parseAsOfParam, security, problemResponses } = helpers;
  const json = (schema: z.ZodType, description: string) => ({ description, content: { 'application/json': { schema } } });

  app.openapi(
    createRoute({
      method: 'get',
      path: '/v1/overview',
      summary: "A month's report with the indicator trend of the months up to it",
      description: 'Default month: the last full month before `asOf`. The trend holds each month whose end the state has passed (at most `months`), from the stored month snapshots.',
      security,
      request: {
        query: z.object({
          month: z.string().optional().openapi({ example: '2026-10' }),
          months: z.coerce.number().int().min(1).max(60).default(12),
          asOf: z.string().optional(),
        }),
      },
      responses: { 200: json(OverviewSchema, 'Report and trend'), ...problemResponses(400, 401, 403, 429) } ,
    }),
    async (c) => {
      requireScope(c, 'read');
      const query = c.req.valid('query');
      const asOf = parseAsOfParam(query.asOf);
      const runtime = c.get('runtime');
      const month = query.month === undefined ? runtime.monthOf(asOf) : checkMonth(query.month);
      return c.json((await runtime.overview(month, asOf, query.months)) as never, 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/v1/movement/{month}',
      summary: "Layer transitions from the month's start to its end, with promotion and churn per layer against the seed's targets",
      security,
      request: { params: z.object({ month: monthParam }) },
      responses: { 200: json(MovementSchema, 'Flows and rates'), ...problemResponses(400, 401, 403, 429) } ,
    }),
    async (c) => {
      requireScope(c, 'read');
      return c.json((await c.get('runtime').movement(checkMonth(c.req.valid('param').month), Date.now())) as never, 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/v1/movement',
      summary: 'Layer movement of a month given as a query parameter (default: the last full month)',
      security,
      request: { query: z.object({ month: z.string().optional().openapi({ example: '2026-10' }) }) },
      responses: { 200: json(MovementSchema, 'Flows and rates'), ...problemResponses(400, 401, 403, 429) },
    }),
    async (c) => {
      requireScope(c, 'read');
      const runtime = c.get('runtime');
      const { month } = c.req.valid('query');
      return c.json((await runtime.movement(month === undefined ? runtime.monthOf(Date.now()) : checkMonth(month), Date.now())) as never, 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/v1/fans/{id}/timeline',
      summary: "One fan's events and the changes derived from them, newest first",
      description: 'Page with `before` = the previous answer\'s `nextBefore` (a log position) until it is null.',
      security,
      request: {
        params: z.object({ id: z.string().min(1).max(500).openapi({ param: { name: 'id', in: 'path' } }) }),
        query: z.object({ limit: z.coerce.number().int().min(1).max(200).default(50), before: z.coerce.number().int().min(1).optional() }),
      },
      responses: { 200: json(TimelineSchema, 'Timeline page'), ...problemResponses(400, 401, 403, 404, 429) } ,
    }),
    async (c) => {
      requireScope(c, 'read');
      const query = c.req.valid('query');
      return c.json((await c.get('runtime').timeline(c.req.valid('param').id, query.limit, query.before)) as never, 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/v1/referral-trees/{fan}',
      summary: 'The referral tree below a fan (at most 500 fans, breadth first)',
      security,
      request: { params: z.object({ fan: z.string().min(1).max(500).openapi({ param: { name: 'fan', in: 'path' } }) }) },
      responses: { 200: json(ReferralTreeSchema, 'Nested { fan, children }'), ...problemResponses(400, 401, 403, 404, 429) },
    }),
    async (c) => {
      requireScope(c, 'read');
      return c.json((await c.get('runtime').referralTree(c.req.valid('param').fan)) as never, 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'post',
      path: '/v1/program/diff',
      summary: 'Validate a candidate program and list what activating it would change (nothing changes)',
      security,
      request: { body: { required: true, content: { 'application/json': { schema: ProgramRequestSchema } } } },
      responses: { 200: json(ProgramDiffSchema, 'Verdict, issues at their lines, and the changed paths'), ...problemResponses(400, 401, 403, 429) } ,
    }),
    async (c) => {
      requireScope(c, 'read');
      const runtime = c.get('runtime');
      const { yaml } = c.req.valid('json');
      const check = runtime.checkProgram(yaml);
      const changes = check.ok ? computeProgramChanges((await runtime.program()).yaml, yaml) : [];
      return c.json({ ...check, changes } as never, 200);
    },
  );
}
