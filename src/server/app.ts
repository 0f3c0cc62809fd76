/**
 * The HTTP edge: authentication, scopes, rate limits, request shapes and problem+json errors. It
 * holds no rules of its own; each route calls a workspace runtime (runtime.ts), which calls the
 * same application code as the CLI, so `GET /v1/fans/{id}` and `fanflow fan ID --json` agree.
 */
import { randomUUID } from 'node:crypto';
import { createRoute, OpenAPIHono, z } from '@hono/zod-openapi';
import type { Context } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { HTTPException } from 'hono/http-exception';
import type { Logger } from 'pino';
import { parseMonthKey } from '../core/calendar.js';
import { parseTimestamp } from '../core/events.js';
import { NotFoundError, UsageError } from '../app/errors.js';
import { authenticate } from '../app/keys.js';
import { csvHeader, csvRow, tagKeysOf } from '../app/fans-csv.js';
import { addSubscription, checkWebhookUrl, describeDelivery, describeSubscription, parseEventTypes } from '../app/webhooks.js';
import type { KeyScope, StoredKey } from '../store/store.js';
import type { Database, WebhookEventType } from '../store/store.js';
import { ApiProblem, sendProblem, type ProblemIssue } from './problem.js';
import { createMetrics, type Metrics } from './metrics.js';
import { RateLimiter } from './rate-limit.js';
import { renderReference } from './reference.js';
import { WorkspaceRuntime } from './runtime.js';
import type { ReadWorker } from './read-client.js';
import type { StateWorker } from './state-client.js';
import {
  ActionRequestSchema,
  ActionResponseSchema,
  EventSchema,
  FanPageSchema,
  FanViewSchema,
  IngestRequestSchema,
  IngestResponseSchema,
  MAX_BATCH,
  ProblemSchema,
  ProgramCheckSchema,
  ProgramRequestSchema,
  ProgramSchema,
  ReportSchema,
  DeliverySchema,
  WebhookCreatedSchema,
  WebhookRequestSchema,
  WebhookSchema,
  AuditSchema,
  LedgerCheckSchema,
  PayoutRequestSchema,
  PayoutSchema,
  RedemptionRequestSchema,
  RedemptionSchema,
  ReferralSchema,
  ReviewDecisionSchema,
  ReviewItemSchema,
} from './schemas.js';
import { RequestReuseError } from '../app/fission.js';
import { qrImage } from '../app/qr.js';
import { assertCsrf, mountSessionRoutes, sessionOf } from './session-auth.js';
import { mountWebAssets } from './web-assets.js';
import { registerDashboardRoutes } from './dashboard-routes.js';

export interface ServerOptions {
  database: Database;
  logger: Logger;
  /** Requests per second per key (token bucket; burst twice that). */
  rateLimit?: number;
  /** Largest accepted body in bytes. */
  maxBodyBytes?: number;
  version?: string;
  /** Runs the engine off the request thread (see state-worker.ts); without it each runtime catches up itself. */
  stateWorker?: StateWorker | null;
  /** Builds the answers of `GET /v1/fans/{id}` off the request thread (see read-worker.ts). */
  readWorker?: ReadWorker | null;
  /** The built dashboard (default: dist/web of this package). */
  webRoot?: string;
}

export type Env = { Variables: { key: StoredKey; runtime: WorkspaceRuntime } };

export const DEFAULT_RATE_LIMIT = 2000;
export const DEFAULT_MAX_BODY_BYTES = 16 << 20;

export const problemResponses = (...statuses: number[]) =>
  Object.fromEntries(statuses.map((status) => [status, { description: 'Problem details (RFC 7807)', content: { 'application/problem+json': { schema: ProblemSchema } } }]));

const security = [{ Bearer: [] }];

function zodIssues(error: z.ZodError): ProblemIssue[] {
  return error.issues.map((issue) => ({ field: issue.path.map(String).join('.') || '(body)', reason: issue.message }));
}

export function parseAsOfParam(value: string | undefined): number {
  if (value === undefined || value === '') return Date.now();
  const parsed = parseTimestamp(/^\d+$/.test(value) ? Number(value) : value);
  if (typeof parsed === 'string') throw new ApiProblem(400, 'BAD_REQUEST', `asOf: ${parsed}`, [{ field: 'asOf', reason: parsed }]);
  return parsed;
}

function parseTagFilters(tag: string | string[] | undefined): { key: string; value: string }[] {
  const texts = tag === undefined ? [] : Array.isArray(tag) ? tag : [tag];
  return texts.map((text, index) => {
    const at = text.indexOf('=');
    if (at <= 0) throw new ApiProblem(400, 'BAD_REQUEST', `tag ${JSON.stringify(text)}: use key=value`, [{ field: `tag[${index}]`, reason: 'use key=value' }]);
    return { key: text.slice(0, at), value: text.slice(at + 1) };
  });
}

function encodeCursor(next: number | null): string | null {
  return next === null ? null : Buffer.from(`f:${next}`).toString('base64url');
}

function decodeCursor(cursor: string | undefined): number {
  if (cursor === undefined || cursor === '') return 0;
  const match = /^f:(\d{1,12})$/.exec(Buffer.from(cursor, 'base64url').toString('utf8'));
  if (!match) throw new ApiProblem(400, 'BAD_REQUEST', 'cursor: not a cursor this API returned', [{ field: 'cursor', reason: 'not a cursor this API returned' }]);
  return Number(match[1]);
}

function decodeSortCursor(cursor: string | undefined, sort: string): { value: number | null; no: number } | null {
  if (cursor === undefined || cursor === '') return null;
  const parts = Buffer.from(cursor, 'base64url').toString('utf8').split(':');
  const value = parts[2] === 'n' ? null : Number(parts[2]);
  if (parts.length !== 4 || parts[0] !== 's' || parts[1] !== sort || Number.isNaN(value) || !/^\d{1,12}$/.test(parts[3])) {
    throw new ApiProblem(400, 'BAD_REQUEST', 'cursor: not a cursor this API returned for this sort', [{ field: 'cursor', reason: 'not a cursor this API returned for this sort' }]);
  }
  return { value, no: Number(parts[3]) };
}

export function createServerApp(options: ServerOptions): {
  app: OpenAPIHono<Env>;
  metrics: Metrics;
  prepareOverview: (workspace: string) => Promise<void>;
  openWorkspace: (workspace: string) => Promise<void>;
} {
  const { database, logger } = options;
  const metrics = createMetrics();
  const limiter = new RateLimiter(options.rateLimit ?? DEFAULT_RATE_LIMIT);
  const runtimes = new Map<string, Promise<WorkspaceRuntime>>();
  const runtimeOf = (workspace: string): Promise<WorkspaceRuntime> => {
    let runtime = runtimes.get(workspace);
    if (!runtime) {
      runtime = database.workspace(workspace).then((store) => WorkspaceRuntime.open(store, options.stateWorker ?? null, options.readWorker ?? null));
      // A failed opening is retried by the next request.
      runtime.catch(() => runtimes.delete(workspace));
      runtimes.set(workspace, runtime);
    }
    return runtime;
  };

  const app = new OpenAPIHono<Env>({
    // Request shapes: 400 with every issue listed.
    defaultHook: (result) => {
      if (!result.success) {
        const target = (result as { target?: string }).target;
        throw new ApiProblem(400, 'BAD_REQUEST', `invalid ${target ?? 'request'}`, zodIssues(result.error));
      }
    },
  });
  app.openAPIRegistry.registerComponent('securitySchemes', 'Bearer', { type: 'http', scheme: 'bearer', description: 'An API key from `fanflow keys create`' });
  app.openAPIRegistry.registerComponent('securitySchemes', 'Session', { type: 'apiKey', in: 'cookie', name: 'ff_session', description: 'A dashboard session from POST /auth/login; state-changing requests also send X-CSRF-Token' });
  app.openAPIRegistry.register('Event', EventSchema);

  app.onError((error, c) => {
    if (error instanceof ApiProblem) return sendProblem(c, error);
    if (error instanceof HTTPException) {
      if (error.status === 413) return sendProblem(c, new ApiProblem(413, 'PAYLOAD_TOO_LARGE', `the body is larger than ${options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES} bytes`));
      const malformed = /json/i.test(error.message);
      return sendProblem(c, new ApiProblem(400, malformed ? 'MALFORMED_JSON' : 'BAD_REQUEST', malformed ? 'the body is not valid JSON' : error.message));
    }
    if (error instanceof NotFoundError) return sendProblem(c, new ApiProblem(404, 'NOT_FOUND', error.message));
    if (error instanceof UsageError) return sendProblem(c, new ApiProblem(400, 'BAD_REQUEST', error.message));
    logger.error({ err: error, path: c.req.path }, 'request failed');
    return sendProblem(c, new ApiProblem(500, 'INTERNAL'));
  });
  app.notFound((c) => sendProblem(c, new ApiProblem(404, 'NOT_FOUND', `no route ${c.req.method} ${c.req.path}`)));

  // Request log and metrics; the Authorization header is never logged.
  app.use('*', async (c, next) => {
    const started = performance.now();
    await next();
    const seconds = (performance.now() - started) / 1000;
    const route = c.req.routePath || 'unmatched';
    metrics.requests.inc({ method: c.req.method, route, status: String(c.res.status) });
    metrics.duration.observe({ method: c.req.method, route }, seconds);
    const key = c.get('key');
    logger.debug({ method: c.req.method, path: c.req.path, status: c.res.status, ms: Math.round(seconds * 1000), workspace: key?.workspace, keyId: key?.id }, 'request');
  });

  const limitBody = bodyLimit({
    maxSize: options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES,
    onError: () => {
      throw new ApiProblem(413, 'PAYLOAD_TOO_LARGE', `the body is larger than ${options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES} bytes`);
    },
  });
  // GET and HEAD carry no body. Asking a request for its body makes the Node adapter build a whole
  // Fetch Request (headers copied, an abort signal): on `GET /v1/fans/{id}` that was a large part
  // of the request's cost.
  app.use('/v1/*', (c, next) => (c.req.method === 'GET' || c.req.method === 'HEAD' ? next() : limitBody(c, next)));

  // Authentication, then the key's rate limit; the workspace comes from the key, never the request.
  // A dashboard session (cookie) stands in for a key when no Authorization header is sent.
  app.use('/v1/*', async (c, next) => {
    const header = c.req.header('Authorization');
    let key: StoredKey | null;
    if (header === undefined) {
      const principal = await sessionOf(database, c);
      if (!principal) throw new ApiProblem(401, 'UNAUTHORIZED', 'send Authorization: Bearer <key>, or sign in', undefined, { 'WWW-Authenticate': 'Bearer' });
      assertCsrf(c, principal);
      key = principal.key;
    } else {
      const match = /^Bearer\s+(\S+)$/i.exec(header);
      if (!match) throw new ApiProblem(401, 'UNAUTHORIZED', 'send Authorization: Bearer <key>', undefined, { 'WWW-Authenticate': 'Bearer' });
      key = await authenticate(database, match[1]);
      if (!key) throw new ApiProblem(401, 'UNAUTHORIZED', 'the key is unknown or revoked', undefined, { 'WWW-Authenticate': 'Bearer' });
    }
    const wait = limiter.take(key.id);
    if (wait > 0) throw new ApiProblem(429, 'RATE_LIMITED', `rate limit of ${limiter.perSecond} requests/s for this key`, undefined, { 'Retry-After': String(Math.ceil(wait)) });
    c.set('key', key);
    c.set('runtime', await runtimeOf(key.workspace));
    await next();
  });

  const requireScope = (c: Context<Env>, scope: KeyScope) => {
    if (!c.get('key').scopes.includes(scope)) throw new ApiProblem(403, 'FORBIDDEN', `this route needs the ${scope} scope`);
  };

  app.get('/healthz', async (c) => {
    try {
      await database.listWorkspaces();
      return c.json({ ok: true, version: options.version ?? null });
    } catch (error) {
      logger.error({ err: error }, 'health check failed');
      return sendProblem(c, new ApiProblem(503, 'UNAVAILABLE'));
    }
  });

  app.get('/metrics', async (c) => c.body(await metrics.registry.metrics(), 200, { 'Content-Type': metrics.registry.contentType }));

  app.openapi(
    createRoute({
      method: 'post',
      path: '/v1/events',
      summary: 'Ingest one event or a batch',
      description: `Up to ${MAX_BATCH} events. Answered only after the accepted events are committed; a retry of the same request is safe (same id and payload: duplicate). A batch with rejected events is still 200.`,
      security,
      request: { body: { required: true, content: { 'application/json': { schema: IngestRequestSchema } } } },
      responses: { 200: { description: 'One result per event, in request order', content: { 'application/json': { schema: IngestResponseSchema } } }, ...problemResponses(400, 401, 403, 413, 429) },
    }),
    async (c) => {
      requireScope(c, 'ingest');
      const { events } = c.req.valid('json');
      if (events.length > MAX_BATCH) throw new ApiProblem(413, 'PAYLOAD_TOO_LARGE', `a batch holds at most ${MAX_BATCH} events; this one has ${events.length}`);
      const results = await c.get('runtime').ingestGrouped(events, `api:${c.get('key').id}`);
      for (const result of results) metrics.events.inc({ status: result.status });
      return c.json({ results }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/v1/fans/export',
      summary: 'Every fan matching the filters, streamed as CSV or NDJSON',
      description: 'The same filters as `GET /v1/fans`; the body is written page by page, so memory stays flat whatever the community size.',
      security,
      request: {
        query: z.object({
          format: z.enum(['csv', 'ndjson']).default('csv'),
          layer: z.enum(['core', 'backbone', 'general', 'observation', 'unfollowed']).optional(),
          level: z.coerce.number().int().min(1).max(5).optional(),
          tag: z.union([z.string(), z.array(z.string())]).optional(),
          asOf: z.string().optional(),
        }),
      },
      responses: {
        200: { description: 'CSV (header line, then a fan a line) or NDJSON (a fan object a line)', content: { 'text/csv': { schema: z.string() }, 'application/x-ndjson': { schema: z.string() } } },
        ...problemResponses(400, 401, 403, 429),
      },
    }),
    async (c) => {
      requireScope(c, 'read');
      const query = c.req.valid('query');
      const filter = { layer: query.layer, level: query.level, tags: parseTagFilters(query.tag) };
      const asOf = parseAsOfParam(query.asOf);
      const runtime = c.get('runtime');
      // The first page is read before answering, so that a bad filter is still a 400.
      let page = await runtime.fans(filter, asOf, 0, 500);
      const csv = query.format === 'csv';
      const encoder = new TextEncoder();
      let tagKeys: string[] | null = null;
      const body = new ReadableStream<Uint8Array>({
        async pull(controller) {
          let text = '';
          if (csv && tagKeys === null && (page.items.length > 0 || page.next === null)) {
            tagKeys = tagKeysOf(page.items[0]);
            text += csvHeader(tagKeys);
          }
          for (const view of page.items) text += csv ? csvRow(view, tagKeys ?? []) : `${JSON.stringify(view)}\n`;
          if (text !== '') controller.enqueue(encoder.encode(text));
          if (page.next === null) {
            controller.close();
            return;
          }
          page = await runtime.fans(filter, asOf, page.next, 500);
        },
      });
      return new Response(body, { status: 200, headers: { 'Content-Type': csv ? 'text/csv; charset=utf-8' : 'application/x-ndjson' } }) as never;
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/v1/fans/{id}',
      summary: 'One fan: level with its rule, layer with reasons, points, tags, churn risk',
      security,
      request: {
        params: z.object({ id: z.string().min(1).max(500).openapi({ param: { name: 'id', in: 'path' }, example: 'u000123' }) }),
        query: z.object({ asOf: z.string().optional().openapi({ description: 'RFC 3339 instant or epoch ms (default: now)' }) }),
      },
      responses: { 200: { description: 'The fan', content: { 'application/json': { schema: FanViewSchema } } }, ...problemResponses(400, 401, 403, 404, 429) },
    }),
    async (c) => {
      requireScope(c, 'read');
      const { id } = c.req.valid('param');
      // The view arrives serialised (from the read worker, or this thread's fallback).
      const json = await c.get('runtime').fanJson(id, parseAsOfParam(c.req.valid('query').asOf));
      return c.body(json, 200, { 'Content-Type': 'application/json' }) as never;
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/v1/fans',
      summary: 'Fans matching filters, in fan order, with cursor paging',
      description: 'A page may hold fewer than `limit` fans when few match; follow `nextCursor` until it is null.',
      security,
      request: {
        query: z.object({
          layer: z.enum(['core', 'backbone', 'general', 'observation', 'unfollowed']).optional(),
          level: z.coerce.number().int().min(1).max(5).optional(),
          tag: z.union([z.string(), z.array(z.string())]).optional().openapi({ description: 'key=value, repeatable (e.g. churnRisk=high)' }),
          cursor: z.string().max(100).optional(),
          limit: z.coerce.number().int().min(1).max(500).default(100),
          asOf: z.string().optional(),
          sort: z.enum(['level', '-level', 'loyalty', '-loyalty']).optional().openapi({ description: 'Order by a stored column (`-`: descending; fan number breaks ties); default: fan number' }),
        }),
      },
      responses: { 200: { description: 'A page of fans', content: { 'application/json': { schema: FanPageSchema } } }, ...problemResponses(400, 401, 403, 429) },
    }),
    async (c) => {
      requireScope(c, 'read');
      const query = c.req.valid('query');
      const tags = parseTagFilters(query.tag);
      if (query.sort !== undefined) {
        const order = { sort: query.sort.replace('-', '') as 'level' | 'loyalty', descending: query.sort.startsWith('-') };
        const sorted = await c.get('runtime').fansSorted({ layer: query.layer, level: query.level, tags }, parseAsOfParam(query.asOf), order, decodeSortCursor(query.cursor, query.sort), query.limit);
        return c.json({ items: sorted.items, nextCursor: sorted.next === null ? null : Buffer.from(`s:${query.sort}:${sorted.next.value ?? 'n'}:${sorted.next.no}`).toString('base64url') } as never, 200);
      }
      const page = await c.get('runtime').fans({ layer: query.layer, level: query.level, tags }, parseAsOfParam(query.asOf), decodeCursor(query.cursor), query.limit);
      return c.json({ items: page.items, nextCursor: encodeCursor(page.next) } as never, 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/v1/reports/{month}',
      summary: 'The monthly review of a month (PRODUCT §4)',
      security,
      request: {
        params: z.object({ month: z.string().openapi({ param: { name: 'month', in: 'path' }, example: '2026-10' }) }),
        query: z.object({ asOf: z.string().optional() }),
      },
      responses: { 200: { description: 'The report', content: { 'application/json': { schema: ReportSchema } } }, ...problemResponses(400, 401, 403, 429) },
    }),
    async (c) => {
      requireScope(c, 'read');
      const { month } = c.req.valid('param');
      if (parseMonthKey(month) === null) throw new ApiProblem(400, 'BAD_REQUEST', `month ${JSON.stringify(month)}: use YYYY-MM`, [{ field: 'month', reason: 'use YYYY-MM' }]);
      const report = await c.get('runtime').report(month, parseAsOfParam(c.req.valid('query').asOf));
      return c.json(report as never, 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/v1/program',
      summary: 'The active program',
      security,
      responses: { 200: { description: 'Version and YAML', content: { 'application/json': { schema: ProgramSchema } } }, ...problemResponses(401, 403, 429) },
    }),
    async (c) => {
      requireScope(c, 'read');
      return c.json(await c.get('runtime').program(), 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/v1/program/history',
      summary: 'Every program activated in this workspace, newest first',
      security,
      responses: { 200: { description: 'Versions', content: { 'application/json': { schema: z.object({ items: z.array(z.object({ version: z.string(), activatedAt: z.string() })) }) } } }, ...problemResponses(401, 403, 429) },
    }),
    async (c) => {
      requireScope(c, 'read');
      return c.json({ items: await c.get('runtime').programHistory() }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'post',
      path: '/v1/program/validate',
      summary: 'Validate a candidate program (nothing changes)',
      security,
      request: { body: { required: true, content: { 'application/json': { schema: ProgramRequestSchema } } } },
      responses: { 200: { description: 'Verdict with every issue at its line and path', content: { 'application/json': { schema: ProgramCheckSchema } } }, ...problemResponses(400, 401, 403, 429) },
    }),
    (c) => {
      requireScope(c, 'read');
      return c.json(c.get('runtime').checkProgram(c.req.valid('json').yaml) as never, 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'post',
      path: '/v1/program/activate',
      summary: 'Activate a program: history is kept and the state is rebuilt from the log under it',
      security,
      request: { body: { required: true, content: { 'application/json': { schema: ProgramRequestSchema } } } },
      responses: { 200: { description: 'The active version', content: { 'application/json': { schema: z.object({ version: z.string(), changed: z.boolean() }) } } }, ...problemResponses(400, 401, 403, 422, 429) },
    }),
    async (c) => {
      requireScope(c, 'admin');
      const runtime = c.get('runtime');
      const { yaml } = c.req.valid('json');
      const check = runtime.checkProgram(yaml);
      if (!check.ok) throw new ApiProblem(422, 'INVALID_PROGRAM', 'the program does not validate', check.issues.map((issue) => ({ field: issue.path, reason: `${issue.line !== undefined && issue.line !== null ? `line ${issue.line}: ` : ''}${issue.message}` })));
      return c.json(await runtime.activateProgram(yaml), 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'post',
      path: '/v1/fans/{id}/actions',
      summary: 'An operator action (recognise for Lv5, lock level, badges, points), recorded as an op_* event with the acting key',
      security,
      request: {
        params: z.object({ id: z.string().min(1).max(500).openapi({ param: { name: 'id', in: 'path' } }) }),
        body: { required: true, content: { 'application/json': { schema: ActionRequestSchema } } },
      },
      responses: { 201: { description: 'Recorded (or already recorded under this requestId)', content: { 'application/json': { schema: ActionResponseSchema } } }, ...problemResponses(400, 401, 403, 404, 409, 429) },
    }),
    async (c) => {
      requireScope(c, 'admin');
      const runtime = c.get('runtime');
      const { id } = c.req.valid('param');
      const body = c.req.valid('json');
      const now = Date.now();
      await runtime.fan(id, now); // 404 for a fan this workspace does not know
      const missing = (field: string) => new ApiProblem(400, 'BAD_REQUEST', `${body.action} needs ${field}`, [{ field, reason: 'required' }]);
      const props: Record<string, unknown> = { actor: c.get('key').id, ...(body.note !== undefined ? { note: body.note } : {}) };
      let type: string;
      switch (body.action) {
        case 'recognize':
          type = 'op_recognize';
          break;
        case 'lock_level':
          if (body.level === undefined) throw missing('level');
          type = 'op_lock_level';
          props.level = body.level;
          break;
        case 'unlock_level':
          type = 'op_lock_level';
          props.level = null;
          break;
        case 'grant_badge':
        case 'revoke_badge':
          if (body.badge === undefined) throw missing('badge');
          type = body.action === 'grant_badge' ? 'op_grant_badge' : 'op_revoke_badge';
          props.badge = body.badge;
          break;
        case 'adjust_points':
          if (body.points === undefined) throw missing('points');
          type = 'op_adjust_points';
          props.points = body.points;
          break;
      }
      const eventId = `op-${body.requestId ?? randomUUID()}`;
      // The same requestId again answers with the first outcome (its time is the first one's).
      const recorded = body.requestId === undefined ? null : await runtime.event(eventId);
      if (recorded) {
        if (recorded.fan !== id || recorded.type !== type) throw new ApiProblem(409, 'CONFLICT', `requestId ${body.requestId} was used for another action`);
        return c.json({ event: recorded, status: 'duplicate', fan: await runtime.fan(id, Date.now()) } as never, 201);
      }
      const event = { id: eventId, type, fan: id, ts: new Date(now).toISOString(), props };
      const [result] = await runtime.ingest([event], `api:${c.get('key').id}`);
      if (result.status === 'rejected') throw new ApiProblem(400, 'BAD_REQUEST', result.reason, result.issues);
      return c.json({ event, status: result.status, fan: await runtime.fan(id, Date.now()) } as never, 201);
    },
  );

  const fanParam = z.object({ fan: z.string().min(1).max(500).openapi({ param: { name: 'fan', in: 'path' } }) });
  const json = (schema: z.ZodType, description: string) => ({ description, content: { 'application/json': { schema } } });

  app.openapi(
    createRoute({
      method: 'post',
      path: '/v1/redemptions',
      summary: 'Redeem a catalog item for points, once per requestId (never overspends points or stock under concurrency)',
      security,
      request: { body: { required: true, content: { 'application/json': { schema: RedemptionRequestSchema } } } },
      responses: {
        201: json(RedemptionSchema, 'Redeemed (or redeemed before under this requestId)'),
        ...problemResponses(400, 401, 403, 404, 409, 422, 429),
      },
    }),
    async (c) => {
      requireScope(c, 'ingest');
      const body = c.req.valid('json');
      let outcome;
      try {
        outcome = await c.get('runtime').redeem(body, Date.now());
      } catch (error) {
        if (error instanceof RequestReuseError) throw new ApiProblem(409, 'CONFLICT', error.message);
        if (error instanceof UsageError && !(error instanceof NotFoundError)) throw new ApiProblem(422, 'BAD_REQUEST', error.message, [{ field: 'item', reason: error.message }]);
        throw error;
      }
      if (outcome.status === 'refused') throw new ApiProblem(outcome.code === 'NOT_ELIGIBLE' ? 422 : 409, outcome.code, outcome.reason);
      return c.json(outcome as never, 201);
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/v1/catalog',
      summary: 'The redemption catalog of the active program',
      security,
      responses: { 200: json(z.array(z.looseObject({ id: z.string(), points: z.number().int(), title: z.string() })), 'Catalog items'), ...problemResponses(401, 403, 429) },
    }),
    (c) => {
      requireScope(c, 'read');
      return c.json(c.get('runtime').catalog() as never, 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/v1/referrals/{fan}',
      summary: "A fan's referral code, link, poster text, referrer, referees (depth ≤ 3) and cash; equal to `fanflow referral show FAN --json`",
      security,
      request: { params: fanParam, query: z.object({ asOf: z.string().optional() }) },
      responses: { 200: json(ReferralSchema, 'The referral view'), ...problemResponses(400, 401, 403, 404, 429) },
    }),
    async (c) => {
      requireScope(c, 'read');
      const { fan } = c.req.valid('param');
      return c.json((await c.get('runtime').referral(fan, parseAsOfParam(c.req.valid('query').asOf))) as never, 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/v1/referrals/{fan}/qr',
      summary: "The QR code of the fan's referral link, for the share poster",
      security,
      request: { params: fanParam, query: z.object({ format: z.enum(['png', 'svg']).default('png') }) },
      responses: {
        200: { description: 'The image', content: { 'image/png': { schema: z.string().openapi({ format: 'binary' }) }, 'image/svg+xml': { schema: z.string() } } },
        ...problemResponses(400, 401, 403, 404, 429),
      },
    }),
    async (c) => {
      requireScope(c, 'read');
      const { fan } = c.req.valid('param');
      const { format } = c.req.valid('query');
      const view = await c.get('runtime').referral(fan, Date.now());
      const image = await qrImage(view.link, format);
      return c.body(new Uint8Array(image), 200, { 'Content-Type': format === 'svg' ? 'image/svg+xml' : 'image/png' }) as never;
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/v1/referral-leaderboard',
      summary: 'Referrers by qualified referrals, all time or in one month; equal to `fanflow referral leaderboard --json`',
      security,
      request: { query: z.object({ month: z.string().optional(), limit: z.coerce.number().int().min(1).max(1000).default(20) }) },
      responses: { 200: json(z.looseObject({ period: z.string(), entries: z.array(z.looseObject({ rank: z.number().int(), fan: z.string(), referrals: z.number().int() })) }), 'The leaderboard'), ...problemResponses(400, 401, 403, 429) },
    }),
    async (c) => {
      requireScope(c, 'read');
      const { month, limit } = c.req.valid('query');
      if (month !== undefined && !parseMonthKey(month)) throw new ApiProblem(400, 'BAD_REQUEST', `month must be YYYY-MM, got ${month}`, [{ field: 'month', reason: 'must be YYYY-MM' }]);
      return c.json((await c.get('runtime').leaderboard(month ?? null, limit)) as never, 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/v1/referral-campaigns',
      summary: 'Task fission campaigns with participants, completions and rewards; equal to `fanflow referral campaigns --json`',
      security,
      request: { query: z.object({ asOf: z.string().optional() }) },
      responses: { 200: json(z.array(z.looseObject({ id: z.string(), status: z.string(), participants: z.number().int() })), 'The campaigns'), ...problemResponses(400, 401, 403, 429) },
    }),
    async (c) => {
      requireScope(c, 'read');
      return c.json((await c.get('runtime').campaigns(parseAsOfParam(c.req.valid('query').asOf))) as never, 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/v1/referral-analytics',
      summary: 'K-factor per month and per cohort, generations, programme cost against referred revenue; equal to `fanflow referral analytics --json`',
      security,
      responses: { 200: json(z.looseObject({ months: z.array(z.looseObject({ month: z.string() })), cost: z.looseObject({ total: z.number() }) }), 'The analytics'), ...problemResponses(401, 403, 429) },
    }),
    async (c) => {
      requireScope(c, 'read');
      return c.json((await c.get('runtime').analytics()) as never, 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/v1/referral-compliance',
      summary: 'Depth paid and used, the largest trees and downlines, warnings near the pyramid-scheme markers',
      security,
      responses: { 200: json(z.looseObject({ paidLevels: z.number().int(), warnings: z.array(z.looseObject({ root: z.string() })) }), 'The compliance report'), ...problemResponses(401, 403, 429) },
    }),
    async (c) => {
      requireScope(c, 'admin');
      return c.json((await c.get('runtime').compliance()) as never, 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/v1/referral-reviews',
      summary: 'Referrals held as suspect (self-referral, shared devices, bursts), with their evidence and the cash waiting',
      security,
      responses: { 200: json(z.array(ReviewItemSchema), 'The review queue'), ...problemResponses(401, 403, 429) },
    }),
    async (c) => {
      requireScope(c, 'admin');
      return c.json((await c.get('runtime').reviews()) as never, 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'post',
      path: '/v1/referral-reviews/{fan}',
      summary: 'Resolve a held referral (by its referee): release pays it, void takes its cash back',
      security,
      request: { params: fanParam, body: { required: true, content: { 'application/json': { schema: ReviewDecisionSchema } } } },
      responses: { 200: json(z.object({ referee: z.string(), decision: z.string(), eventId: z.string() }), 'Recorded'), ...problemResponses(400, 401, 403, 404, 429) },
    }),
    async (c) => {
      requireScope(c, 'admin');
      const { fan } = c.req.valid('param');
      const { decision } = c.req.valid('json');
      return c.json((await c.get('runtime').resolveReview(fan, decision, Date.now(), `api:${c.get('key').id}`)) as never, 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'post',
      path: '/v1/payouts',
      summary: "Pay every fan's available referral cash (one op_payout event per fan); the same payoutId again pays nothing twice",
      security,
      request: { body: { required: true, content: { 'application/json': { schema: PayoutRequestSchema } } } },
      responses: { 201: json(PayoutSchema, 'The payout run (already: true when it was made before)'), ...problemResponses(400, 401, 403, 429) },
    }),
    async (c) => {
      requireScope(c, 'admin');
      const body = c.req.valid('json');
      const at = body.at === undefined ? Date.now() : parseAsOfParam(String(body.at));
      return c.json((await c.get('runtime').payout(body.payoutId, at)) as never, 201);
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/v1/payouts',
      summary: 'Payout runs made',
      security,
      responses: { 200: json(z.array(z.object({ payoutId: z.string(), at: z.string(), fans: z.number().int(), total: z.number() })), 'Runs'), ...problemResponses(401, 403, 429) },
    }),
    async (c) => {
      requireScope(c, 'admin');
      return c.json((await c.get('runtime').payouts()) as never, 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/v1/ledger/verify',
      summary: 'Ledger check: postings sum to zero per asset, no forbidden negative account, fan balances equal their postings',
      security,
      responses: { 200: json(LedgerCheckSchema, 'The check (ok: false lists what is wrong)'), ...problemResponses(401, 403, 429) },
    }),
    async (c) => {
      requireScope(c, 'admin');
      return c.json((await c.get('runtime').ledgerVerify()) as never, 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/v1/ledger/fans/{fan}',
      summary: "A fan's audit trail: every posting with its rule and the event that caused it, with running balances",
      security,
      request: { params: fanParam, query: z.object({ asset: z.enum(['points', 'cash', 'coupon']).optional() }) },
      responses: { 200: json(AuditSchema, 'The audit trail'), ...problemResponses(400, 401, 403, 404, 429) },
    }),
    async (c) => {
      requireScope(c, 'read');
      const { fan } = c.req.valid('param');
      return c.json((await c.get('runtime').ledgerAudit(fan, c.req.valid('query').asset ?? null)) as never, 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'post',
      path: '/v1/webhooks',
      summary: 'Subscribe a URL to derived events; the signing secret is returned once',
      security,
      request: { body: { required: true, content: { 'application/json': { schema: WebhookRequestSchema } } } },
      responses: { 201: { description: 'The subscription, with its secret', content: { 'application/json': { schema: WebhookCreatedSchema } } }, ...problemResponses(400, 401, 403, 429) },
    }),
    async (c) => {
      requireScope(c, 'admin');
      const body = c.req.valid('json');
      let types: WebhookEventType[];
      let url: string;
      try {
        types = parseEventTypes(body.events);
        url = checkWebhookUrl(body.url);
      } catch (error) {
        const field = (error as Error).message.startsWith('url') ? 'url' : 'events';
        throw new ApiProblem(400, 'BAD_REQUEST', (error as Error).message, [{ field, reason: (error as Error).message }]);
      }
      const subscription = await addSubscription(database, c.get('key').workspace, url, types, new Date());
      return c.json({ ...describeSubscription(subscription), secret: subscription.secret } as never, 201);
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/v1/webhooks',
      summary: "The workspace's subscriptions (without secrets)",
      security,
      responses: { 200: { description: 'Subscriptions', content: { 'application/json': { schema: z.object({ items: z.array(WebhookSchema) }) } } }, ...problemResponses(401, 403, 429) },
    }),
    async (c) => {
      requireScope(c, 'admin');
      return c.json({ items: (await database.listWebhooks(c.get('key').workspace)).map(describeSubscription) } as never, 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'delete',
      path: '/v1/webhooks/{id}',
      summary: 'Remove a subscription (its pending deliveries are dropped)',
      security,
      request: { params: z.object({ id: z.string().min(1).max(100).openapi({ param: { name: 'id', in: 'path' } }) }) },
      responses: { 204: { description: 'Removed' }, ...problemResponses(401, 403, 404, 429) },
    }),
    async (c) => {
      requireScope(c, 'admin');
      if (!(await database.removeWebhook(c.get('key').workspace, c.req.valid('param').id))) throw new ApiProblem(404, 'NOT_FOUND', 'no such subscription');
      return c.body(null, 204);
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/v1/webhooks/dead-letters',
      summary: 'Deliveries that failed every attempt',
      security,
      responses: { 200: { description: 'Dead letters, oldest first', content: { 'application/json': { schema: z.object({ items: z.array(DeliverySchema) }) } } }, ...problemResponses(401, 403, 429) },
    }),
    async (c) => {
      requireScope(c, 'admin');
      return c.json({ items: (await database.deadLetters(c.get('key').workspace)).map(describeDelivery) } as never, 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'post',
      path: '/v1/webhooks/dead-letters/{seq}/retry',
      summary: 'Deliver a dead letter again',
      security,
      request: { params: z.object({ seq: z.coerce.number().int().min(1).openapi({ param: { name: 'seq', in: 'path' } }) }) },
      responses: { 200: { description: 'Queued again', content: { 'application/json': { schema: z.object({ seq: z.number().int(), queued: z.literal(true) }) } } }, ...problemResponses(400, 401, 403, 404, 429) },
    }),
    async (c) => {
      requireScope(c, 'admin');
      const { seq } = c.req.valid('param');
      if (!(await database.retryDelivery(c.get('key').workspace, seq, Date.now()))) throw new ApiProblem(404, 'NOT_FOUND', `no dead letter ${seq}`);
      return c.json({ seq, queued: true as const }, 200);
    },
  );

  registerDashboardRoutes(app, { requireScope, parseAsOfParam, security, problemResponses });
  mountSessionRoutes(app, database);
  mountWebAssets(app, database, options.webRoot);

  const document = () =>
    app.getOpenAPI31Document({
      openapi: '3.1.0',
      info: { title: 'fanflow API', version: options.version ?? '0', description: 'Events in; fans, levels, layers, points and the monthly review out. Errors are application/problem+json with a stable `code`.' },
    });
  app.get('/openapi.json', (c) => c.json(document()));
  app.get('/docs', (c) => c.html(renderReference(document() as never)));

  // The overview of the last full month, as the dashboard opens it: reads the report candidates
  // the runtime then holds for the next reports.
  const prepareOverview = async (workspace: string): Promise<void> => {
    const runtime = await runtimeOf(workspace);
    const now = Date.now();
    await runtime.overview(runtime.monthOf(now), now, 12);
  };
  const openWorkspace = async (workspace: string): Promise<void> => {
    await runtimeOf(workspace);
  };
  return { app, metrics, prepareOverview, openWorkspace };
}
