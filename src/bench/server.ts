/**
 * The HTTP figures of `npm run bench`: a `fanflow serve` process on the benchmark database, loaded
 * from this process with autocannon over loopback (both on the same 2-core machine). Each figure
 * sits beside the same server's bare health-check throughput from the same run.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import autocannon from 'autocannon';

export interface PostgresFigures {
  batchEventsPerSecond: number;
  batchRps: number;
  batchP99: number;
  healthRps: number;
}

export interface ServerFigures {
  healthRps: number;
  healthP99: number;
  batchEventsPerSecond: number;
  batchRps: number;
  batchP99: number;
  singleRps: number;
  singleP99: number;
  singleErrors: number;
  /** The same load started right after the batch phase, while the state still catches up. */
  singleAfterBatchP99: number;
  singleAfterBatchErrors: number;
  /** How long the state took to catch up after that (a read waits for it). */
  settleMs: number;
  fanRps: number;
  fanP99: number;
  /** The same route over fans drawn across the database (each request another fan). */
  fansRps: number;
  fansP99: number;
  fansDrawn: number;
  /** The lowest and highest request rates of the runs behind healthRps, fanRps and fansRps. */
  healthRange: [number, number];
  fanRange: [number, number];
  fansRange: [number, number];
}

const DURATION_S = Number(process.env.BENCH_HTTP_SECONDS ?? 6);

function run(options: autocannon.Options): Promise<autocannon.Result> {
  return new Promise((resolve, reject) => {
    autocannon({ duration: DURATION_S, ...options }, (error, result) => (error ? reject(error) : resolve(result)));
  });
}

const WARMUP_S = 2;
export const RUNS = 3;

/** A run's result with the lowest and highest request rate of the runs it was the median of. */
export interface Steady {
  result: autocannon.Result;
  minRps: number;
  maxRps: number;
}

/**
 * A read load as a server sees it once warm: WARMUP_S seconds of the same load (compiled code,
 * pages mapped; not counted), then RUNS runs, of which the one of median throughput is the figure.
 * One run of a few seconds moved by half on this shared 2-core machine.
 */
async function steady(options: autocannon.Options): Promise<Steady> {
  await run({ ...options, duration: WARMUP_S });
  const runs: autocannon.Result[] = [];
  for (let i = 0; i < RUNS; i++) runs.push(await run(options));
  runs.sort((a, b) => a.requests.average - b.requests.average);
  return { result: runs[Math.floor(RUNS / 2)], minRps: runs[0].requests.average, maxRps: runs[RUNS - 1].requests.average };
}

/** Request bodies of the next `count` events of the file each; a small file is sent again under new ids. */
function bodies(lines: readonly string[]): (count: number) => string {
  let position = 0;
  return (count) => {
    const events: string[] = [];
    for (let i = 0; i < count; i++, position++) {
      const round = Math.floor(position / lines.length);
      const line = lines[position % lines.length];
      events.push(round === 0 ? line : line.replace('"id":"', `"id":"r${round}-`));
    }
    return `{"events":[${events.join(',')}]}`;
  };
}

/** Up to `count` distinct fan ids of the file, spread over it (every k-th event's fan), in a mixed order. */
function drawFans(lines: readonly string[], count: number): string[] {
  const ids = new Set<string>();
  const step = Math.max(1, Math.floor(lines.length / (count * 4)));
  for (let i = 0; i < lines.length && ids.size < count; i += step) {
    const fan = (JSON.parse(lines[i]) as { fan?: unknown }).fan;
    if (typeof fan === 'string') ids.add(fan);
  }
  // A fixed shuffle (multiplicative stride), so that consecutive requests do not read neighbours.
  const list = [...ids];
  const stride = 7919;
  return list.map((_, i) => list[(i * stride) % list.length]);
}

/** True once the process has ended, by its own exit or by a signal (which leaves `exitCode` null). */
export function hasExited(server: ChildProcess): boolean {
  return server.exitCode !== null || server.signalCode !== null;
}

/** Waits for /healthz; fails at once, with what the server printed, if the process has exited. */
export async function waitHealthy(base: string, server?: ChildProcess, output?: () => string): Promise<void> {
  for (let attempt = 0; attempt < 600; attempt++) {
    if (server && hasExited(server)) throw new Error(`the server exited (${server.exitCode ?? server.signalCode}) before answering: ${output?.() ?? ''}`);
    try {
      if ((await fetch(`${base}/healthz`)).ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error('the server did not start');
}

export function createKey(bin: string, db: string, workspace: string): string {
  const result = spawnSync(bin, ['--db', db, 'keys', 'create', '--workspace', workspace, '--scopes', 'ingest,read', '--json'], { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`keys create failed: ${result.stderr}`);
  return (JSON.parse(result.stdout) as { key: string }).key;
}

/** Runs the HTTP figures. `lines` are NDJSON events in ts order (ingested into a fresh workspace). */
export async function benchServer(bin: string, db: string, fanId: string, lines: string[]): Promise<ServerFigures> {
  const readKey = createKey(bin, db, 'default');
  const ingestKey = createKey(bin, db, 'bench-ingest');
  const port = 18_000 + Math.floor(Math.random() * 1000);
  const base = `http://127.0.0.1:${port}`;
  const server: ChildProcess = spawn(bin, ['--db', db, 'serve', '--port', String(port), '--rate-limit', '1000000'], { stdio: 'ignore', env: { ...process.env, FANFLOW_LOG_LEVEL: 'warn' } });
  try {
    await waitHealthy(base);
    const health = await steady({ url: `${base}/healthz`, connections: 20 });
    const fan = await steady({ url: `${base}/v1/fans/${fanId}`, connections: 20, headers: { Authorization: `Bearer ${readKey}` } });
    // Fans across the database, in turn: every request reads another fan's row.
    const drawn = drawFans(lines, 2000);
    let next = 0;
    const fans = await steady({
      url: base,
      connections: 20,
      headers: { Authorization: `Bearer ${readKey}` },
      requests: [{ setupRequest: (request) => ({ ...request, path: `/v1/fans/${encodeURIComponent(drawn[next++ % drawn.length])}` }) }],
    });
    const nextBody = bodies(lines);
    const headers = { Authorization: `Bearer ${ingestKey}`, 'Content-Type': 'application/json' };
    const batch = await run({
      url: `${base}/v1/events`,
      method: 'POST',
      connections: 4,
      headers,
      requests: [{ setupRequest: (request) => ({ ...request, body: nextBody(500) }) }],
    });
    const singleRun = () =>
      run({
        url: `${base}/v1/events`,
        method: 'POST',
        connections: 10,
        overallRate: 1000,
        headers,
        requests: [{ setupRequest: (request) => ({ ...request, body: nextBody(1) }) }],
      });
    // Right after the batch phase: the state worker is still working off its backlog.
    const singleAfterBatch = await singleRun();
    // On a settled server: a read waits until the state has caught up with the log.
    const settleStarted = performance.now();
    await fetch(`${base}/v1/fans?limit=1`, { headers });
    const settleMs = performance.now() - settleStarted;
    const single = await singleRun();
    return {
      healthRps: health.result.requests.average,
      healthP99: health.result.latency.p99,
      batchEventsPerSecond: (batch['2xx'] * 500) / DURATION_S,
      batchRps: batch.requests.average,
      batchP99: batch.latency.p99,
      singleRps: single.requests.average,
      singleP99: single.latency.p99,
      singleErrors: single.non2xx + single.errors,
      singleAfterBatchP99: singleAfterBatch.latency.p99,
      singleAfterBatchErrors: singleAfterBatch.non2xx + singleAfterBatch.errors,
      settleMs,
      fanRps: fan.result.requests.average,
      fanP99: fan.result.latency.p99,
      fansRps: fans.result.requests.average,
      fansP99: fans.result.latency.p99,
      fansDrawn: drawn.length,
      healthRange: [health.minRps, health.maxRps],
      fanRange: [fan.minRps, fan.maxRps],
      fansRange: [fans.minRps, fans.maxRps],
    };
  } finally {
    await stop(server);
  }
}

/** Stops a server and waits for it; one that does not exit within 15 s is killed. */
export async function stop(server: ChildProcess): Promise<void> {
  if (hasExited(server)) return;
  const exited = new Promise((resolve) => server.once('exit', resolve));
  server.kill('SIGTERM');
  const timer = setTimeout(() => server.kill('SIGKILL'), 15_000);
  await exited;
  clearTimeout(timer);
}

/** Batch ingest against a server on PostgreSQL (a fresh schema of `url`, dropped afterwards). */
export async function benchPostgres(bin: string, url: string, lines: string[]): Promise<PostgresFigures> {
  const schema = `bench_${Date.now().toString(36)}`;
  const schemaUrl = `${url}${url.includes('?') ? '&' : '?'}schema=${schema}`;
  const created = spawnSync(bin, ['--database-url', schemaUrl, 'keys', 'create', '--workspace', 'bench-ingest', '--scopes', 'ingest,read', '--json'], { encoding: 'utf8' });
  if (created.status !== 0) throw new Error(`keys create on PostgreSQL failed: ${created.stderr}`);
  const key = (JSON.parse(created.stdout) as { key: string }).key;
  const port = 19_000 + Math.floor(Math.random() * 1000);
  const base = `http://127.0.0.1:${port}`;
  const server = spawn(bin, ['--database-url', schemaUrl, 'serve', '--port', String(port), '--rate-limit', '1000000'], { stdio: 'ignore', env: { ...process.env, FANFLOW_LOG_LEVEL: 'warn' } });
  try {
    await waitHealthy(base);
    const health = await run({ url: `${base}/healthz`, connections: 20 });
    const nextBody = bodies(lines);
    const batch = await run({
      url: `${base}/v1/events`,
      method: 'POST',
      connections: 4,
      headers: { Authorization: `Bearer ${key}`, 'Content-Type': 'application/json' },
      requests: [{ setupRequest: (request) => ({ ...request, body: nextBody(500) }) }],
    });
    return { batchEventsPerSecond: (batch['2xx'] * 500) / DURATION_S, batchRps: batch.requests.average, batchP99: batch.latency.p99, healthRps: health.requests.average };
  } finally {
    await stop(server);
    const pg = await import('pg');
    const client = new pg.default.Client({ connectionString: url });
    await client.connect();
    await client.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await client.end();
  }
}
