import { join } from 'node:path';
import { Writable } from 'node:stream';
import fc from 'fast-check';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKey } from '../src/app/keys.js';
import { generateCommunity, DEFAULT_GENERATE } from '../src/demo/generate.js';
import { createServerApp } from '../src/server/app.js';
import { openSqliteDatabase, type SqliteDatabase } from '../src/store/sqlite-store.js';
import { fanflow } from './cli-helpers.js';
import { tempDir } from './store-helpers.js';

const community = generateCommunity({ ...DEFAULT_GENERATE, fans: 300, months: 4, seed: 'server', start: '2026-06-01T00:00:00+08:00' });
const events = community.lines.map((line) => JSON.parse(line) as Record<string, unknown>);
const asOf = new Date(community.end).toISOString();

describe('HTTP API on SQLite', () => {
  const dir = tempDir('fanflow-server-');
  const db = join(dir, 'server.db');
  let database: SqliteDatabase;
  let app: ReturnType<typeof createServerApp>['app'];
  const logLines: string[] = [];
  const keys: Record<'a' | 'aRead' | 'aIngest' | 'b', string> = { a: '', aRead: '', aIngest: '', b: '' };

  const call = (method: string, path: string, key: string | null, body?: unknown, raw?: string) =>
    app.request(path, {
      method,
      headers: { ...(key ? { Authorization: `Bearer ${key}` } : {}), ...(body !== undefined || raw !== undefined ? { 'Content-Type': 'application/json' } : {}) },
      body: raw ?? (body === undefined ? undefined : JSON.stringify(body)),
    });

  beforeAll(async () => {
    database = await openSqliteDatabase(db);
    const now = new Date();
    keys.a = (await createKey(database, 'brand-a', ['ingest', 'read', 'admin'], null, now)).key;
    keys.aRead = (await createKey(database, 'brand-a', ['read'], 'analyst', now)).key;
    keys.aIngest = (await createKey(database, 'brand-a', ['ingest'], 'shop', now)).key;
    keys.b = (await createKey(database, 'brand-b', ['ingest', 'read', 'admin'], null, now)).key;
    const sink = new Writable({
      write(chunk, _encoding, done) {
        logLines.push(String(chunk));
        done();
      },
    });
    app = createServerApp({ database, logger: pino({ level: 'debug' }, sink), rateLimit: 100_000 }).app;
    for (let from = 0; from < events.length; from += 1000) {
      const response = await call('POST', '/v1/events', keys.aIngest, { events: events.slice(from, from + 1000) });
      expect(response.status).toBe(200);
    }
  });

  afterAll(() => database.close());

  it('ingest answers per event in request order; a retry is all duplicates; a changed payload conflicts', async () => {
    const batch = events.slice(0, 5);
    const retry = await call('POST', '/v1/events', keys.aIngest, { events: [...batch, { ...batch[0], props: { note: 'changed' } }, { id: 'x1', type: 'like', fan: 'u1' }] });
    expect(retry.status).toBe(200);
    const { results } = (await retry.json()) as { results: { id: string; status: string; reason?: string }[] };
    expect(results.map((r) => r.status)).toEqual(['duplicate', 'duplicate', 'duplicate', 'duplicate', 'duplicate', 'conflict', 'rejected']);
    expect(results[6]).toMatchObject({ id: 'x1', reason: 'ts: required' });
  });

  it('bad bodies are problem+json with a stable code: 400 for the wrong shape or JSON, 413 for too much', async () => {
    for (const [raw, code] of [['{"events": 3}', 'BAD_REQUEST'], ['{}', 'BAD_REQUEST'], ['{"events": [', 'MALFORMED_JSON'], ['[]', 'BAD_REQUEST']] as const) {
      const response = await call('POST', '/v1/events', keys.a, undefined, raw);
      expect(response.status, raw).toBe(400);
      expect(response.headers.get('content-type')).toMatch(/application\/problem\+json/);
      const problem = (await response.json()) as { code: string; type: string; title: string; status: number };
      expect(problem).toMatchObject({ code, status: 400 });
    }
    const shape = (await (await call('POST', '/v1/events', keys.a, { events: 'no' })).json()) as { issues: { field: string }[] };
    expect(shape.issues[0].field).toBe('events');
    const tooMany = await call('POST', '/v1/events', keys.a, { events: Array.from({ length: 5001 }, (_, i) => ({ id: `m${i}` })) });
    expect(tooMany.status).toBe(413);
    expect(((await tooMany.json()) as { code: string }).code).toBe('PAYLOAD_TOO_LARGE');
    const small = createServerApp({ database, logger: pino({ level: 'silent' }), maxBodyBytes: 1000 }).app;
    const huge = await small.request('/v1/events', { method: 'POST', headers: { Authorization: `Bearer ${keys.a}`, 'Content-Type': 'application/json' }, body: JSON.stringify({ events: [{ id: 'y'.repeat(5000) }] }) });
    expect(huge.status).toBe(413);
  });

  it('GET /v1/fans/{id} is the object of `fanflow fan ID --json`; GET /v1/reports/{month} that of `fanflow report --json`', async () => {
    const id = 'u000007';
    const api = await (await call('GET', `/v1/fans/${id}?asOf=${encodeURIComponent(asOf)}`, keys.aRead)).json();
    const cli = fanflow(['--db', db, '--workspace', 'brand-a', '--as-of', asOf, 'fan', id, '--json']);
    expect(cli.code).toBe(0);
    expect(api).toEqual(JSON.parse(cli.stdout));
    const month = '2026-08';
    const report = await call('GET', `/v1/reports/${month}?asOf=${encodeURIComponent(asOf)}`, keys.aRead);
    expect(report.status).toBe(200);
    const cliReport = fanflow(['--db', db, '--workspace', 'brand-a', '--as-of', asOf, 'report', '--month', month, '--json']);
    expect(await report.json()).toEqual(JSON.parse(cliReport.stdout));
    expect((await call('GET', '/v1/reports/2026-13', keys.aRead)).status).toBe(400);
  });

  it('fan pages follow the cursor through every fan once; filters hold on every item', async () => {
    const seen: string[] = [];
    let cursor: string | null = '';
    let pages = 0;
    while (cursor !== null) {
      const response = await call('GET', `/v1/fans?limit=70&asOf=${encodeURIComponent(asOf)}${cursor ? `&cursor=${cursor}` : ''}`, keys.aRead);
      expect(response.status).toBe(200);
      const page = (await response.json()) as { items: { id: string }[]; nextCursor: string | null };
      seen.push(...page.items.map((item) => item.id));
      cursor = page.nextCursor;
      pages++;
    }
    const fans = new Set(events.map((event) => event.fan).filter((fan) => typeof fan === 'string'));
    expect(new Set(seen).size).toBe(seen.length);
    expect(seen.length).toBe(fans.size);
    expect(pages).toBe(Math.ceil(fans.size / 70));
    const general = (await (await call('GET', `/v1/fans?layer=general&limit=500&asOf=${encodeURIComponent(asOf)}`, keys.aRead)).json()) as { items: { layer: { layer: string } }[] };
    expect(general.items.length).toBeGreaterThan(0);
    expect(general.items.every((item) => item.layer.layer === 'general')).toBe(true);
    const risky = (await (await call('GET', `/v1/fans?tag=churnRisk%3Dhigh&limit=500&asOf=${encodeURIComponent(asOf)}`, keys.aRead)).json()) as { items: { churnRisk: string }[] };
    expect(risky.items.every((item) => item.churnRisk === 'high')).toBe(true);
    expect((await call('GET', '/v1/fans?cursor=bogus', keys.aRead)).status).toBe(400);
    expect((await call('GET', '/v1/fans?level=9', keys.aRead)).status).toBe(400);
  });

  it('export streams every matching fan as CSV or NDJSON, equal to the pages', async () => {
    const fans = new Set(events.map((event) => event.fan).filter((fan) => typeof fan === 'string'));
    const csv = await call('GET', `/v1/fans/export?format=csv&asOf=${encodeURIComponent(asOf)}`, keys.aRead);
    expect(csv.status).toBe(200);
    expect(csv.headers.get('content-type')).toMatch(/text\/csv/);
    const lines = (await csv.text()).trim().split('\n');
    expect(lines[0]).toMatch(/^id,level,levelName,layer,points,/);
    expect(lines.length - 1).toBe(fans.size);
    const ndjson = await call('GET', `/v1/fans/export?format=ndjson&layer=general&asOf=${encodeURIComponent(asOf)}`, keys.aRead);
    const exported = (await ndjson.text()).trim().split('\n').map((line) => JSON.parse(line) as { id: string; layer: { layer: string } });
    const paged = (await (await call('GET', `/v1/fans?layer=general&limit=500&asOf=${encodeURIComponent(asOf)}`, keys.aRead)).json()) as { items: { id: string }[] };
    expect(exported.map((fan) => fan.id)).toEqual(paged.items.map((fan) => fan.id));
    expect((await call('GET', '/v1/fans/export?format=xml', keys.aRead)).status).toBe(400);
    expect((await call('GET', '/v1/fans/export', keys.b)).status).toBe(200);
  });

  it('a key sees only its workspace (404, not 403); a missing scope is 403; no or a bad key is 401', async () => {
    expect((await call('GET', '/v1/fans/u000007', keys.b)).status).toBe(404);
    const listB = (await (await call('GET', '/v1/fans', keys.b)).json()) as { items: unknown[]; nextCursor: null };
    expect(listB).toEqual({ items: [], nextCursor: null });
    // The same event id in another workspace is a different event.
    const ingestB = (await (await call('POST', '/v1/events', keys.b, { events: [events[0]] })).json()) as { results: { status: string }[] };
    expect(ingestB.results[0].status).toBe('accepted');
    expect((await call('GET', '/v1/fans/u000007', keys.b)).status).toBe(404);
    expect((await call('POST', '/v1/fans/u000007/actions', keys.b, { action: 'recognize' })).status).toBe(404);
    expect((await call('POST', '/v1/events', keys.aRead, { events: [] })).status).toBe(403);
    expect((await call('GET', '/v1/fans/u000007', keys.aIngest)).status).toBe(403);
    expect((await call('POST', '/v1/program/activate', keys.aRead, { yaml: 'name: x' })).status).toBe(403);
    expect((await call('POST', '/v1/fans/u000007/actions', keys.aRead, { action: 'recognize' })).status).toBe(403);
    const none = await call('GET', '/v1/fans/u000007', null);
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toBe('Bearer');
    expect((await call('GET', '/v1/fans/u000007', `${keys.a.slice(0, -2)}xx`)).status).toBe(401);
    const revocable = await createKey(database, 'brand-a', ['read'], null, new Date());
    expect((await call('GET', '/v1/program', revocable.key)).status).toBe(200);
    await database.revokeKey(revocable.id, new Date().toISOString());
    expect((await call('GET', '/v1/program', revocable.key)).status).toBe(401);
  });

  it('operator actions are op_* events with the acting key, idempotent by requestId', async () => {
    const fan = 'u000011';
    const first = await call('POST', `/v1/fans/${fan}/actions`, keys.a, { action: 'lock_level', level: 4, requestId: 'lock-11' });
    expect(first.status).toBe(201);
    const body = (await first.json()) as { status: string; event: { type: string; props: { actor: string } }; fan: { level: { level: number; locked: boolean } } };
    expect(body.status).toBe('accepted');
    expect(body.event.type).toBe('op_lock_level');
    expect(keys.a).toContain(body.event.props.actor);
    expect(body.fan.level).toMatchObject({ level: 4, locked: true });
    const again = (await (await call('POST', `/v1/fans/${fan}/actions`, keys.a, { action: 'lock_level', level: 4, requestId: 'lock-11' })).json()) as { status: string };
    expect(again.status).toBe('duplicate');
    const missing = await call('POST', `/v1/fans/${fan}/actions`, keys.a, { action: 'adjust_points' });
    expect(missing.status).toBe(400);
    expect(((await missing.json()) as { issues: { field: string }[] }).issues[0].field).toBe('points');
    expect((await call('POST', '/v1/fans/nobody/actions', keys.a, { action: 'recognize' })).status).toBe(404);
  });

  it('programs: validate names the line, a broken one is not activated, a new one is, with history', async () => {
    const current = (await (await call('GET', '/v1/program', keys.aRead)).json()) as { version: string; yaml: string };
    const broken = current.yaml.replace(/timezone: .*/, 'timezone: 12');
    const check = (await (await call('POST', '/v1/program/validate', keys.aRead, { yaml: broken })).json()) as { ok: boolean; issues: { path: string; line: number }[] };
    expect(check.ok).toBe(false);
    expect(check.issues[0].path).toBe('timezone');
    expect(check.issues[0].line).toBeGreaterThan(0);
    const refused = await call('POST', '/v1/program/activate', keys.a, { yaml: broken });
    expect(refused.status).toBe(422);
    expect(((await refused.json()) as { code: string }).code).toBe('INVALID_PROGRAM');
    const renamed = current.yaml.replace(/^name: .*/m, 'name: autumn');
    const activated = (await (await call('POST', '/v1/program/activate', keys.a, { yaml: renamed })).json()) as { version: string; changed: boolean };
    expect(activated.changed).toBe(true);
    expect(activated.version).toMatch(/^autumn@/);
    const history = (await (await call('GET', '/v1/program/history', keys.aRead)).json()) as { items: { version: string }[] };
    expect(history.items.map((item) => item.version)).toEqual([activated.version, current.version]);
    const fan = (await (await call('GET', '/v1/fans/u000007', keys.aRead)).json()) as { programVersion: string };
    expect(fan.programVersion).toBe(activated.version);
  });

  it('health, metrics and the OpenAPI document need no key; the reference page renders every route', async () => {
    expect((await call('GET', '/healthz', null)).status).toBe(200);
    const metrics = await (await call('GET', '/metrics', null)).text();
    expect(metrics).toMatch(/fanflow_events_total\{status="accepted"\} \d+/);
    const document = (await (await call('GET', '/openapi.json', null)).json()) as { openapi: string; paths: Record<string, unknown>; components: { schemas: Record<string, unknown> } };
    expect(document.openapi).toBe('3.1.0');
    expect(Object.keys(document.paths)).toEqual(expect.arrayContaining(['/v1/events', '/v1/fans/{id}', '/v1/fans', '/v1/reports/{month}', '/v1/program', '/v1/program/activate', '/v1/fans/{id}/actions']));
    expect(document.components.schemas).toHaveProperty('Event_purchase');
    const page = await (await call('GET', '/docs', null)).text();
    for (const path of Object.keys(document.paths)) expect(page).toContain(path);
  });

  it('a key over its rate gets 429 with Retry-After', async () => {
    const limited = createServerApp({ database, logger: pino({ level: 'silent' }), rateLimit: 3 }).app;
    const statuses: number[] = [];
    let retryAfter: string | null = null;
    for (let i = 0; i < 10; i++) {
      const response = await limited.request('/v1/program', { headers: { Authorization: `Bearer ${keys.aRead}` } });
      statuses.push(response.status);
      if (response.status === 429) retryAfter = response.headers.get('retry-after');
    }
    expect(statuses.slice(0, 6)).toEqual([200, 200, 200, 200, 200, 200]);
    expect(statuses).toContain(429);
    expect(Number(retryAfter)).toBeGreaterThanOrEqual(1);
  });

  it('random and malformed input on every route never gets a 500 (fast-check)', async () => {
    const routes = ['/v1/events', '/v1/fans/u000007', '/v1/fans', '/v1/reports/2026-08', '/v1/program', '/v1/program/validate', '/v1/program/activate', '/v1/fans/u000007/actions', '/v1/redemptions', '/v1/referrals/u000007', '/v1/referrals/u000007/qr', '/v1/referral-reviews', '/v1/referral-reviews/u000007', '/v1/payouts', '/v1/ledger/fans/u000007', '/v1/nowhere'];
    const deep = fc.letrec((tie) => ({ node: fc.oneof({ depthSize: 'small' }, fc.jsonValue(), fc.array(tie('node'), { maxLength: 3 }), fc.dictionary(fc.string(), tie('node'), { maxKeys: 3 })) })).node;
    const bodies = fc.oneof(
      fc.jsonValue().map((value) => JSON.stringify(value)),
      fc.string({ unit: 'binary' }),
      fc.array(deep, { maxLength: 5 }).map((events) => JSON.stringify({ events })),
      fc.record({ id: fc.string(), type: fc.constantFrom('purchase', 'like', 'follow', 'op_lock_level'), fan: fc.string(), ts: fc.oneof(fc.string(), fc.integer(), fc.double()), props: fc.dictionary(fc.string(), fc.jsonValue()) }).map((event) => JSON.stringify({ events: [event] })),
      fc.record({ action: fc.string(), level: fc.jsonValue(), yaml: fc.string() }).map((value) => JSON.stringify(value)),
      fc.nat(200).map((depth) => `${'['.repeat(depth * 50)}${']'.repeat(depth * 50)}`),
    );
    const queries = fc.oneof(fc.constant(''), fc.string().map((text) => `?asOf=${encodeURIComponent(text)}&cursor=${encodeURIComponent(text)}&limit=${encodeURIComponent(text)}&tag=${encodeURIComponent(text)}`));
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...routes), fc.constantFrom('GET', 'POST'), bodies, queries, async (route, method, body, query) => {
        const response = await app.request(`${route}${query}`, { method, headers: { Authorization: `Bearer ${keys.b}`, 'Content-Type': 'application/json' }, body: method === 'POST' ? body : undefined });
        expect(response.status, `${method} ${route}${query} ${body.slice(0, 200)}`).toBeLessThan(500);
        if (response.status >= 400) expect(response.headers.get('content-type')).toMatch(/problem\+json/);
      }),
      { numRuns: 300 },
    );
  });

  it('referrals, redemptions and the ledger: the API equals the CLI, refusals are problem+json with their code, a retry answers the first outcome', async () => {
    const referral = await call('GET', `/v1/referrals/u000010?asOf=${encodeURIComponent(asOf)}`, keys.aRead);
    expect(referral.status).toBe(200);
    const cli = fanflow(['--db', db, '--workspace', 'brand-a', '--as-of', asOf, 'referral', 'show', 'u000010', '--json']);
    expect(cli.code).toBe(0);
    expect(await referral.json()).toEqual(JSON.parse(cli.stdout));
    const png = await call('GET', '/v1/referrals/u000010/qr', keys.aRead);
    expect(png.headers.get('content-type')).toBe('image/png');
    expect([...new Uint8Array(await png.arrayBuffer()).slice(0, 4)]).toEqual([0x89, 0x50, 0x4e, 0x47]);
    // 1,000 points granted, then 200-point coupons until the balance runs out.
    await call('POST', '/v1/fans/u000010/actions', keys.a, { action: 'adjust_points', points: 1000, requestId: 'grant-redeem' });
    const balance = ((await (await call('GET', '/v1/fans/u000010', keys.aRead)).json()) as { points: { balance: number } }).points.balance;
    const first = await call('POST', '/v1/redemptions', keys.aIngest, { requestId: 'r-1', fan: 'u000010', item: 'coupon-20' });
    expect(first.status).toBe(201);
    const body = (await first.json()) as { balance: number };
    expect(body.balance).toBe(balance - 200);
    const again = await call('POST', '/v1/redemptions', keys.aIngest, { requestId: 'r-1', fan: 'u000010', item: 'coupon-20' });
    expect(again.status).toBe(201);
    expect(await again.json()).toEqual(body);
    const reused = await call('POST', '/v1/redemptions', keys.aIngest, { requestId: 'r-1', fan: 'u000010', item: 'coupon-5' });
    expect(reused.status).toBe(409);
    const tooDear = await call('POST', '/v1/redemptions', keys.aIngest, { requestId: 'r-2', fan: 'u000010', item: 'offline-gathering' });
    expect([409, 422]).toContain(tooDear.status);
    expect(['INSUFFICIENT_POINTS', 'NOT_ELIGIBLE']).toContain(((await tooDear.json()) as { code: string }).code);
    const unknownItem = await call('POST', '/v1/redemptions', keys.a, { requestId: 'r-3', fan: 'u000010', item: 'nope' });
    expect(unknownItem.status).toBe(422);
    expect((await call('POST', '/v1/redemptions', keys.a, { requestId: 'r-4', fan: 'nobody', item: 'coupon-5' })).status).toBe(404);
    // Spend everything: the last one is refused for points.
    let refused: { status: number; code: string } | null = null;
    for (let i = 0; i < 100 && !refused; i++) {
      const response = await call('POST', '/v1/redemptions', keys.a, { requestId: `drain-${i}`, fan: 'u000010', item: 'coupon-20' });
      if (response.status !== 201) refused = { status: response.status, code: ((await response.json()) as { code: string }).code };
    }
    expect(refused).toEqual({ status: 409, code: 'INSUFFICIENT_POINTS' });
    const check = (await (await call('GET', '/v1/ledger/verify', keys.a)).json()) as { ok: boolean };
    expect(check.ok).toBe(true);
    expect((await call('GET', '/v1/ledger/verify', keys.aRead)).status).toBe(403);
    const audit = (await (await call('GET', '/v1/ledger/fans/u000010?asset=points', keys.aRead)).json()) as { lines: { rule: string }[]; balances: Record<string, number> };
    expect(audit.lines.filter((line) => line.rule === 'redeem:coupon-20').length).toBeGreaterThan(1);
    expect(audit.balances['fan:u000010']).toBeLessThan(200);
    // Workspaces share nothing: brand-b does not know the fan.
    expect((await call('GET', '/v1/referrals/u000010', keys.b)).status).toBe(404);
  });

  it('keys never reach the log', () => {
    const log = logLines.join('');
    expect(log.length).toBeGreaterThan(0);
    for (const key of Object.values(keys)) expect(log).not.toContain(key.slice('ff_'.length + 13));
  });
});
