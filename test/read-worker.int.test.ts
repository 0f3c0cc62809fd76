/**
 * The read worker builds `GET /v1/fans/{id}` off the request thread. Its answers must be the
 * request thread's own, byte for byte: at the state's clock and later, for an instant before it
 * (which the request thread replays itself), for an unknown fan, after new events and after a new
 * program; and a server whose worker has stopped answers on its own. On SQLite and PostgreSQL.
 */
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createKey } from '../src/app/keys.js';
import { DEFAULT_GENERATE, generateCommunity } from '../src/demo/generate.js';
import { createServerApp } from '../src/server/app.js';
import { startReadWorker, type ReadWorker } from '../src/server/read-client.js';
import type { StateWorkerSetup } from '../src/server/state-worker.js';
import { openPostgresDatabase } from '../src/store/postgres-store.js';
import { openSqliteDatabase } from '../src/store/sqlite-store.js';
import type { Database } from '../src/store/store.js';
import { freshSchema, postgresAvailable } from './postgres-helpers.js';
import { tempDir } from './store-helpers.js';

const community = generateCommunity({ ...DEFAULT_GENERATE, fans: 200, months: 3, seed: 'read-worker', start: '2026-07-01T00:00:00+08:00' });
const events = community.lines.map((line) => JSON.parse(line) as { fan?: string; ts: string | number });
const fans = [...new Set(events.map((event) => event.fan).filter((fan): fan is string => typeof fan === 'string'))].slice(0, 40);
const end = new Date(community.end).toISOString();
const before = new Date(community.end - 20 * 86_400_000).toISOString();
const later = new Date(community.end + 45 * 86_400_000).toISOString();

const postgres = await postgresAvailable();
const schema = freshSchema('readworker');

const kinds: { name: string; open: () => Promise<{ database: Database; setup: StateWorkerSetup }> }[] = [
  {
    name: 'SQLite',
    open: async () => {
      const location = join(tempDir('fanflow-read-worker-'), 'read.db');
      return { database: await openSqliteDatabase(location), setup: { kind: 'sqlite', location } };
    },
  },
  ...(postgres ? [{ name: 'PostgreSQL', open: async () => ({ database: await openPostgresDatabase(schema.url), setup: { kind: 'postgres' as const, location: schema.url } }) }] : []),
];

afterAll(async () => {
  if (postgres) await schema.drop();
});

describe.each(kinds)('the read worker on $name', ({ open }) => {
  let database: Database;
  let worker: ReadWorker;
  let key = '';
  // How many reads the worker answered (the rest were left to the request thread).
  let answered = 0;
  let withWorker: ReturnType<typeof createServerApp>['app'];
  let alone: ReturnType<typeof createServerApp>['app'];
  const get = (app: typeof alone, path: string) => app.request(path, { headers: { Authorization: `Bearer ${key}` } });
  const both = async (path: string) => {
    const [a, b] = await Promise.all([get(withWorker, path), get(alone, path)]);
    return { worker: { status: a.status, type: a.headers.get('content-type'), text: await a.text() }, alone: { status: b.status, type: b.headers.get('content-type'), text: await b.text() } };
  };

  beforeAll(async () => {
    let setup: StateWorkerSetup;
    ({ database, setup } = await open());
    key = (await createKey(database, 'brand', ['ingest', 'read', 'admin'], null, new Date())).key;
    const started = startReadWorker(setup);
    worker = {
      fan: async (...args) => {
        const json = await started.fan(...args);
        if (json !== null) answered++;
        return json;
      },
      close: () => started.close(),
    };
    const logger = pino({ level: 'silent' });
    withWorker = createServerApp({ database, logger, rateLimit: 1_000_000, readWorker: worker }).app;
    alone = createServerApp({ database, logger, rateLimit: 1_000_000 }).app;
    for (let from = 0; from < community.lines.length; from += 2000) {
      const response = await withWorker.request('/v1/events', {
        method: 'POST',
        headers: { Authorization: `Bearer ${key}`, 'Content-Type': 'application/json' },
        body: `{"events":[${community.lines.slice(from, from + 2000).join(',')}]}`,
      });
      expect(response.status).toBe(200);
    }
  }, 120_000);

  afterAll(async () => {
    await worker.close();
    await database.close();
  });

  it('answers as the request thread does, at the clock, later, and before it', async () => {
    for (const asOf of [end, later, before]) {
      const counted = answered;
      for (const fan of fans) {
        const { worker: a, alone: b } = await both(`/v1/fans/${fan}?asOf=${encodeURIComponent(asOf)}`);
        expect(a.status, `${fan} at ${asOf}`).toBe(200);
        expect(a.type).toBe(b.type);
        expect(a.text, `${fan} at ${asOf}`).toBe(b.text);
      }
      // At or after the state's clock the worker answers; before it the request thread replays.
      expect(answered - counted, asOf).toBe(asOf === before ? 0 : fans.length);
    }
  });

  it('gives the same 404 for an unknown fan', async () => {
    const { worker: a, alone: b } = await both('/v1/fans/nobody-here');
    expect(a.status).toBe(404);
    expect(a.type).toMatch(/application\/problem\+json/);
    expect(a.text).toBe(b.text);
  });

  it('sees new events and a new program at once', async () => {
    const fan = fans[0];
    const response = await withWorker.request('/v1/events', {
      method: 'POST',
      headers: { Authorization: `Bearer ${key}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ events: [{ id: 'rw-late-like', type: 'like', fan, ts: community.end + 3_600_000, props: { contentId: 'c-late' } }] }),
    });
    expect(((await response.json()) as { results: { status: string }[] }).results[0].status).toBe('accepted');
    const path = `/v1/fans/${fan}?asOf=${encodeURIComponent(later)}`;
    const afterEvent = await both(path);
    expect(afterEvent.worker.text).toBe(afterEvent.alone.text);
    expect((JSON.parse(afterEvent.worker.text) as { lastActivity: string }).lastActivity).toBe(new Date(community.end + 3_600_000 + 8 * 3_600_000).toISOString().slice(0, 19) + '+08:00');

    const program = (await (await get(withWorker, '/v1/program')).json()) as { yaml: string };
    const activated = await withWorker.request('/v1/program/activate', {
      method: 'POST',
      headers: { Authorization: `Bearer ${key}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ yaml: program.yaml.replace(/^name: .*/m, 'name: winter') }),
    });
    const version = ((await activated.json()) as { version: string }).version;
    const counted = answered;
    const afterProgram = await both(path);
    expect((JSON.parse(afterProgram.worker.text) as { programVersion: string }).programVersion).toBe(version);
    expect(afterProgram.worker.text).toBe(afterProgram.alone.text);
    expect(answered - counted).toBe(1);
  }, 60_000);

  it('leaves every read to the request thread once it has stopped', async () => {
    await worker.close();
    const counted = answered;
    const { worker: a, alone: b } = await both(`/v1/fans/${fans[1]}?asOf=${encodeURIComponent(later)}`);
    expect(a.status).toBe(200);
    expect(a.text).toBe(b.text);
    expect(answered).toBe(counted);
  });
});
