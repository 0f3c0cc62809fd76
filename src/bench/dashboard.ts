/**
 * The dashboard's figures in `npm run bench`: a `fanflow serve` process on a benchmark database,
 * a signed-in headless Chromium (Debian's, driven by playwright-core) timing what a person waits
 * for: the overview fully drawn, and a switch to the next page of the fan table. The baseline is
 * the same browser loading the sign-in page (static, no data) in the same run.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chromium, type Page } from 'playwright-core';
import { createKey, stop, waitHealthy } from './server.js';

export const CHROMIUM = '/usr/bin/chromium';

export interface DashboardFigures {
  baselineMs: number;
  overviewFirstMs: number;
  overviewMs: number;
  /** The overview loaded after 100 new events were ingested (the state moved; candidates patched). */
  overviewAfterEventsMs: number | null;
  overviewAfterEventsMaxMs: number | null;
  pageSwitchMs: number;
  pageSwitchMaxMs: number;
  sortedPageSwitchMs: number;
  sortedPageSwitchMaxMs: number;
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

async function timed(run: () => Promise<unknown>): Promise<number> {
  const started = performance.now();
  await run();
  return performance.now() - started;
}

/** Clicks "next" `count` times on the fan table at `path`, timing each until the new page is drawn. */
async function pageSwitches(page: Page, base: string, path: string, count: number): Promise<number[]> {
  await page.goto(`${base}${path}`);
  await page.waitForSelector('.fans-table tbody tr');
  const times: number[] = [];
  for (let index = 2; index <= count + 1; index++) {
    times.push(
      await timed(async () => {
        await page.click('.pager button:last-child');
        await page.waitForSelector(`.pager .muted:has-text("Page ${index} ·")`);
      }),
    );
  }
  return times;
}

/** Null (with the reason on stderr) when Chromium is not installed. */
export async function benchDashboard(bin: string, db: string, port: number, month: string, live = true): Promise<DashboardFigures | null> {
  if (!existsSync(CHROMIUM)) {
    process.stderr.write(`dashboard figures skipped: ${CHROMIUM} is missing (apt-get install -y chromium)\n`);
    return null;
  }
  const password = 'bench-password-1';
  spawnSync(bin, ['--db', db, 'users', 'create', '--email', 'bench@fanflow.local', '--password', password, '--role', 'analyst'], { stdio: 'ignore' });
  const server = spawn(bin, ['--db', db, 'serve', '--port', String(port)], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, FANFLOW_LOG_LEVEL: 'warn' } });
  let stderr = '';
  server.stderr?.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-4000)));
  const base = `http://127.0.0.1:${port}`;
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'] });
  try {
    await waitHealthy(base, server, () => stderr);
    const page = await browser.newPage({ viewport: { width: 1366, height: 900 } });
    const baselines: number[] = [];
    for (let i = 0; i < 3; i++) baselines.push(await timed(async () => (await page.goto(`${base}/login`), await page.waitForSelector('form button[type=submit]'))));
    const overviewDrawn = () =>
      page.waitForFunction(() => document.querySelectorAll('.chart svg').length >= 3 && document.querySelectorAll('[data-indicator]').length > 10, undefined, { timeout: 120_000 });
    // Signed in on the program page (no report asked for), then the first overview since the
    // server started (which prepares it in the background when it starts), then the same page
    // loaded again three times.
    await page.goto(`${base}/login?next=${encodeURIComponent('/program')}`);
    await page.fill('input[name=email]', 'bench@fanflow.local');
    await page.fill('input[name=password]', password);
    await page.click('button[type=submit]');
    await page.waitForSelector('[data-page=program]', { timeout: 120_000 });
    const overviewFirstMs = await timed(async () => (await page.goto(`${base}/?month=${month}`), await overviewDrawn()));
    const overviews: number[] = [];
    for (let i = 0; i < 3; i++) overviews.push(await timed(async () => (await page.goto(`${base}/?month=${month}`), await overviewDrawn())));
    // A live community: events arrive between two looks at the overview, just after the bench's
    // last event (the end of `month`, in the default program's time zone). The first batch moves
    // the state's clock over that midnight (demotions, the month's snapshot); the overview after
    // each of three more batches, of the same day, gives the figure. Left out where `live` is false.
    let overviewAfterEventsMs: number | null = null;
    let overviewAfterEventsMaxMs: number | null = null;
    if (live) {
      const key = createKey(bin, db, 'default');
      const ingest = async (count: number, at: number, tag: string) => {
        const events = Array.from({ length: count }, (_, i) => ({ id: `bench-live-${tag}-${i}`, type: 'like', fan: `u${String((i * 997) % 100_000 + 1).padStart(6, '0')}`, ts: new Date(at + i).toISOString() }));
        const response = await fetch(`${base}/v1/events`, { method: 'POST', headers: { Authorization: `Bearer ${key}`, 'Content-Type': 'application/json' }, body: JSON.stringify({ events }) });
        if (!response.ok) throw new Error(`ingest answered ${response.status}: ${await response.text()}`);
      };
      const [year, monthNo] = month.split('-').map(Number);
      const next = Date.parse(`${monthNo === 12 ? year + 1 : year}-${String(monthNo === 12 ? 1 : monthNo + 1).padStart(2, '0')}-01T00:00:00+08:00`);
      await ingest(1, next + 5 * 60_000, 'a');
      await timed(async () => (await page.goto(`${base}/?month=${month}`), await overviewDrawn()));
      const after: number[] = [];
      for (let round = 1; round <= 3; round++) {
        await ingest(100, next + (10 + round) * 60_000, `b${round}`);
        after.push(await timed(async () => (await page.goto(`${base}/?month=${month}`), await overviewDrawn())));
      }
      overviewAfterEventsMs = median(after);
      overviewAfterEventsMaxMs = Math.max(...after);
    }
    const plain = await pageSwitches(page, base, '/fans', 6);
    const sorted = await pageSwitches(page, base, '/fans?sort=-loyalty', 6);
    return {
      baselineMs: median(baselines),
      overviewFirstMs,
      overviewMs: median(overviews),
      overviewAfterEventsMs,
      overviewAfterEventsMaxMs,
      pageSwitchMs: median(plain),
      pageSwitchMaxMs: Math.max(...plain),
      sortedPageSwitchMs: median(sorted),
      sortedPageSwitchMaxMs: Math.max(...sorted),
    };
  } finally {
    await browser.close();
    await stop(server);
  }
}
