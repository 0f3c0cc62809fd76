import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { cliSync, complianceReport, fissionAnalytics, leaderboard, ledgerAudit, ledgerVerify, redeem, referralShow, resolveReview, reviewQueue, runPayout, type RedemptionOutcome, type RedemptionRequest } from '../src/app/fission.js';
import { BIN } from './cli-helpers.js';
import { compileProgramText } from '../src/app/program-source.js';
import { activate, catchUp, openWorkspace, type Workspace } from '../src/app/workspace.js';
import { DEFAULT_PROGRAM_YAML } from '../src/core/program.js';
import { openPostgresDatabase } from '../src/store/postgres-store.js';
import { openSqliteDatabase } from '../src/store/sqlite-store.js';
import type { Database } from '../src/store/store.js';
import { samePayload } from '../src/app/same-payload.js';
import { DEFAULT_GENERATE, generateCommunity } from '../src/demo/generate.js';
import { freshSchema, postgresAvailable } from './postgres-helpers.js';
import { tempDir } from './store-helpers.js';

// One item with 3 units in stock, so that stock races are cheap to provoke.
const PROGRAM = compileProgramText(DEFAULT_PROGRAM_YAML.replace('{ id: coupon-5, points: 50, title: 5 RMB coupon }', '{ id: coupon-5, points: 50, title: 5 RMB coupon, stock: 3 }'), 'test program');
const T = Date.parse('2026-10-01T10:00:00+08:00');
const NOW = Date.parse('2026-11-01T10:00:00+08:00');

async function seed(database: Database, events: Record<string, unknown>[]): Promise<Workspace> {
  const store = await database.workspace('default');
  const workspace = await openWorkspace(store, PROGRAM);
  await activate(store, PROGRAM, new Date(T).toISOString());
  await store.append(events.map((event, line) => ({ id: event.id as string, ts: Date.parse(event.ts as string), body: JSON.stringify(event), source: 'test', line, fan: event.fan as string })), samePayload);
  await catchUp(workspace);
  return workspace;
}

const run = promisify(execFile);
const grant = (fan: string, points: number, n: number) => ({ id: `g-${fan}-${n}`, type: 'op_adjust_points', fan, ts: new Date(T + n).toISOString(), props: { points } });

/**
 * Redemption races: requests sent at once from several connections. On PostgreSQL two pools in
 * this process; on SQLite separate `fanflow redeem` processes (connections of one process would
 * wait for each other's write lock on one thread).
 */
interface RaceTarget {
  /** Seeds the store and returns how to redeem from several connections, and a workspace to check with. */
  setup(): Promise<{ redeemAt: (connection: number, request: RedemptionRequest) => Promise<RedemptionOutcome>; check: () => Promise<Workspace> }>;
  cleanup(): Promise<void>;
}

const SEED = [grant('rich', 1000, 1), ...['s1', 's2', 's3', 's4', 's5', 's6'].map((fan, i) => grant(fan, 100, i + 2))];

function raceSuite(kind: string, enabled: boolean, target: () => RaceTarget) {
  describe.skipIf(!enabled)(`redemption races on ${kind}`, () => {
    const targets: RaceTarget[] = [];
    const setup = () => {
      const made = target();
      targets.push(made);
      return made.setup();
    };
    afterAll(async () => {
      for (const made of targets) await made.cleanup();
    });

    it('parallel redemptions never overspend points: 12 requests of 200 on 1,000 points redeem exactly 5', async () => {
      const { redeemAt, check } = await setup();
      const outcomes = await Promise.all(Array.from({ length: 12 }, (_, i) => redeemAt(i, { requestId: `q${i}`, fan: 'rich', item: 'coupon-20' })));
      expect(outcomes.filter((outcome) => outcome.status === 'redeemed')).toHaveLength(5);
      expect(outcomes.filter((outcome) => outcome.status === 'refused').map((outcome) => (outcome as { code: string }).code)).toEqual(Array(7).fill('INSUFFICIENT_POINTS'));
      const workspace = await check();
      expect((await ledgerAudit(workspace, 'rich', 'points', cliSync(workspace))).balances['fan:rich']).toBe(0);
      expect((await ledgerVerify(workspace, cliSync(workspace))).ok).toBe(true);
    });

    it('parallel redemptions never oversell stock: 6 fans for 3 units', async () => {
      const { redeemAt } = await setup();
      const outcomes = await Promise.all(['s1', 's2', 's3', 's4', 's5', 's6'].map((fan, i) => redeemAt(i, { requestId: `stock-${fan}`, fan, item: 'coupon-5' })));
      expect(outcomes.filter((outcome) => outcome.status === 'redeemed')).toHaveLength(3);
      expect(outcomes.filter((outcome) => outcome.status === 'refused' && outcome.code === 'OUT_OF_STOCK')).toHaveLength(3);
    });

    it('the same request id, sent in parallel, redeems once and answers the same', async () => {
      const { redeemAt, check } = await setup();
      const outcomes = await Promise.all(Array.from({ length: 6 }, (_, i) => redeemAt(i, { requestId: 'same', fan: 'rich', item: 'coupon-20' })));
      expect(new Set(outcomes.map((outcome) => JSON.stringify(outcome))).size).toBe(1);
      const workspace = await check();
      expect((await ledgerAudit(workspace, 'rich', 'points', cliSync(workspace))).balances['fan:rich']).toBe(800);
    });
  });
}

raceSuite('SQLite (separate processes)', true, () => {
  const path = join(tempDir(), 'race.db');
  let checking: Database | null = null;
  return {
    async setup() {
      const database = await openSqliteDatabase(path);
      await seed(database, SEED);
      await database.close();
      const redeemAt = async (_connection: number, request: RedemptionRequest) => {
        const { stdout, stderr } = await run(process.execPath, [BIN, '--db', path, 'redeem', request.fan, request.item, '--request-id', request.requestId, '--json'], { env: { ...process.env, FANFLOW_LANG: 'en' } }).catch((error: { stdout?: string; stderr?: string; code?: number }) => {
          // A refusal exits 1 with the outcome on stdout.
          if (error.code === 1 && error.stdout) return { stdout: error.stdout, stderr: error.stderr ?? '' };
          throw error;
        });
        if (!stdout) throw new Error(stderr);
        return JSON.parse(stdout) as RedemptionOutcome;
      };
      const check = async () => {
        checking = await openSqliteDatabase(path);
        const workspace = await openWorkspace(await checking.workspace('default'), null);
        await catchUp(workspace);
        return workspace;
      };
      return { redeemAt, check };
    },
    async cleanup() {
      await checking?.close();
    },
  };
});

const postgres = await postgresAvailable();
raceSuite('PostgreSQL (two connection pools)', postgres, () => {
  const schema = freshSchema('race');
  const opened: Database[] = [];
  return {
    async setup() {
      const a = await openPostgresDatabase(schema.url);
      const b = await openPostgresDatabase(schema.url);
      opened.push(a, b);
      const first = await seed(a, SEED);
      const second = await openWorkspace(await b.workspace('default'), null);
      const workspaces = [first, second];
      const redeemAt = (connection: number, request: RedemptionRequest) => {
        const workspace = workspaces[connection % 2];
        return redeem(workspace, request, NOW + connection, cliSync(workspace));
      };
      return { redeemAt, check: async () => (await catchUp(first), first) };
    },
    async cleanup() {
      for (const database of opened) await database.close();
      await schema.drop();
    },
  };
});

describe('payouts and review on a store', () => {
  it('a payout run pays available cash once; held cash waits for the review, then a second run pays it', async () => {
    const database = await openSqliteDatabase(join(tempDir(), 'payout.db'));
    try {
      const day = 86_400_000;
      const at = (offset: number) => new Date(T + offset).toISOString();
      const workspace = await seed(database, [
        { id: 'e1', type: 'follow', fan: 'p', ts: at(0), props: { device: 'ph-1' } },
        { id: 'e2', type: 'follow', fan: 'honest', ts: at(1000), props: { referrer: 'p', device: 'ph-2' } },
        { id: 'e3', type: 'purchase', fan: 'honest', ts: at(2000), props: { orderId: 'o1', amount: 100 } },
        { id: 'e4', type: 'follow', fan: 'sock', ts: at(3000), props: { referrer: 'p', device: 'ph-1' } },
        { id: 'e5', type: 'purchase', fan: 'sock', ts: at(4000), props: { orderId: 'o2', amount: 100 } },
      ]);
      const sync = cliSync(workspace);
      const queue = await reviewQueue(workspace, sync);
      expect(queue).toEqual([expect.objectContaining({ referee: 'sock', referrer: 'p', pending: 30, held: 0, reasons: [expect.stringMatching(/self-referral: device ph-1/)] })]);
      const first = await runPayout(workspace, 'run-1', T + 8 * day);
      expect(first.lines).toEqual([expect.objectContaining({ fan: 'p', amount: 30 })]);
      const again = await runPayout(workspace, 'run-1', T + 9 * day);
      expect(again).toMatchObject({ already: true, total: 30 });
      await resolveReview(workspace, 'sock', 'release', T + 9 * day, 'test', sync);
      expect(await reviewQueue(workspace, sync)).toEqual([]);
      const second = await runPayout(workspace, 'run-2', T + 10 * day);
      expect(second.total).toBe(30);
      const view = await referralShow(workspace, 'p', T + 10 * day, sync);
      expect(view.cash).toEqual({ pending: 0, available: 0, held: 0, paid: 60, voided: 0 });
      expect(view.referees.map((referee) => [referee.fan, referee.depth, referee.qualified])).toEqual([['honest', 1, true], ['sock', 1, true]]);
      expect((await ledgerVerify(workspace, sync)).ok).toBe(true);
    } finally {
      await database.close();
    }
  });
});

describe('leaderboards and the compliance report', () => {
  it('rank referrers all time and per month, and warn about trees near the markers', async () => {
    const database = await openSqliteDatabase(join(tempDir(), 'tree.db'));
    try {
      const at = (offset: number) => new Date(T + offset * 60_000).toISOString();
      const events: Record<string, unknown>[] = [{ id: 'root', type: 'follow', fan: 'r', ts: at(0) }];
      // r → 4 children → each 7 grandchildren: 33 people over 3 levels, all qualified.
      let n = 0;
      const join2 = (fan: string, referrer: string, minute: number) => {
        events.push({ id: `f-${fan}`, type: 'follow', fan, ts: at(minute), props: { referrer } });
        events.push({ id: `p-${fan}`, type: 'purchase', fan, ts: at(minute + 1), props: { orderId: `o-${fan}`, amount: 10 } });
      };
      for (let c = 0; c < 4; c++) {
        join2(`c${c}`, 'r', 100 * ++n);
        for (let g = 0; g < 7; g++) join2(`g${c}-${g}`, `c${c}`, 100 * ++n + 45 * 24 * 60 * (g % 2));
      }
      const workspace = await seed(database, events);
      const sync = cliSync(workspace);
      const all = await leaderboard(workspace, null, 3, sync);
      expect(all.entries.map((entry) => [entry.fan, entry.referrals])).toEqual([['c0', 7], ['c1', 7], ['c2', 7]]);
      const october = await leaderboard(workspace, '2026-10', 10, sync);
      expect(october.entries.find((entry) => entry.fan === 'r')?.referrals).toBe(4);
      expect(october.entries.find((entry) => entry.fan === 'c0')?.referrals).toBe(4);
      const report = await complianceReport(workspace, sync);
      expect(report).toMatchObject({ paidLevels: 2, trees: 1, referredFans: 32, deepestLevels: 3 });
      expect(report.largestTrees).toEqual([{ root: 'r', people: 33, levels: 3 }]);
      expect(report.largestDownlines[0]).toEqual({ fan: 'r', direct: 4, downline: 32 });
      expect(report.warnings).toEqual([expect.objectContaining({ root: 'r', severity: 'at-markers' })]);
      expect(report.checks.every((check) => check.ok)).toBe(true);
      const analytics = await fissionAnalytics(workspace, sync);
      expect(analytics.generations).toEqual([{ generation: 1, fans: 4 }, { generation: 2, fans: 28 }]);
      // Rewards 32 × 20, commissions 32 × 10 % of 10, indirect 28 × 2 % of 10, milestones 50 + 4 × (50 + 150); coupons 32 × 20.
      expect(analytics.cost).toMatchObject({ cash: 1527.6, coupons: 640, referredRevenue: 320 });
      expect(analytics.cohorts.reduce((sum, cohort) => sum + cohort.referees, 0)).toBe(32);
      expect(analytics.months.find((month) => month.month === '2026-10')).toMatchObject({ newFollowers: 1 + 4 + 16, referredNewFollowers: 20, followersAtStart: 0, kFactor: null });
    } finally {
      await database.close();
    }
  });
});

describe('fraud rules on generated attacks', () => {
  it('flag every seeded attack and no honest fan', async () => {
    const community = generateCommunity({ ...DEFAULT_GENERATE, fans: 3000, months: 6, seed: 'attacks', start: '2026-03-01T00:00:00+08:00', attacks: 4 });
    expect(community.attacks).toHaveLength(16);
    const database = await openSqliteDatabase(join(tempDir(), 'attacks.db'));
    try {
      const store = await database.workspace('default');
      const workspace = await openWorkspace(store, null);
      await store.append(community.lines.map((line, i) => ({ id: (JSON.parse(line) as { id: string }).id, ts: Date.parse((JSON.parse(line) as { ts: string }).ts), body: line, source: 'gen', line: i + 1, fan: (JSON.parse(line) as { fan: string }).fan })), samePayload);
      await catchUp(workspace);
      const queue = await reviewQueue(workspace, cliSync(workspace));
      const flagged = new Set(queue.map((item) => item.referee));
      // Every referee an attack makes suspect is flagged, and every flagged fan belongs to an attack.
      const attackers = new Set(community.attacks.flatMap((attack) => attack.referees));
      for (const attack of community.attacks) for (const fan of attack.flagged) expect(flagged.has(fan), `${attack.kind}: ${fan}`).toBe(true);
      for (const fan of flagged) expect(attackers.has(fan), fan).toBe(true);
      for (const attack of community.attacks) {
        const held = queue.filter((item) => attack.referees.includes(item.referee));
        expect(held.length, `${attack.kind} of ${attack.referrer}`).toBeGreaterThan(0);
        // A ring's members refer each other down the chain.
        expect(held.every((item) => item.referrer === attack.referrer || attack.referees.includes(item.referrer))).toBe(true);
      }
      expect(queue.some((item) => item.referee.startsWith('u'))).toBe(false);
    } finally {
      await database.close();
    }
  });
});
