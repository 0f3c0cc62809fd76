import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKey } from '../src/app/keys.js';
import { deliverDue, verifySignature } from '../src/app/webhooks.js';
import { createServerApp } from '../src/server/app.js';
import { openSqliteDatabase } from '../src/store/sqlite-store.js';
import type { Database } from '../src/store/store.js';
import { fanflow } from './cli-helpers.js';
import { tempDir } from './store-helpers.js';

interface Received {
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
}

/** A real HTTP receiver; `/flaky` fails its first two requests, `/down` always fails. */
function startReceiver(): Promise<{ server: Server; url: string; received: Received[] }> {
  const received: Received[] = [];
  let flaky = 0;
  const server = createServer((request, response) => {
    let body = '';
    request.on('data', (chunk: Buffer) => (body += chunk.toString()));
    request.on('end', () => {
      received.push({ path: request.url ?? '', headers: request.headers, body });
      const fail = request.url === '/down' || (request.url === '/flaky' && flaky++ < 2);
      response.writeHead(fail ? 503 : 204).end();
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, received })));
}

describe('webhooks', () => {
  const dir = tempDir('fanflow-webhooks-');
  const db = join(dir, 'hooks.db');
  let database: Database;
  let app: ReturnType<typeof createServerApp>['app'];
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  let key = '';
  let otherKey = '';
  const call = async (method: string, path: string, body?: unknown, as = key) =>
    app.request(path, { method, headers: { Authorization: `Bearer ${as}`, 'Content-Type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
  const drain = async (options: { baseDelayMs?: number; maxAttempts?: number } = {}) => {
    for (let pass = 0; pass < 40; pass++) {
      const result = await deliverDue({ database, baseDelayMs: 20, maxAttempts: 3, ...options });
      if (result.attempted === 0) await new Promise((resolve) => setTimeout(resolve, 25));
    }
  };

  beforeAll(async () => {
    database = await openSqliteDatabase(db);
    key = (await createKey(database, 'brand', ['ingest', 'read', 'admin'], null, new Date())).key;
    otherKey = (await createKey(database, 'other', ['ingest', 'read', 'admin'], null, new Date())).key;
    receiver = await startReceiver();
    app = createServerApp({ database, logger: pino({ level: 'silent' }) }).app;
  });

  afterAll(async () => {
    receiver.server.close();
    await database.close();
  });

  it('delivers level changes, points, badges and rejects, signed, once each, after the state that caused them', async () => {
    const created = await call('POST', '/v1/webhooks', { url: `${receiver.url}/ok`, events: ['level.changed', 'points.posted', 'badge.granted', 'event.rejected'] });
    expect(created.status).toBe(201);
    const subscription = (await created.json()) as { id: string; secret: string; types: string[] };
    expect(subscription.secret).toMatch(/^whsec_/);
    expect((await (await call('GET', '/v1/webhooks')).json()) as { items: unknown[] }).toEqual({ items: [expect.not.objectContaining({ secret: expect.anything() })] });
    // Three interactions in a week make Lv2 (Bronze); one line is rejected.
    const events = [
      { id: 'h1', type: 'follow', fan: 'fan-1', ts: '2026-10-01T09:00:00+08:00' },
      { id: 'h2', type: 'like', fan: 'fan-1', ts: '2026-10-01T09:01:00+08:00' },
      { id: 'h3', type: 'comment', fan: 'fan-1', ts: '2026-10-02T09:01:00+08:00' },
      { id: 'h4', type: 'share', fan: 'fan-1', ts: '2026-10-03T09:01:00+08:00' },
      { id: 'h5', type: 'like', fan: 'fan-1' },
    ];
    expect((await call('POST', '/v1/events', { events })).status).toBe(200);
    expect((await call('POST', '/v1/fans/fan-1/actions', { action: 'grant_badge', badge: 'early-bird' })).status).toBe(201);
    // Nothing is queued for the other workspace's events.
    await call('POST', '/v1/events', { events: [{ ...events[0], fan: 'x' }] }, otherKey);
    await drain();
    const got = receiver.received.filter((r) => r.path === '/ok');
    const bodies = got.map((r) => JSON.parse(r.body) as { id: string; type: string; workspace: string; data: Record<string, unknown> });
    const types = bodies.map((b) => b.type);
    expect(types.filter((t) => t === 'level.changed')).toHaveLength(1);
    expect(bodies.find((b) => b.type === 'level.changed')?.data).toMatchObject({ fan: 'fan-1', from: 1, to: 2 });
    expect(types.filter((t) => t === 'event.rejected')).toHaveLength(1);
    expect(bodies.find((b) => b.type === 'event.rejected')?.data).toMatchObject({ field: 'ts', reason: 'required' });
    expect(bodies.find((b) => b.type === 'badge.granted')?.data).toMatchObject({ fan: 'fan-1', badge: 'early-bird' });
    const points = bodies.filter((b) => b.type === 'points.posted');
    expect(points.length).toBeGreaterThan(0);
    const fan = (await (await call('GET', '/v1/fans/fan-1')).json()) as { points: { balance: number } };
    expect(points.reduce((sum, b) => sum + (b.data.amount as number), 0)).toBe(fan.points.balance);
    expect(new Set(bodies.map((b) => b.id)).size).toBe(bodies.length);
    expect(bodies.every((b) => b.workspace === 'brand')).toBe(true);
    const now = Math.floor(Date.now() / 1000);
    for (const r of got) {
      expect(verifySignature(subscription.secret, r.headers['fanflow-signature'] as string, r.body, now)).toBe(true);
      expect(verifySignature('whsec_wrong', r.headers['fanflow-signature'] as string, r.body, now)).toBe(false);
      expect(r.headers['fanflow-event-id']).toBe(JSON.parse(r.body).id);
    }
  });

  it('retries a failing receiver with backoff, and keeps what never gets through as dead letters until retried', async () => {
    await call('POST', '/v1/webhooks', { url: `${receiver.url}/flaky`, events: ['lv5.eligible', 'badge.granted'] });
    const down = (await (await call('POST', '/v1/webhooks', { url: `${receiver.url}/down`, events: ['badge.granted'] })).json()) as { id: string };
    expect((await call('POST', '/v1/fans/fan-1/actions', { action: 'grant_badge', badge: 'helper' })).status).toBe(201);
    await drain();
    const flaky = receiver.received.filter((r) => r.path === '/flaky');
    expect(flaky).toHaveLength(3);
    expect(new Set(flaky.map((r) => r.headers['fanflow-event-id'])).size).toBe(1);
    expect(receiver.received.filter((r) => r.path === '/down')).toHaveLength(3);
    const dead = (await (await call('GET', '/v1/webhooks/dead-letters')).json()) as { items: { seq: number; attempts: number; lastError: string; subscription: string }[] };
    expect(dead.items).toHaveLength(1);
    expect(dead.items[0]).toMatchObject({ attempts: 3, lastError: 'HTTP 503', subscription: down.id });
    const listed = fanflow(['--db', db, '--workspace', 'brand', 'webhooks', 'dead-letters', '--json']);
    expect(JSON.parse(listed.stdout).items.map((item: { seq: number }) => item.seq)).toEqual([dead.items[0].seq]);
    expect((await (await call('GET', '/v1/webhooks/dead-letters', undefined, otherKey)).json()) as { items: unknown[] }).toEqual({ items: [] });
    expect((await call('POST', `/v1/webhooks/dead-letters/${dead.items[0].seq}/retry`, undefined, otherKey)).status).toBe(404);
    expect((await call('POST', `/v1/webhooks/dead-letters/${dead.items[0].seq}/retry`)).status).toBe(200);
    expect((await (await call('GET', '/v1/webhooks/dead-letters')).json()) as { items: unknown[] }).toEqual({ items: [] });
    await drain({ maxAttempts: 1 });
    expect(receiver.received.filter((r) => r.path === '/down')).toHaveLength(4);
    expect((await call('DELETE', `/v1/webhooks/${down.id}`)).status).toBe(204);
    expect((await call('DELETE', `/v1/webhooks/${down.id}`)).status).toBe(404);
  });

  it('refuses bad subscriptions with the field', async () => {
    const bad = await call('POST', '/v1/webhooks', { url: 'ftp://x', events: ['level.changed'] });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { issues: { field: string }[] }).issues[0].field).toBe('url');
    const unknown = await call('POST', '/v1/webhooks', { url: 'https://x.example', events: ['nope'] });
    expect(((await unknown.json()) as { issues: { field: string }[] }).issues[0].field).toBe('events');
    expect((await call('POST', '/v1/webhooks', { url: 'https://x.example', events: ['level.changed'] }, (await createKey(database, 'brand', ['read'], null, new Date())).key)).status).toBe(403);
  });
});

describe('webhooks from a running fanflow serve (engine on its state worker)', () => {
  it('delivers the level change of an ingested event, signed', async () => {
    const { spawn } = await import('node:child_process');
    const { BIN } = await import('./cli-helpers.js');
    const { freePort, waitHealthy, sleep } = await import('./server-helpers.js');
    const dir = tempDir('fanflow-webhooks-serve-');
    const db = join(dir, 'served.db');
    const created = fanflow(['--db', db, 'keys', 'create', '--workspace', 'default', '--scopes', 'ingest,read,admin', '--json']);
    expect(created.code).toBe(0);
    const { key } = JSON.parse(created.stdout) as { key: string };
    const receiver = await startReceiver();
    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    const server = spawn(process.execPath, [BIN, '--db', db, 'serve', '--port', String(port)], { stdio: 'ignore', env: { ...process.env, FANFLOW_LOG_LEVEL: 'warn' } });
    try {
      await waitHealthy(base);
      const headers = { Authorization: `Bearer ${key}`, 'Content-Type': 'application/json' };
      const subscribed = await fetch(`${base}/v1/webhooks`, { method: 'POST', headers, body: JSON.stringify({ url: `${receiver.url}/ok`, events: ['level.changed'] }) });
      const { secret } = (await subscribed.json()) as { secret: string };
      const events = ['09:00', '09:01', '09:02', '09:03'].map((time, i) => ({ id: `s${i}`, type: i === 0 ? 'follow' : 'like', fan: 'served-fan', ts: `2026-10-01T${time}:00+08:00` }));
      expect((await fetch(`${base}/v1/events`, { method: 'POST', headers, body: JSON.stringify({ events }) })).status).toBe(200);
      for (let waited = 0; waited < 100 && !receiver.received.some((r) => r.path === '/ok'); waited++) await sleep(100);
      const delivery = receiver.received.find((r) => r.path === '/ok');
      expect(delivery).toBeDefined();
      expect(JSON.parse(delivery!.body)).toMatchObject({ type: 'level.changed', workspace: 'default', data: { fan: 'served-fan', from: 1, to: 2 } });
      expect(verifySignature(secret, delivery!.headers['fanflow-signature'] as string, delivery!.body, Math.floor(Date.now() / 1000))).toBe(true);
    } finally {
      server.kill('SIGTERM');
      receiver.server.close();
    }
  });
});
