import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import Database from 'better-sqlite3';
import { beforeAll, describe, expect, it } from 'vitest';
import { BIN, fanflow } from './cli-helpers.js';
import { tempDir } from './store-helpers.js';

describe('fanflow CLI contract', () => {
  const dir = tempDir('fanflow-cli-');
  const db = join(dir, 'demo.db');
  const file = join(dir, 'demo.ndjson');
  const asOf = '2026-11-01T00:00:00+08:00';

  beforeAll(() => {
    const generated = fanflow(['demo', '--fans', '600', '--months', '6', '--seed', 'cli', '--start', '2026-05-01T00:00:00+08:00', '--out', file]);
    expect(generated.code).toBe(0);
  });

  it('demo --out is byte-identical for the same seed and writes zombie labels apart', () => {
    const again = join(dir, 'again.ndjson');
    expect(fanflow(['demo', '--fans', '600', '--months', '6', '--seed', 'cli', '--start', '2026-05-01T00:00:00+08:00', '--out', again]).code).toBe(0);
    expect(readFileSync(again)).toEqual(readFileSync(file));
    const labels = readFileSync(`${file}.labels.csv`, 'utf8').trim().split('\n');
    const zombies = labels.slice(1).filter((line) => line.includes(',true,')).length;
    expect(zombies / 600).toBeGreaterThanOrEqual(0.15);
    expect(zombies / 600).toBeLessThanOrEqual(0.3);
    expect(readFileSync(file, 'utf8')).not.toMatch(/zombie/);
  });

  it('import --json prints exactly the summary document', () => {
    const result = fanflow(['--db', db, 'import', file, '--json']);
    expect(result.code).toBe(0);
    const summary = JSON.parse(result.stdout);
    expect(summary).toMatchObject({ duplicates: 0, conflicts: 0, rejected: 0, rejectsFile: null });
    expect(summary.accepted).toBe(readFileSync(file, 'utf8').trim().split('\n').length);
    const again = JSON.parse(fanflow(['--db', db, 'import', file, '--json']).stdout);
    expect(again).toMatchObject({ accepted: 0, duplicates: summary.accepted });
  });

  it('fan --json has the contract fields; unknown id exits 2', () => {
    const fan = fanflow(['--db', db, '--as-of', asOf, 'fan', 'u000001', '--json']);
    expect(fan.code).toBe(0);
    const view = JSON.parse(fan.stdout);
    expect(view.id).toBe('u000001');
    expect(view.level.level).toBeGreaterThanOrEqual(1);
    expect(typeof view.level.name).toBe('string');
    expect(typeof view.level.eligibleForNext).toBe('boolean');
    expect(Array.isArray(view.level.reasons)).toBe(true);
    expect(['core', 'backbone', 'general', 'observation', 'unfollowed']).toContain(view.layer.layer);
    expect(Number.isInteger(view.points.balance)).toBe(true);
    expect(Number.isInteger(view.qualifiedReferrals)).toBe(true);
    expect(Number.isInteger(view.windows.interactions90d)).toBe(true);
    expect(Number.isInteger(view.windows.purchases90d)).toBe(true);
    expect(['low', 'medium', 'high']).toContain(view.churnRisk);
    expect(view.tags).toHaveProperty('loyaltyScore');
    const missing = fanflow(['--db', db, 'fan', 'nobody', '--json']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/unknown fan "nobody"/);
    expect(missing.stdout).toBe('');
  });

  it('a past --as-of shows the state as it was then', () => {
    const early = JSON.parse(fanflow(['--db', db, '--as-of', '2026-05-02T00:00:00+08:00', 'fan', 'u000001', '--json']).stdout);
    const late = JSON.parse(fanflow(['--db', db, '--as-of', asOf, 'fan', 'u000001', '--json']).stdout);
    expect(early.asOf).toBe('2026-05-02T00:00:00+08:00');
    expect(early.points.balance).toBeLessThanOrEqual(late.points.balance);
    const before = fanflow(['--db', db, '--as-of', '2026-04-01T00:00:00+08:00', 'fan', 'u000001', '--json']);
    expect(before.code).toBe(2);
  });

  it('fans filters and exports CSV and JSON', () => {
    const json = JSON.parse(fanflow(['--db', db, '--as-of', asOf, 'fans', '--layer', 'general', '--json']).stdout);
    expect(json.length).toBeGreaterThan(0);
    expect(json.every((view: { layer: { layer: string } }) => view.layer.layer === 'general')).toBe(true);
    const risky = JSON.parse(fanflow(['--db', db, '--as-of', asOf, 'fans', '--tag', 'churnRisk=high', '--json']).stdout);
    expect(risky.every((view: { churnRisk: string }) => view.churnRisk === 'high')).toBe(true);
    const csv = fanflow(['--db', db, '--as-of', asOf, 'fans', '--level', '2', '--format', 'csv']);
    expect(csv.code).toBe(0);
    const lines = csv.stdout.trim().split('\n');
    expect(lines[0].startsWith('id,level,levelName,layer,points')).toBe(true);
    expect(lines.slice(1).every((line) => line.split(',')[1] === '2')).toBe(true);
    expect(fanflow(['--db', db, 'fans', '--tag', 'nonsense=1']).code).toBe(2);
  });

  it('report --json has layers, indicators, maturity and signals; text and md render', () => {
    const result = fanflow(['--db', db, '--as-of', asOf, 'report', '--month', '2026-10', '--json']);
    expect(result.code).toBe(0);
    const report = JSON.parse(result.stdout);
    expect(report.month).toBe('2026-10');
    for (const layer of ['core', 'backbone', 'general', 'observation']) {
      expect(report.layers[layer]).toHaveProperty('count');
      expect(report.layers[layer]).toHaveProperty('share');
    }
    const shares = ['core', 'backbone', 'general', 'observation'].reduce((sum, layer) => sum + report.layers[layer].share, 0);
    expect(shares).toBeCloseTo(1, 3);
    expect(report.indicators.length).toBeGreaterThan(10);
    for (const indicator of report.indicators) expect(indicator).toHaveProperty('ok');
    expect([1, 2, 3, 4]).toContain(report.maturity.level);
    expect(report.maturity.criteria.length).toBeGreaterThan(0);
    expect(Array.isArray(report.signals)).toBe(true);
    const text = fanflow(['--db', db, '--as-of', asOf, 'report', '--month', '2026-10']);
    expect(text.stdout).toMatch(/Health indicators/);
    const md = fanflow(['--db', db, '--as-of', asOf, 'report', '--month', '2026-10', '--format', 'md']);
    expect(md.stdout).toMatch(/^# /);
    expect(md.stdout).toMatch(/\| --- \|/);
    const zh = fanflow(['--db', db, '--as-of', asOf, '--lang', 'zh-CN', 'report', '--month', '2026-10']);
    expect(zh.stdout).toMatch(/健康指标/);
    expect(fanflow(['--db', db, 'report', '--month', '2026-13']).code).toBe(2);
  });

  it('program init, validate and show; a broken file names the line and path, exit 2', () => {
    const programFile = join(dir, 'p.yaml');
    expect(fanflow(['program', 'init', programFile]).code).toBe(0);
    expect(fanflow(['program', 'validate', programFile]).code).toBe(0);
    writeFileSync(programFile, readFileSync(programFile, 'utf8').replace('graceDays: 30', 'graceDays: -3'));
    const broken = fanflow(['program', 'validate', programFile]);
    expect(broken.code).toBe(2);
    const line = readFileSync(programFile, 'utf8').split('\n').findIndex((text) => text.includes('graceDays: -3')) + 1;
    expect(broken.stderr).toContain(`${programFile}:${line}: demotion.graceDays:`);
    expect(broken.stderr).not.toMatch(/at .*\.js/);
    const shown = fanflow(['--db', db, 'program', 'show']);
    expect(shown.stdout).toMatch(/^# version default@/);
  });

  it('referral and ledger contracts: validate names a depth above 3 (exit 2), referral show and ledger verify print their documents', () => {
    const programFile = join(dir, 'deep.yaml');
    writeFileSync(programFile, fanflow(['program', 'show']).stdout.replace('  depth: 2', '  depth: 4'));
    const deep = fanflow(['program', 'validate', programFile]);
    expect(deep.code).toBe(2);
    expect(deep.stderr).toMatch(/referral\.depth: referral depth is at most 3/);
    const top = JSON.parse(fanflow(['--db', db, 'referral', 'leaderboard', '--limit', '1', '--json']).stdout).entries[0].fan as string;
    const shown = fanflow(['--db', db, '--as-of', asOf, 'referral', 'show', top, '--json']);
    expect(shown.code).toBe(0);
    const view = JSON.parse(shown.stdout);
    expect(Object.keys(view)).toEqual(expect.arrayContaining(['fan', 'codes', 'referrer', 'referees', 'cash']));
    expect(Object.keys(view.cash).sort()).toEqual(['available', 'held', 'paid', 'pending', 'voided']);
    expect(view.referees.length).toBeGreaterThan(0);
    for (const referee of view.referees) expect([1, 2, 3]).toContain(referee.depth);
    const verify = fanflow(['--db', db, 'ledger', 'verify', '--json']);
    expect(verify.code).toBe(0);
    const check = JSON.parse(verify.stdout);
    expect(check).toMatchObject({ ok: true, negativeAccounts: [] });
    expect(check.assets.map((entry: { asset: string; sum: number }) => [entry.asset, entry.sum])).toEqual([['cash', 0], ['coupon', 0], ['points', 0]]);
    const refused = fanflow(['--db', db, 'redeem', top, 'offline-gathering', '--request-id', 'cli-1', '--json']);
    expect([0, 1]).toContain(refused.code);
    expect(JSON.parse(fanflow(['--db', db, 'redeem', top, 'offline-gathering', '--request-id', 'cli-1', '--json']).stdout)).toEqual(JSON.parse(refused.stdout));
  });

  it('fan reads the time zone\'s offsets the import kept instead of asking ICU, and asks ICU when they are of other data', () => {
    // Counts the Intl.DateTimeFormat objects the command makes (each one would load ICU's locales).
    const counter = join(dir, 'count-intl.mjs');
    writeFileSync(
      counter,
      `let made = 0; const Real = Intl.DateTimeFormat;
       Intl.DateTimeFormat = new Proxy(Real, { construct(target, args) { made++; return Reflect.construct(target, args); }, apply(target, self, args) { made++; return Reflect.apply(target, self, args); } });
       process.on('exit', () => process.stderr.write('INTL ' + made + '\\n'));`,
    );
    const run = (database: string, args: string[]) => {
      const result = spawnSync(process.execPath, ['--import', pathToFileURL(counter).href, BIN, '--db', database, ...args], { encoding: 'utf8', env: { ...process.env, FANFLOW_LANG: 'en' } });
      expect(result.status, result.stderr).toBe(0);
      return { made: Number(/INTL (\d+)/.exec(result.stderr)?.[1]), stdout: result.stdout };
    };
    const now = run(db, ['fan', 'u000001', '--json']);
    const then = run(db, ['--as-of', asOf, 'fan', 'u000001', '--json']);
    expect(now.made).toBe(0);
    expect(then.made).toBe(0);
    // Offsets kept by another version of the time-zone data are ignored: the same answer, from ICU.
    const other = join(dir, 'other-tz.db');
    copyFileSync(db, other);
    const sqlite = new Database(other);
    const key = 'zoneOffsets:Asia/Shanghai';
    const kept = JSON.parse(sqlite.prepare('SELECT value FROM state WHERE key = ?').pluck().get(key) as string);
    sqlite.prepare('UPDATE state SET value = ? WHERE key = ?').run(JSON.stringify({ ...kept, tz: 'other' }), key);
    sqlite.close();
    const fromIcu = run(other, ['--as-of', asOf, 'fan', 'u000001', '--json']);
    expect(fromIcu.made).toBeGreaterThan(0);
    expect(fromIcu.stdout).toBe(then.stdout);
  });

  it('replay verifies the incremental state', () => {
    const result = JSON.parse(fanflow(['--db', db, 'replay', '--json']).stdout);
    expect(result).toMatchObject({ compared: true, verified: true, ledgerOk: true });
  });

  it('bad usage exits 2 with a message, never a stack trace', () => {
    const badAsOf = fanflow(['--db', db, '--as-of', 'yesterday', 'fan', 'u000001']);
    expect(badAsOf.code).toBe(2);
    expect(badAsOf.stderr).toMatch(/--as-of/);
    expect(fanflow(['import', join(dir, 'missing.ndjson')]).code).toBe(2);
    expect(fanflow(['frobnicate']).code).toBe(2);
    expect(existsSync(join(dir, 'never.db'))).toBe(false);
    expect(fanflow(['--db', join(dir, 'never.db'), 'fan', 'x']).code).toBe(2);
  });
});
