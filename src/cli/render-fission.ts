/**
 * Terminal renderings of the referral view, redemptions, payouts, the review queue and the ledger.
 */
import type { LedgerCheck } from '../core/ledger.js';
import type { AuditLine, CampaignReport, ComplianceReport, FissionAnalytics, LeaderboardEntry, PayoutRun, RedemptionOutcome, ReferralView, ReviewItem } from '../app/fission.js';
import { table } from './render.js';

const money = (value: number) => value.toFixed(2);

export function renderReferral(view: ReferralView): string {
  const qualified = view.referees.filter((referee) => referee.depth === 1 && referee.qualified).length;
  const lines = [
    `fan ${view.fan} · code ${view.codes[0]} · referred by ${view.referrer ?? '—'}`,
    `link    ${view.link}`,
    `poster  ${view.poster}`,
    `referrals: ${view.referees.filter((referee) => referee.depth === 1).length} direct (${qualified} qualified), ${view.referees.length} in the tree (depth ≤ 3)`,
    table(['pending', 'available', 'held', 'paid', 'voided'], [[money(view.cash.pending), money(view.cash.available), money(view.cash.held), money(view.cash.paid), money(view.cash.voided)]], false),
  ];
  if (view.coupons > 0) lines.push(`coupons received: ${money(view.coupons)}`);
  if (view.referees.length > 0) {
    const shown = view.referees.slice(0, 30);
    lines.push(table(['referee', 'depth', 'qualified', 'review'], shown.map((r) => [r.fan, r.depth, r.qualified ? '✓' : '–', r.review ?? (r.flags.length > 0 ? 'flagged' : '')]), false));
    if (view.referees.length > shown.length) lines.push(`… and ${view.referees.length - shown.length} more (--json lists all)`);
  }
  lines.push(`as of ${view.asOf}`);
  return `${lines.join('\n')}\n`;
}

export function renderRedemption(outcome: RedemptionOutcome): string {
  if (outcome.status === 'redeemed') return `redeemed ${outcome.item} for fan ${outcome.fan}: −${outcome.points} points, balance ${outcome.balance} (request ${outcome.requestId}, event ${outcome.eventId})\n`;
  return `refused ${outcome.item} for fan ${outcome.fan}: ${outcome.code} — ${outcome.reason} (request ${outcome.requestId})\n`;
}

export function renderPayout(run: PayoutRun, file: string | null): string {
  const head = run.already ? `payout ${run.payoutId} was already made at ${run.at}` : `payout ${run.payoutId} at ${run.at}`;
  const rows = run.lines.slice(0, 20).map((line) => [line.fan, line.code, money(line.amount)]);
  const more = run.lines.length > 20 ? `\n… and ${run.lines.length - 20} more${file ? ` in ${file}` : ''}` : '';
  return `${head}: ${run.fans} fans, ${money(run.total)} ${run.currency}${file ? ` → ${file}` : ''}\n${rows.length > 0 ? `${table(['fan', 'code', 'amount'], rows, false)}${more}\n` : ''}`;
}

export function renderReviewQueue(items: ReviewItem[]): string {
  if (items.length === 0) return 'no referral is under review\n';
  return `${table(['referee', 'referrer', 'pending', 'held', 'reasons'], items.map((item) => [item.referee, item.referrer, money(item.pending), money(item.held), item.reasons.join('; ')]), false)}\nresolve with: fanflow referral release|void <referee>\n`;
}

export function renderLedgerCheck(check: LedgerCheck): string {
  const lines = [`ledger ${check.ok ? 'balanced' : 'NOT balanced'}`, table(['asset', 'sum of all accounts'], check.assets.map((entry) => [entry.asset, entry.sum]), false)];
  if (check.negativeAccounts.length > 0) lines.push(`accounts below zero that must not be:\n${table(['account', 'balance'], check.negativeAccounts.slice(0, 20).map((entry) => [entry.account, entry.balance]), false)}`);
  if (check.mismatchedFans.length > 0) lines.push(`fan balances that differ from their postings:\n${table(['fan', 'account', 'postings', 'state'], check.mismatchedFans.slice(0, 20).map((entry) => [entry.fan, entry.account, entry.ledger, entry.state]), false)}`);
  return `${lines.join('\n')}\n`;
}

export function renderAudit(audit: { fan: string; balances: Record<string, number>; lines: AuditLine[] }): string {
  const rows = audit.lines.map((line) => [line.seq, line.at.slice(0, 19).replace('T', ' '), line.account.slice(`fan:${audit.fan}`.length + 1) || 'points', line.change > 0 ? `+${line.change}` : String(line.change), line.balance, line.rule, `${line.eventId}${line.eventType ? ` (${line.eventType})` : ''}`]);
  const balances = Object.entries(audit.balances).map(([account, value]) => `${account.slice(`fan:${audit.fan}`.length + 1) || 'points'} ${value}`).join(' · ');
  return `${table(['seq', 'at (UTC)', 'account', 'change', 'balance', 'rule', 'event'], rows, false)}\nfan ${audit.fan}: ${balances || 'no postings'}\n`;
}

export function renderLeaderboard(board: { period: string; entries: LeaderboardEntry[] }): string {
  if (board.entries.length === 0) return `no qualified referral ${board.period === 'all' ? 'yet' : `in ${board.period}`}\n`;
  return `referral leaderboard · ${board.period === 'all' ? 'all time' : board.period}\n${table(['#', 'fan', 'code', 'referrals', 'title'], board.entries.map((e) => [e.rank, e.fan, e.code, e.referrals, e.title ?? '']), false)}\n`;
}

export function renderCompliance(report: ComplianceReport): string {
  const lines = [
    `referral compliance · pays ${report.paidLevels} of at most ${report.maxPaidLevels} levels · qualifies on ${report.qualifyOn}`,
    table(['check', 'ok', 'detail'], report.checks.map((c) => [c.check, c.ok ? '✓' : '✗', c.detail]), false),
    `${report.referredFans} referred fans in ${report.trees} trees; the deepest has ${report.deepestLevels} levels`,
  ];
  if (report.largestTrees.length > 0) lines.push(table(['root', 'people', 'levels'], report.largestTrees.map((t) => [t.root, t.people, t.levels]), false));
  if (report.largestDownlines.length > 0) lines.push(`largest downlines\n${table(['fan', 'direct', 'downline'], report.largestDownlines.map((d) => [d.fan, d.direct, d.downline]), false)}`);
  const shown = report.warnings.slice(0, 10).map((w) => `${w.severity === 'at-markers' ? '✗' : '!'} ${w.message}`);
  if (report.warnings.length > shown.length) shown.push(`… and ${report.warnings.length - shown.length} more warnings (--json lists all)`);
  lines.push(report.warnings.length === 0 ? 'no tree approaches the markers (≥ 3 levels and ≥ 30 people)' : shown.join('\n'));
  return `${lines.join('\n')}\n`;
}

const ratio = (value: number | null, digits = 3) => (value === null ? 'n/a' : value.toFixed(digits));

export function renderAnalytics(a: FissionAnalytics): string {
  return [
    'fission by month (K = referred new followers ÷ followers at the month start)',
    table(['month', 'new followers', 'referred', 'K', 'new buyers', 'referred buyers'], a.months.map((m) => [m.month, m.newFollowers, m.referredNewFollowers, ratio(m.kFactor), m.newBuyers, m.referredNewBuyers]), false),
    'cohorts by month of first follow (K = referees they brought ÷ cohort size)',
    table(['cohort', 'fans', 'referees', 'K'], a.cohorts.map((c) => [c.month, c.fans, c.referees, ratio(c.kFactor)]), false),
    'generations of referred fans',
    table(['generation', 'fans'], a.generations.map((g) => [g.generation, g.fans]), false),
    `programme cost: ${a.cost.total.toFixed(2)} ${a.cost.currency} (cash ${a.cost.cash.toFixed(2)}, coupons ${a.cost.coupons.toFixed(2)}) against ${a.cost.referredRevenue.toFixed(2)} of referred fans' net revenue = ${a.cost.costShareOfRevenue === null ? 'n/a' : `${(a.cost.costShareOfRevenue * 100).toFixed(1)} %`}`,
    '',
  ].join('\n');
}

export function renderCampaigns(campaigns: CampaignReport[]): string {
  if (campaigns.length === 0) return 'no campaign in the program (referral.campaigns)\n';
  return campaigns
    .map((c) => {
      const head = `${c.id}${c.title ? ` · ${c.title}` : ''} · ${c.status} · ${c.from} → ${c.to} · bring ${c.target} new followers`;
      const figures = table(['participants', 'completed', 'new followers', 'points paid', 'cash paid'], [[c.participants, c.completed, c.newFollowers, c.rewardPoints, c.rewardCash.toFixed(2)]], false);
      const top = c.top.length > 0 ? `\n${table(['fan', 'new followers', 'done'], c.top.map((t) => [t.fan, t.newFollowers, t.completed ? '✓' : '']), false)}` : '';
      return `${head}\n${figures}${top}`;
    })
    .join('\n\n')
    .concat('\n');
}
