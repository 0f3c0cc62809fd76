/**
 * The dashboard's server side, in process: operator sign-in, sessions, CSRF, roles and workspace
 * isolation on the API, and the read models only the dashboard asks for (overview trend,
 * movement, timeline, sorted fan pages, program change summary, referral trees).
 */
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createUser } from '../src/app/users.js';
import { generateCommunity, DEFAULT_GENERATE } from '../src/demo/generate.js';
import { createServerApp } from '../src/server/app.js';
import { safeNext } from '../src/server/session-auth.js';
import { openSqliteDatabase, type SqliteDatabase } from '../src/store/sqlite-store.js';
import { createKey } from '../src/app/keys.js';
import { tempDir } from './store-helpers.js';
import { openPostgresDatabase, type PostgresDatabase } from '../src/store/postgres-store.js';
import { freshSchema, postgresAvailable } from './postgres-helpers.js';

const community = generateCommunity({ ...DEFAULT_GENERATE, fans: 400, months: 6, seed: 'dashboard-int', start: '2026-03-01T00:00:00+08:00' });
const events = community.lines.map((line) => JSON.parse(line) as { id: string; fan?: string; type: string });
const asOf = new Date(community.end).toISOString();
const PASSWORD = 'a long enough password';

interface Signed {
  cookie: string;
  csrf: string;
}

describe('dashboard sessions and read models', () => {
  let database: SqliteDatabase;
  let app: ReturnType<typeof createServerApp>['app'];
  let ingestKey = '';
  const users: Record<'owner' | 'analyst' | 'other', Signed> = { owner: { cookie: '', csrf: '' }, analyst: { cookie: '', csrf: '' }, other: { cookie: '', csrf: '' } };

  const request = (method: string, path: string, options: { session?: Signed; csrf?: boolean; body?: unknown; headers?: Record<string, string> } = {}) =>
    app.request(path, {
      method,
      headers: {
        ...(options.session ? { Cookie: options.session.cookie } : {}),
        ...(options.session && options.csrf !== false && method !== 'GET' ? { 'X-CSRF-Token': options.session.csrf } : {}),
        ...(options.body !== undefined ? { 'Content-Type': 'application/json' } : {}),
        ...options.headers,
      },
      body: options.body === undefined ? undefined : JSON.stringify(options.body),
    });

  const signIn = async (email: string, password = PASSWORD): Promise<Response> => request('POST', '/auth/login', { body: { email, password } });

  beforeAll(async () => {
    database = await openSqliteDatabase(join(tempDir('fanflow-dash-int-'), 'dash.db'));
    app = createServerApp({ database, logger: pino({ level: 'silent' }), rateLimit: 100_000 }).app;
    const now = new Date();
    ingestKey = (await createKey(database, 'brand-a', ['ingest'], null, now)).key;
    await createUser(database, { workspace: 'brand-a', email: 'Owner@Example.com', password: PASSWORD, role: 'owner' }, now);
    await createUser(database, { workspace: 'brand-a', email: 'analyst@example.com', password: PASSWORD, role: 'analyst' }, now);
    await createUser(database, { workspace: 'brand-b', email: 'other@example.com', password: PASSWORD, role: 'owner' }, now);
    for (let from = 0; from < events.length; from += 2000) {
      const response = await app.request('/v1/events', { method: 'POST', headers: { Authorization: `Bearer ${ingestKey}`, 'Content-Type': 'application/json' }, body: JSON.stringify({ events: events.slice(from, from + 2000) }) });
      expect(response.status).toBe(200);
    }
    for (const [name, email] of [['owner', 'owner@example.com'], ['analyst', 'analyst@example.com'], ['other', 'other@example.com']] as const) {
      const response = await signIn(email);
      expect(response.status).toBe(200);
      const cookie = (response.headers.get('set-cookie') ?? '').split(';')[0];
      users[name] = { cookie, csrf: ((await response.json()) as { csrf: string }).csrf };
    }
  });

  afterAll(() => database.close());

  it('a session cookie is HttpOnly and SameSite=Strict; the form sign-in redirects to a local next only', async () => {
    const form = await app.request('/auth/login', { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ email: 'owner@example.com', password: PASSWORD, next: '/fans?layer=core' }) });
    expect(form.status).toBe(303);
    expect(form.headers.get('location')).toBe('/fans?layer=core');
    expect(form.headers.get('set-cookie')).toMatch(/^ff_session=[^;]+;.*HttpOnly/);
    expect(form.headers.get('set-cookie')).toMatch(/SameSite=Strict/);
    const wrong = await app.request('/auth/login', { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ email: 'owner@example.com', password: 'nope', next: '/' }) });
    expect(wrong.status).toBe(303);
    expect(wrong.headers.get('location')).toMatch(/^\/login\?error=credentials/);
    expect(wrong.headers.get('set-cookie')).toBeNull();
    for (const next of ['//evil.example/x', 'https://evil.example', '/\\evil', '/auth/logout', 'fans']) expect(safeNext(next), next).toBe('/');
    expect(safeNext('/fans/u000001')).toBe('/fans/u000001');
  });

  it('pages redirect to the sign-in page without a session and serve the app with one', async () => {
    const anonymous = await app.request('/fans?layer=core');
    expect(anonymous.status).toBe(302);
    expect(anonymous.headers.get('location')).toBe(`/login?next=${encodeURIComponent('/fans?layer=core')}`);
    expect((await app.request('/login')).status).toBe(200);
    const page = await request('GET', '/', { session: users.owner });
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('<div id="root">');
    expect(page.headers.get('x-frame-options')).toBe('DENY');
    const document = (await (await app.request('/openapi.json')).json()) as { paths: Record<string, unknown>; components: { securitySchemes: Record<string, unknown> } };
    expect(Object.keys(document.paths)).toEqual(expect.arrayContaining(['/v1/overview', '/v1/movement', '/v1/movement/{month}', '/v1/fans/{id}/timeline', '/v1/program/diff', '/v1/referral-trees/{fan}']));
    expect(document.components.securitySchemes).toHaveProperty('Session');
  });

  it('a state-changing request with a session needs its CSRF token; a foreign Origin cannot sign in', async () => {
    const fan = events.find((event) => event.fan)?.fan as string;
    const noToken = await request('POST', `/v1/fans/${fan}/actions`, { session: users.owner, csrf: false, body: { action: 'grant_badge', badge: 'helper' } });
    expect(noToken.status).toBe(403);
    expect(((await noToken.json()) as { code: string }).code).toBe('CSRF_FAILED');
    const wrongToken = await request('POST', `/v1/fans/${fan}/actions`, { session: users.owner, csrf: false, headers: { 'X-CSRF-Token': users.analyst.csrf }, body: { action: 'grant_badge', badge: 'helper' } });
    expect(wrongToken.status).toBe(403);
    const withToken = await request('POST', `/v1/fans/${fan}/actions`, { session: users.owner, body: { action: 'grant_badge', badge: 'helper' } });
    expect(withToken.status).toBe(201);
    expect(((await withToken.json()) as { event: { props: { actor: string } } }).event.props.actor).toBe('user:owner@example.com');
    const foreign = await request('POST', '/auth/login', { body: { email: 'owner@example.com', password: PASSWORD }, headers: { Host: 'dash.example', Origin: 'https://evil.example' } });
    expect(foreign.status).toBe(403);
  });

  it('an analyst reads but cannot act; another workspace sees 404, not 403', async () => {
    const fan = events.find((event) => event.fan)?.fan as string;
    expect((await request('GET', `/v1/fans/${fan}?asOf=${asOf}`, { session: users.analyst })).status).toBe(200);
    const act = await request('POST', `/v1/fans/${fan}/actions`, { session: users.analyst, body: { action: 'recognize' } });
    expect(act.status).toBe(403);
    expect(((await act.json()) as { code: string }).code).toBe('FORBIDDEN');
    expect((await request('POST', '/v1/program/activate', { session: users.analyst, body: { yaml: 'x: 1' } })).status).toBe(403);
    for (const path of [`/v1/fans/${fan}`, `/v1/fans/${fan}/timeline`, `/v1/referral-trees/${fan}`]) expect((await request('GET', path, { session: users.other })).status, path).toBe(404);
    const otherFans = (await (await request('GET', '/v1/fans', { session: users.other })).json()) as { items: unknown[] };
    expect(otherFans.items).toEqual([]);
    expect((await request('GET', '/v1/fans')).status).toBe(401);
  });

  it('signing out ends the session; disabling a user ends theirs; repeated failures pause sign-in', async () => {
    const fresh = await signIn('analyst@example.com');
    const session = { cookie: (fresh.headers.get('set-cookie') ?? '').split(';')[0], csrf: ((await fresh.json()) as { csrf: string }).csrf };
    expect((await request('GET', '/auth/session', { session })).status).toBe(200);
    expect((await request('POST', '/auth/logout', { session })).status).toBe(204);
    expect((await request('GET', '/v1/fans', { session })).status).toBe(401);
    const other = await signIn('other@example.com');
    const otherSession = { cookie: (other.headers.get('set-cookie') ?? '').split(';')[0], csrf: '' };
    expect(await database.disableUser('other@example.com', new Date().toISOString())).toBe(true);
    expect((await request('GET', '/v1/fans', { session: otherSession })).status).toBe(401);
    expect((await signIn('other@example.com')).status).toBe(401);
    for (let i = 0; i < 10; i++) expect((await signIn('analyst@example.com', 'wrong')).status).toBe(401);
    const paused = await signIn('analyst@example.com');
    expect(paused.status).toBe(429);
    expect(paused.headers.get('retry-after')).toBe('900');
  });

  it('the overview holds the month and the trend of the months before it from the stored snapshots', async () => {
    const month = '2026-07';
    const overview = (await (await request('GET', `/v1/overview?month=${month}&asOf=${asOf}`, { session: users.owner })).json()) as {
      report: { month: string; followers: { end: number }; indicators: { id: string; value: number | null }[] };
      trend: { month: string; followers: { end: number }; values: Record<string, number | null> }[];
    };
    expect(overview.report.month).toBe(month);
    expect(overview.trend.map((point) => point.month)).toEqual(['2026-03', '2026-04', '2026-05', '2026-06', '2026-07']);
    const last = overview.trend[overview.trend.length - 1];
    expect(last.followers.end).toBe(overview.report.followers.end);
    for (const item of overview.report.indicators) expect(last.values[item.id], item.id).toBe(item.value);
    // Each month's figures equal that month's own report.
    const june = (await (await request('GET', `/v1/reports/2026-06?asOf=${asOf}`, { session: users.owner })).json()) as { followers: { end: number }; indicators: { id: string; value: number | null }[] };
    const juneTrend = overview.trend.find((point) => point.month === '2026-06');
    expect(juneTrend?.followers.end).toBe(june.followers.end);
    for (const item of june.indicators) expect(juneTrend?.values[item.id], item.id).toBe(item.value);
  });

  it('movement accounts for every fan between two month boundaries', async () => {
    const movement = (await (await request('GET', '/v1/movement/2026-07', { session: users.owner })).json()) as {
      flows: { from: string; to: string; count: number }[];
      layers: { layer: string; start: number; promoted: number; demoted: number; unfollowed: number; promotionRate: number | null }[];
    };
    const report = (await (await request('GET', `/v1/reports/2026-07?asOf=${asOf}`, { session: users.owner })).json()) as {
      layers: Record<string, { count: number }>;
      indicators: { id: string; value: number | null }[];
    };
    for (const layer of ['core', 'backbone', 'general', 'observation']) {
      const into = movement.flows.filter((flow) => flow.to === layer).reduce((sum, flow) => sum + flow.count, 0);
      expect(into, layer).toBe(report.layers[layer].count);
    }
    const general = movement.layers.find((row) => row.layer === 'general');
    expect(general?.promotionRate).toBe(report.indicators.find((item) => item.id === 'promotion_general_to_backbone')?.value);
    expect((await request('GET', '/v1/movement/2099-01', { session: users.owner })).status).toBe(400);
  });

  it("a fan's timeline pages through its events newest first, with the changes they caused", async () => {
    const counts = new Map<string, number>();
    for (const event of events) if (event.fan) counts.set(event.fan, (counts.get(event.fan) ?? 0) + 1);
    const [fan, total] = [...counts].sort((a, b) => b[1] - a[1])[0];
    // Whatever the page size, every event shows once and every change once, newest first.
    const walk = async (limit: number) => {
      const seen: string[] = [];
      const changes: string[] = [];
      let before: number | null | undefined;
      do {
        const page = (await (await request('GET', `/v1/fans/${fan}/timeline?limit=${limit}${before ? `&before=${before}` : ''}`, { session: users.owner })).json()) as {
          items: { kind: string; type: string; eventId: string | null; at: string }[];
          nextBefore: number | null;
        };
        for (const item of page.items) (item.kind === 'event' ? seen : changes).push(`${item.type}@${item.at}@${item.eventId}`);
        const times = page.items.map((item) => item.at);
        expect([...times].sort().reverse()).toEqual(times);
        before = page.nextBefore;
      } while (before);
      return { seen, changes };
    };
    const big = await walk(40);
    expect(big.seen.length).toBe(total);
    expect(new Set(big.seen).size).toBe(total);
    expect(big.changes.length).toBeGreaterThan(0);
    const small = await walk(7);
    expect(small.seen).toEqual(big.seen);
    expect(small.changes.sort()).toEqual(big.changes.sort());
  });

  it('sorted fan pages visit every fan once, in order, on either column and direction', async () => {
    const all = (await (await request('GET', '/v1/fans?limit=500', { session: users.owner })).json()) as { items: unknown[]; nextCursor: string | null };
    let expected = all.items.length;
    let cursor = all.nextCursor;
    while (cursor) {
      const page = (await (await request('GET', `/v1/fans?limit=500&cursor=${cursor}`, { session: users.owner })).json()) as { items: unknown[]; nextCursor: string | null };
      expected += page.items.length;
      cursor = page.nextCursor;
    }
    for (const sort of ['-level', 'level', '-loyalty', 'loyalty']) {
      const ids: string[] = [];
      const keys: number[] = [];
      let next: string | null = null;
      do {
        const response = await request('GET', `/v1/fans?limit=97&sort=${sort}${next ? `&cursor=${next}` : ''}`, { session: users.owner });
        expect(response.status, sort).toBe(200);
        const page = (await response.json()) as { items: { id: string; level: { level: number }; tags: { loyaltyScore: number } }[]; nextCursor: string | null };
        for (const item of page.items) {
          ids.push(item.id);
          keys.push(sort.endsWith('level') ? item.level.level : item.tags.loyaltyScore);
        }
        next = page.nextCursor;
      } while (next);
      expect(new Set(ids).size, sort).toBe(ids.length);
      expect(ids.length, sort).toBe(expected);
      if (sort.endsWith('level')) {
        const ordered = [...keys].sort((a, b) => (sort.startsWith('-') ? b - a : a - b));
        expect(keys, sort).toEqual(ordered);
      }
    }
    // A level filter in ascending level order starts at that level and finds the same fans.
    const collectIds = async (query: string) => {
      const ids: string[] = [];
      let next: string | null = null;
      do {
        const page = (await (await request('GET', `/v1/fans?limit=200&${query}${next ? `&cursor=${next}` : ''}`, { session: users.owner })).json()) as { items: { id: string; level: { level: number } }[]; nextCursor: string | null };
        for (const item of page.items) ids.push(item.id);
        next = page.nextCursor;
      } while (next);
      return ids.sort();
    };
    const levelThree = await collectIds('level=3');
    expect(levelThree.length).toBeGreaterThan(0);
    expect(await collectIds('level=3&sort=level')).toEqual(levelThree);
    const wrong = await request('GET', `/v1/fans?sort=level&cursor=${Buffer.from('s:-level:3:5').toString('base64url')}`, { session: users.owner });
    expect(wrong.status).toBe(400);
  });

  it('a program change is summarised before activation; a broken one is reported at its line', async () => {
    const active = (await (await request('GET', '/v1/program', { session: users.owner })).json()) as { yaml: string };
    const changed = active.yaml.replace(/graceDays: 30/, 'graceDays: 14');
    const diff = (await (await request('POST', '/v1/program/diff', { session: users.owner, body: { yaml: changed } })).json()) as { ok: boolean; changes: { path: string; from: unknown; to: unknown }[] };
    expect(diff.ok).toBe(true);
    expect(diff.changes).toEqual([{ path: 'demotion.graceDays', from: 30, to: 14 }]);
    const lines = active.yaml.split('\n');
    const at = lines.findIndex((line) => line.includes('graceDays: 30')) + 1;
    const broken = (await (await request('POST', '/v1/program/diff', { session: users.owner, body: { yaml: active.yaml.replace(/graceDays: 30/, 'graceDays: -1') } })).json()) as { ok: boolean; issues: { path: string; line: number }[]; changes: unknown[] };
    expect(broken.ok).toBe(false);
    expect(broken.issues[0]).toMatchObject({ path: 'demotion.graceDays', line: at });
    expect(broken.changes).toEqual([]);
  });

  it('a referral tree nests every referee under its referrer', async () => {
    const referred = events.filter((event) => event.type === 'follow' && (event as { props?: { referrer?: string } }).props?.referrer);
    const root = (referred[0] as { props: { referrer: string } }).props.referrer;
    const tree = (await (await request('GET', `/v1/referral-trees/${root}`, { session: users.owner })).json()) as { root: string; people: number; tree: { fan: string; children: unknown[] } };
    expect(tree.root).toBe(root);
    const count = (node: { children: unknown[] }): number => 1 + node.children.reduce<number>((sum, child) => sum + count(child as { children: unknown[] }), 0);
    expect(count(tree.tree)).toBe(tree.people);
    expect(tree.people).toBeGreaterThan(1);
  });
});

const postgres = await postgresAvailable();

describe.runIf(postgres)('the dashboard read models on PostgreSQL answer as on SQLite', () => {
  const schema = freshSchema('dash');
  const apps: { sqlite?: ReturnType<typeof createServerApp>['app']; postgres?: ReturnType<typeof createServerApp>['app'] } = {};
  const sessions: Record<string, string> = {};
  const closers: (() => Promise<void>)[] = [];

  beforeAll(async () => {
    const databases = { sqlite: await openSqliteDatabase(join(tempDir('fanflow-dash-pg-'), 'same.db')), postgres: await openPostgresDatabase(schema.url) };
    for (const [name, database] of Object.entries(databases) as ['sqlite' | 'postgres', SqliteDatabase | PostgresDatabase][]) {
      closers.push(() => database.close());
      const app = createServerApp({ database, logger: pino({ level: 'silent' }), rateLimit: 100_000 }).app;
      apps[name] = app;
      const key = (await createKey(database, 'brand', ['ingest'], null, new Date())).key;
      for (let from = 0; from < events.length; from += 2000) {
        const response = await app.request('/v1/events', { method: 'POST', headers: { Authorization: `Bearer ${key}`, 'Content-Type': 'application/json' }, body: JSON.stringify({ events: events.slice(from, from + 2000) }) });
        expect(response.status).toBe(200);
      }
      await createUser(database, { workspace: 'brand', email: `ops-${name}@example.com`, password: PASSWORD, role: 'analyst' }, new Date());
      const login = await app.request('/auth/login', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ email: `ops-${name}@example.com`, password: PASSWORD }) });
      expect(login.status).toBe(200);
      sessions[name] = (login.headers.get('set-cookie') ?? '').split(';')[0];
    }
  });

  afterAll(async () => {
    for (const close of closers) await close();
    await schema.drop();
  });

  it('overview, movement, timeline, sorted pages and trees are the same documents', async () => {
    const fan = [...events].reverse().find((event) => event.fan)?.fan as string;
    const root = (events.find((event) => (event as { props?: { referrer?: string } }).props?.referrer) as { props: { referrer: string } }).props.referrer;
    const paths = [`/v1/referral-trees/${root}`, `/v1/overview?month=2026-07&asOf=${asOf}`, '/v1/movement/2026-07', `/v1/fans/${fan}/timeline?limit=30`, `/v1/fans?sort=-loyalty&limit=50&asOf=${asOf}`, `/v1/fans?sort=level&level=2&limit=50&asOf=${asOf}`];
    for (const path of paths) {
      const [a, b] = await Promise.all((['sqlite', 'postgres'] as const).map(async (name) => {
        const response = await (apps[name] as ReturnType<typeof createServerApp>['app']).request(path, { headers: { Cookie: sessions[name] } });
        expect(response.status, `${name} ${path}`).toBe(200);
        return response.json();
      }));
      expect(b, path).toEqual(a);
    }
  });
});
