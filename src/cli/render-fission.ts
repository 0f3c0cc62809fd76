/**
 * Terminal renderings of the referral view, redemptions, payouts, the review queue and the ledger.
 */
import type { LedgerCheck } from '../core/ledger.js';
import type { AuditLine, CampaignReport, ComplianceReport, FissionAnalytics, LeaderboardEntry, PayoutRun, RedemptionOutcome, ReferralView, ReviewItem } from '../app/fission.js';
import { table } from './render.js';
import type { Messages } from './messages.js';

const money = (value: number) => value.toFixed(2);

export function renderReferral(view: ReferralView, m: Messages): string {
  const qualified = view.referees.filter((referee) => referee.depth === 1 && referee.qualified).length;
  const lines = [
    `${m.t('fan')} ${view.fan} · ${m.t('code')} ${view.codes[0]} · ${m.t('referredBy')} ${view.referrer ?? '—'}`,
    `${m.t('link')}  ${view.link}`,
    `${m.t('posterText')}  ${view.poster}`,
    `referrals: ${view.referees.filter((referee) => referee.depth === 1).length} direct (${qualified} qualified), ${view.referees.length} in the tree (depth ≤ 3)`,
    table([m.t('cashPending'), m.t('cashAvailable'), m.t('cashHeld'), m.t('cashPaid'), m.t('cashVoided')], [[money(view.cash.pending), money(view.cash.available), money(view.cash.held), money(view.cash.paid), money(view.cash.voided)]], false),
  ];
  if (view.coupons > 0) lines.push(`${m.t('couponsReceived')}: ${money(view.coupons)}`);
  if (view.referees.length > 0) {
    const shown = view.referees.slice(0, 30);
    lines.push(table([m.t('referee'), m.t('depth'), m.t('qualified'), m.t('reviewState')], shown.map((r) => [r.fan, r.depth, r.qualified ? '✓' : '–', r.review ?? (r.flags.length > 0 ? m.t('flagged') : '')]), false));
    if (view.referees.length > shown.length) lines.push(`… and ${view.referees.length - shown.length} more (--json lists all)`);
  }
  lines.push(`${m.t('asOf')} ${view.asOf}`);
  return `${lines.join('\n')}\n`;
}

export function renderRedemption(outcome: RedemptionOutcome): string {
  if (outcome.status === 'redeemed') return `redeemed ${outcome.item} for fan ${outcome.fan}: −${outcome.points} points, balance ${outcome.balance} (request ${outcome.requestId}, event ${outcome.eventId})\n`;
  return `refused ${outcome.item} for fan ${outcome.fan}: ${outcome.code} — ${outcome.reason} (request ${outcome.requestId})\n`;
}

export function renderPayout(run: PayoutRun, file: string | null, m: Messages): string {
  const head = run.already ? `payout ${run.payoutId} was already made at ${run.at}` : `payout ${run.payoutId} at ${run.at}`;
  const rows = run.lines.slice(0, 20).map((line) => [line.fan, line.code, money(line.amount)]);
  const more = run.lines.length > 20 ? `\n… and ${run.lines.length - 20} more${file ? ` in ${file}` : ''}` : '';
  return `${head}: ${run.fans} fans, ${money(run.total)} ${run.currency}${file ? ` → ${file}` : ''}\n${rows.length > 0 ? `${table([m.t('fan'), m.t('code'), m.t('amount')], rows, false)}${more}\n` : ''}`;
}

export function renderReviewQueue(items: ReviewItem[], m: Messages): string {
  if (items.length === 0) return `${m.t('noReview')}\n`;
  return `${table([m.t('referee'), m.t('referrer'), m.t('cashPending'), m.t('cashHeld'), m.t('reasons')], items.map((item) => [item.referee, item.referrer, money(item.pending), money(item.held), item.reasons.join('; ')]), false)}\n${m.t('resolveHint')}\n`;
}

export function renderLedgerCheck(check: LedgerCheck, m: Messages): string {
  const lines = [m.t(check.ok ? 'ledgerBalanced' : 'ledgerNotBalanced'), table([m.t('asset'), m.t('sumAll')], check.assets.map((entry) => [entry.asset, entry.sum]), false)];
  if (check.negativeAccounts.length > 0) lines.push(`accounts below zero that must not be:\n${table(['account', 'balance'], check.negativeAccounts.slice(0, 20).map((entry) => [entry.account, entry.balance]), false)}`);
  if (check.mismatchedFans.length > 0) lines.push(`fan balances that differ from their postings:\n${table(['fan', 'account', 'postings', 'state'], check.mismatchedFans.slice(0, 20).map((entry) => [entry.fan, entry.account, entry.ledger, entry.state]), false)}`);
  return `${lines.join('\n')}\n`;
}

export function renderAudit(audit: { fan: string; balances: Record<string, number>; lines: AuditLine[] }, m: Messages): string {
  const rows = audit.lines.map((line) => [line.seq, line.at.slice(0, 19).replace('T', ' '), line.account.slice(`fan:${audit.fan}`.length + 1) || 'points', line.change > 0 ? `+${line.change}` : String(line.change), line.balance, line.rule, `${line.eventId}${line.eventType ? ` (${line.eventType})` : ''}`]);
  const balances = Object.entries(audit.balances).map(([account, value]) => `${account.slice(`fan:${audit.fan}`.length + 1) || 'points'} ${value}`).join(' · ');
  return `${table(['seq', m.t('atUtc'), m.t('account'), m.t('change'), m.t('balance'), m.t('rule'), m.t('event')], rows, false)}\nfan ${audit.fan}: ${balances || 'no postings'}\n`;
}

export function renderLeaderboard(board: { period: string; entries: LeaderboardEntry[] }, m: Messages): string {
  if (board.entries.length === 0) return `no qualified referral ${board.period === 'all' ? 'yet' : `in ${board.period}`}\n`;
  return `${m.t('leaderboard')} · ${board.period === 'all' ? m.t('allTime') : board.period}\n${table(['#', m.t('fan'), m.t('code'), m.t('referrals'), m.t('titleCol')], board.entries.map((e) => [e.rank, e.fan, e.code, e.referrals, e.title ?? '']), false)}\n`;
}

export function renderCompliance(report: ComplianceReport, m: Messages): string {
  const lines = [
    `referral compliance · pays ${report.paidLevels} of at most ${report.maxPaidLevels} levels · qualifies on ${report.qualifyOn}`,
    table([m.t('check'), m.t('ok'), m.t('detail')], report.checks.map((c) => [c.check, c.ok ? '✓' : '✗', c.detail]), false),
    `${report.referredFans} referred fans in ${report.trees} trees; the deepest has ${report.deepestLevels} levels`,
  ];
  if (report.largestTrees.length > 0) lines.push(table([m.t('root'), m.t('people'), m.t('levelsCol')], report.largestTrees.map((t) => [t.root, t.people, t.levels]), false));
  if (report.largestDownlines.length > 0) lines.push(`${m.t('largestDownlines')}\n${table([m.t('fan'), m.t('direct'), m.t('downline')], report.largestDownlines.map((d) => [d.fan, d.direct, d.downline]), false)}`);
  const shown = report.warnings.slice(0, 10).map((w) => `${w.severity === 'at-markers' ? '✗' : '!'} ${w.message}`);
  if (report.warnings.length > shown.length) shown.push(`… and ${report.warnings.length - shown.length} more warnings (--json lists all)`);
  lines.push(report.warnings.length === 0 ? 'no tree approaches the markers (≥ 3 levels and ≥ 30 people)' : shown.join('\n'));
  return `${lines.join('\n')}\n`;
}

const ratio = (value: number | null, digits = 3) => (value === null ? 'n/a' : value.toFixed(digits));

export function renderAnalytics(a: FissionAnalytics, m: Messages): string {
  return [
    m.t('fissionByMonth'),
    table([m.t('month'), m.t('newFollowers'), m.t('referredCol'), 'K', m.t('newBuyers'), m.t('referredBuyers')], a.months.map((m) => [m.month, m.newFollowers, m.referredNewFollowers, ratio(m.kFactor), m.newBuyers, m.referredNewBuyers]), false),
    m.t('cohortsTitle'),
    table([m.t('cohort'), m.t('fansCol'), m.t('referee'), 'K'], a.cohorts.map((c) => [c.month, c.fans, c.referees, ratio(c.kFactor)]), false),
    m.t('generationsTitle'),
    table([m.t('generation'), m.t('fansCol')], a.generations.map((g) => [g.generation, g.fans]), false),
    `programme cost: ${a.cost.total.toFixed(2)} ${a.cost.currency} (cash ${a.cost.cash.toFixed(2)}, coupons ${a.cost.coupons.toFixed(2)}) against ${a.cost.referredRevenue.toFixed(2)} of referred fans' net revenue = ${a.cost.costShareOfRevenue === null ? 'n/a' : `${(a.cost.costShareOfRevenue * 100).toFixed(1)} %`}`,
    '',
  ].join('\n');
}

export function renderCampaigns(campaigns: CampaignReport[], m: Messages): string {
  if (campaigns.length === 0) return 'no campaign in the program (referral.campaigns)\n';
  return campaigns
    .map((c) => {
      const head = `${c.id}${c.title ? ` · ${c.title}` : ''} · ${c.status} · ${c.from} → ${c.to} · bring ${c.target} new followers`;
      const figures = table([m.t('participants'), m.t('completed'), m.t('broughtFollowers'), m.t('pointsPaid'), m.t('cashPaidCol')], [[c.participants, c.completed, c.newFollowers, c.rewardPoints, c.rewardCash.toFixed(2)]], false);
      const top = c.top.length > 0 ? `\n${table([m.t('fan'), m.t('broughtFollowers'), m.t('done')], c.top.map((t) => [t.fan, t.newFollowers, t.completed ? '✓' : '']), false)}` : '';
      return `${head}\n${figures}${top}`;
    })
    .join('\n\n')
    .concat('\n');
}
