/** Fans as CSV rows (the CLI's `fans --format csv` and the API's export share it). */
import type { FanView } from '../core/fan-view.js';

const CSV_COLUMNS = ['id', 'level', 'levelName', 'layer', 'points', 'churnRisk', 'interactions90d', 'purchases90d', 'qualifiedReferrals', 'referrer'];

function csvCell(value: unknown): string {
  const text = value === null || value === undefined ? '' : String(value);
  return /[",\n\r]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/** The tag columns: every fan has the same tags under one program. */
export function tagKeysOf(view: FanView | undefined): string[] {
  return view ? Object.keys(view.tags) : [];
}

export function csvHeader(tagKeys: readonly string[]): string {
  return `${CSV_COLUMNS.concat(tagKeys.map((key) => `tag.${key}`)).join(',')}\n`;
}

export function csvRow(view: FanView, tagKeys: readonly string[]): string {
  const cells: unknown[] = [view.id, view.level.level, view.level.name, view.layer.layer, view.points.balance, view.churnRisk, view.windows.interactions90d, view.windows.purchases90d, view.qualifiedReferrals, view.referrer];
  return `${cells.concat(tagKeys.map((key) => view.tags[key])).map(csvCell).join(',')}\n`;
}

export function renderFansCsv(views: FanView[]): string {
  const tagKeys = tagKeysOf(views[0]);
  return csvHeader(tagKeys) + views.map((view) => csvRow(view, tagKeys)).join('');
}
