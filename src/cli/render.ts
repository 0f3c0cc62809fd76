/**
 * Terminal and Markdown renderings of the report, a fan and fan lists.
 */
import Table from 'cli-table3';
import type { FanView } from '../core/fan-view.js';
import { formatValue, type MonthlyReport } from '../core/report.js';
import type { LayerName } from '../core/state.js';
import type { Messages } from './messages.js';

const mark = (ok: boolean | null) => (ok === null ? '–' : ok ? '✓' : '✗');
const pct = (value: number | null) => (value === null ? 'n/a' : `${(value * 100).toFixed(1)} %`);
const PYRAMID: Exclude<LayerName, 'unfollowed'>[] = ['core', 'backbone', 'general', 'observation'];

export function table(head: string[], rows: (string | number)[][], markdown: boolean): string {
  if (markdown) {
    const line = (cells: (string | number)[]) => `| ${cells.map((cell) => String(cell).replace(/\|/g, '\\|')).join(' | ')} |`;
    return [line(head), line(head.map(() => '---')), ...rows.map(line)].join('\n');
  }
  // Compact: no rule between rows, so a long table stays readable in a terminal.
  const t = new Table({ head, style: { head: [], border: [], compact: true } });
  t.push(...rows.map((row) => row.map(String)));
  return t.toString();
}

function heading(text: string, markdown: boolean, level = 2): string {
  return markdown ? `${'#'.repeat(level)} ${text}` : `\n${text}\n${'─'.repeat(Math.min(72, [...text].length * 2))}`;
}

function pyramid(report: MonthlyReport, m: Messages, markdown: boolean): string {
  const rows = PYRAMID.map((layer) => {
    const entry = report.layers[layer];
    const width = entry.share === null ? 0 : Math.max(entry.count > 0 ? 1 : 0, Math.round(entry.share * 40));
    return [m.t(layer), entry.count, pct(entry.share), `${'█'.repeat(width)}`, entry.band ?? '', mark(entry.ok)];
  });
  rows.push([m.t('unfollowed'), report.layers.unfollowed.count, '', '', '', '']);
  return table([m.t('layer'), m.t('count'), m.t('share'), '', m.t('band'), m.t('ok')], rows, markdown);
}

function actionList(ids: string[], m: Messages): string {
  return ids.length === 0 ? m.t('none') : ids.slice(0, 10).join(', ') + (ids.length > 10 ? ` … (+${ids.length - 10})` : '');
}

/** The monthly review in the seed's four parts, as terminal text or Markdown. */
export function renderReport(report: MonthlyReport, m: Messages, markdown: boolean): string {
  const out: string[] = [];
  out.push(markdown ? `# ${m.t('title')} — ${report.month}` : `${m.t('title')} — ${report.month}`);
  out.push(`${m.t('asOf')} ${report.asOf}${report.partial ? ` (${m.t('partial')})` : ''} · ${m.t('program')} ${report.programVersion}`);
  out.push(heading(`1. ${m.t('overview')}`, markdown));
  out.push(
    table(
      [m.t('followers'), m.t('newFollowers'), m.t('revenue'), 'ARPU', m.t('maturity')],
      [[`${report.followers.start} → ${report.followers.end}`, `${report.followers.new} (${report.followers.referredNew} referred)`, `${report.overview.revenue.toFixed(2)} ${report.currency}`, report.overview.arpu === null ? 'n/a' : report.overview.arpu.toFixed(2), `Level ${report.maturity.level}`]],
      markdown,
    ),
  );
  out.push(heading(m.t('layers'), markdown, 3));
  out.push(pyramid(report, m, markdown));
  out.push(heading(m.t('levels'), markdown, 3));
  out.push(table(['Lv1', 'Lv2', 'Lv3', 'Lv4', 'Lv5'], [['1', '2', '3', '4', '5'].map((level) => report.levels[level] ?? 0)], markdown));
  out.push(heading(m.t('indicators'), markdown, 3));
  out.push(table([m.t('indicator'), m.t('value'), m.t('target'), m.t('ok')], report.indicators.map((item) => [m.indicator(item.id, item.label), formatValue(item), item.target, mark(item.ok)]), markdown));
  out.push(heading(`${m.t('maturity')}: Level ${report.maturity.level}`, markdown, 3));
  out.push(
    table(
      [m.t('level'), m.t('criterion'), m.t('value'), m.t('target'), m.t('ok')],
      report.maturity.criteria.map((item) => [item.level, m.indicator(item.id, item.label), typeof item.value === 'number' && item.value <= 1 && item.id !== 'core_identified' && item.id !== 'points_earned' ? pct(item.value) : String(item.value), item.target, mark(item.ok)]),
      markdown,
    ),
  );
  out.push(heading(`2. ${m.t('highlights')}`, markdown));
  out.push(report.highlights.length === 0 ? m.t('none') : report.highlights.map((line) => `- ${line}`).join('\n'));
  out.push(heading(`3. ${m.t('problems')}`, markdown));
  if (report.signals.length === 0) out.push(m.t('noSignals'));
  for (const signal of report.signals) {
    out.push(`- [${signal.severity}] ${signal.message} (${formatValue({ id: signal.indicator, value: signal.value })}, target ${signal.target})`);
  }
  out.push(heading(`4. ${m.t('directions')}`, markdown));
  for (const signal of report.signals) {
    out.push(`- ${signal.message}:\n${signal.directions.map((line) => `    · ${line}`).join('\n')}${signal.fans.length > 0 ? `\n    → ${signal.fansLabel}: ${actionList(signal.fans, m)}` : ''}`);
  }
  out.push(heading(m.t('actions'), markdown, 3));
  out.push(`- ${m.t('eligibleForTop')}: ${actionList(report.actions.eligibleForTop, m)}`);
  out.push(`- ${m.t('closestToCore')}: ${actionList(report.actions.closestToCore, m)}`);
  out.push(`- ${m.t('coreAtRisk')}: ${actionList(report.actions.coreAtRisk, m)}`);
  return out.join('\n') + '\n';
}

/** One fan: level with its figures, next level, layer, points, windows, tags. */
export function renderFan(view: FanView, m: Messages): string {
  const lines: string[] = [];
  lines.push(`${m.t('fan')} ${view.id} · ${m.t('asOf')} ${view.asOf} · ${m.t('program')} ${view.programVersion}`);
  lines.push(`\nLv${view.level.level} ${view.level.name}${view.level.locked ? ' (locked)' : ''}${view.level.eligibleForNext ? ' · eligible for Lv5, awaiting brand recognition' : ''}`);
  for (const reason of view.level.reasons) lines.push(`  · ${reason}`);
  if (view.level.next) {
    lines.push(`  ${m.t('nextLevel')}: Lv${view.level.next.level} ${view.level.next.name}`);
    lines.push(`    ${m.t('missing')}: ${view.level.next.missing.length === 0 ? m.t('none') : view.level.next.missing.join('; ')}`);
  }
  lines.push(`\n${m.t('layer')}: ${m.t(view.layer.layer)}`);
  for (const reason of view.layer.reasons) lines.push(`  · ${reason}`);
  lines.push(`\n${m.t('points')}: ${view.points.balance}`);
  if (view.points.recent.length > 0) {
    lines.push(table(['ts', m.t('points'), 'rule', 'event'], view.points.recent.map((p) => [p.at, p.points > 0 ? `+${p.points}` : p.points, p.rule, p.eventId]), false));
  }
  lines.push(`\n${m.t('churnRisk')}: ${view.churnRisk} · ${m.t('referrer')}: ${view.referrer ?? m.t('none')} · ${m.t('qualifiedReferrals')}: ${view.qualifiedReferrals}`);
  lines.push(`${m.t('windows')}: ${Object.entries(view.windows).map(([key, value]) => `${key}=${value}`).join(' ')}`);
  lines.push(`${m.t('tags')}:`);
  lines.push(table(['tag', m.t('value')], Object.entries(view.tags).map(([key, value]) => [key, value === null ? '–' : String(value)]), false));
  return lines.join('\n') + '\n';
}

export { renderFansCsv } from '../app/fans-csv.js';

export function renderFansTable(views: FanView[], m: Messages): string {
  return table(
    ['id', m.t('level'), m.t('layer'), m.t('points'), m.t('churnRisk'), 'ix90d', 'buy90d', 'refs', 'loyalty'],
    views.map((view) => [view.id, `Lv${view.level.level}`, m.t(view.layer.layer), view.points.balance, view.churnRisk, view.windows.interactions90d, view.windows.purchases90d, view.qualifiedReferrals, String(view.tags.loyaltyScore ?? '')]),
    false,
  ) + `\n${views.length} ${m.t('count')}\n`;
}
