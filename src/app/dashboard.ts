/**
 * Read models behind the dashboard's pages that the CLI has no command for: the indicator trend
 * over months, layer movement between two month boundaries, and one fan's timeline. The trend
 * and movement are computed from the stored month snapshots alone (one character per fan), so
 * they cost a pass over a few strings, not a pass over fans.
 */
import { computeReport, type Indicator, type MonthlyReport } from '../core/report.js';
import { LAYER_CODES, LAYER_NAMES, type LayerName, type Snapshot, type World } from '../core/state.js';
import { UsageError } from './errors.js';
import { completeMonthEnd, heldAdvanced, mergeAdvanced } from './report-pass.js';
import { restoreWorld } from './serialize.js';
import { catchUp, provisionalFor, type StateMeta, type Workspace } from './workspace.js';

const NO_ACTIONS = { eligibleForTop: [], closestToCore: [], closestToBackbone: [], coreAtRisk: [], slipping: [], observationRecent: [] };

export interface TrendPoint {
  month: string;
  followers: MonthlyReport['followers'];
  layers: Record<LayerName, number>;
  /** Indicator id → value (null when it cannot be computed for the month). */
  values: Record<string, number | null>;
  ok: Record<string, boolean | null>;
  maturity: number;
  revenue: number;
}

async function storedWorld(workspace: Workspace, meta: StateMeta | null, asOf: number): Promise<World | null> {
  let current = meta ?? (await workspace.store.loadStateMeta());
  if (!current) {
    await catchUp(workspace);
    current = await workspace.store.loadStateMeta();
  }
  if (!current) return null;
  const world = restoreWorld(current.world, [], await workspace.store.readSnapshots());
  // The boundary after the state's clock: its snapshot holds while no event arrives before it.
  const provisional = await provisionalFor(workspace, current.appliedSeq);
  if (provisional && !world.snapshots[provisional.month]) {
    const snapshot = JSON.parse(provisional.data) as Snapshot;
    if (snapshot.at <= asOf) world.snapshots[provisional.month] = snapshot;
  }
  // The boundaries after the clock that the last pass over the fans advanced them through.
  const held = heldAdvanced(workspace, current.appliedSeq);
  if (held) mergeAdvanced(world, held, workspace.engine.calendar, asOf);
  return world;
}

function monthsEndingAt(workspace: Workspace, last: string, count: number): string[] {
  const { calendar } = workspace.engine;
  const months = [last];
  while (months.length < count) months.unshift(calendar.previousMonthKey(months[0]));
  return months;
}

function reportOf(workspace: Workspace, world: World, month: string): MonthlyReport | null {
  const { calendar, program } = workspace.engine;
  const end = world.snapshots[calendar.nextMonthKey(month)];
  if (!end) return null;
  return computeReport({
    month,
    asOf: calendar.formatLocal(end.at),
    partial: false,
    programVersion: program.version,
    currency: program.currency,
    cac: program.health.cac,
    start: world.snapshots[month] ?? null,
    end,
    stats: world.months[month],
    previousStats: world.months[calendar.previousMonthKey(month)],
    groupEventsSeen: world.groupEventsSeen,
    actions: NO_ACTIONS,
  });
}

export function trendPointOf(report: MonthlyReport): TrendPoint {
  const values: Record<string, number | null> = {};
  const ok: Record<string, boolean | null> = {};
  for (const item of report.indicators as Indicator[]) {
    values[item.id] = item.value;
    ok[item.id] = item.ok;
  }
  const layers = Object.fromEntries(LAYER_NAMES.map((layer) => [layer, report.layers[layer].count])) as Record<LayerName, number>;
  return { month: report.month, followers: report.followers, layers, values, ok, maturity: report.maturity.level, revenue: report.overview.revenue };
}

/**
 * The months up to `last` (at most `count`) whose end boundary the state has passed, each with
 * its indicators; months before the first event are left out. `current`: the report of `last`
 * when the caller has it (it may still be running), used for that month.
 */
export async function queryTrend(workspace: Workspace, last: string, count: number, asOf: number, meta: StateMeta | null, current?: MonthlyReport): Promise<TrendPoint[]> {
  if (!Number.isInteger(count) || count < 1 || count > 60) throw new UsageError('months: use 1–60');
  const world = await storedWorld(workspace, meta, asOf);
  if (!world) return [];
  const points: TrendPoint[] = [];
  for (const month of monthsEndingAt(workspace, last, count)) {
    const report = month === last && current ? current : reportOf(workspace, world, month);
    if (!report || (report.followers.start === 0 && report.followers.end === 0 && world.months[month] === undefined)) continue;
    points.push(trendPointOf(report));
  }
  return points;
}

export interface Movement {
  month: string;
  /** Layer at the month's start ('new' for fans who first appeared in it) → layer at its end. */
  flows: { from: LayerName | 'new'; to: LayerName; count: number }[];
  layers: {
    layer: Exclude<LayerName, 'unfollowed'>;
    start: number;
    promoted: number;
    demoted: number;
    unfollowed: number;
    promotionRate: number | null;
    promotionTarget: number | null;
    churnRate: number | null;
    churnTarget: number | null;
  }[];
}

// The seed's targets per layer: promotion General → Backbone > 5 %, Backbone → Core > 1 %;
// monthly churn < 10 % (Core < 1 %).
const PROMOTION_TARGET: Record<string, number | null> = { core: null, backbone: 0.01, general: 0.05, observation: null };
const CHURN_TARGET: Record<string, number> = { core: 0.01, backbone: 0.1, general: 0.1, observation: 0.1 };

/** Where each layer's fans at the start of `month` were at its end, with the rates the seed targets. */
export function computeMovement(month: string, start: Snapshot | null, end: Snapshot): Movement {
  const rank = (code: string) => 'OGBC'.indexOf(code);
  const flows = new Map<string, number>();
  const counts = new Map<string, { start: number; promoted: number; demoted: number; unfollowed: number; activeBefore: number; churned: number }>();
  for (const code of 'CBGO') counts.set(code, { start: 0, promoted: 0, demoted: 0, unfollowed: 0, activeBefore: 0, churned: 0 });
  for (let no = 0; no < end.layers.length; no++) {
    const to = end.layers[no];
    if (to === '-') continue;
    const from = start && no < start.layers.length ? start.layers[no] : '-';
    const key = `${from}${to}`;
    flows.set(key, (flows.get(key) ?? 0) + 1);
    const entry = counts.get(from);
    if (!entry || !start) continue;
    entry.start++;
    if (to === 'U') entry.unfollowed++;
    else if (rank(to) > rank(from)) entry.promoted++;
    else if (rank(to) < rank(from)) entry.demoted++;
    if (start.active[no] === '1') {
      entry.activeBefore++;
      if (end.active[no] !== '1' || to === 'U') entry.churned++;
    }
  }
  const name = (code: string): LayerName => LAYER_NAMES[LAYER_CODES.indexOf(code)];
  const ratio = (a: number, b: number) => (b > 0 ? Math.round((a / b) * 10_000) / 10_000 : null);
  return {
    month,
    flows: [...flows].filter(([key]) => key[0] !== 'U' || key[1] !== 'U').map(([key, count]) => ({ from: key[0] === '-' ? ('new' as const) : name(key[0]), to: name(key[1]), count })),
    layers: [...counts].map(([code, entry]) => {
      const layer = name(code) as Exclude<LayerName, 'unfollowed'>;
      return {
        layer,
        start: entry.start,
        promoted: entry.promoted,
        demoted: entry.demoted,
        unfollowed: entry.unfollowed,
        promotionRate: layer === 'core' ? null : ratio(entry.promoted, entry.start),
        promotionTarget: PROMOTION_TARGET[layer],
        churnRate: ratio(entry.churned, entry.activeBefore),
        churnTarget: CHURN_TARGET[layer],
      };
    }),
  };
}

export async function queryMovement(workspace: Workspace, month: string, asOf: number, meta: StateMeta | null): Promise<Movement> {
  const world = await storedWorld(workspace, meta, asOf);
  const endKey = workspace.engine.calendar.nextMonthKey(month);
  // A month that ended after the state's clock (no event since): its boundaries from a pass.
  const seq = world ? (meta ?? (await workspace.store.loadStateMeta()))?.appliedSeq : undefined;
  if (world && seq !== undefined) await completeMonthEnd(workspace, world, seq, endKey, asOf);
  const end = world?.snapshots[endKey];
  if (!world || !end) throw new UsageError(`month ${month} has not ended yet; movement compares the month's first and last instants`);
  return computeMovement(month, world.snapshots[month] ?? null, end);
}

export interface TimelineItem {
  at: string;
  kind: 'event' | 'change';
  type: string;
  eventId: string | null;
  seq: number | null;
  detail: Record<string, unknown>;
}

/** Changes read for one timeline page at most (a fan has a few per event at most). */
const DERIVED_PER_PAGE = 1000;

/**
 * One fan's events (newest first, `limit` of them, before log position `beforeSeq`) merged with
 * the changes derived from them (level changes, badges, referrals, Lv5 eligibility).
 */
export async function queryTimeline(workspace: Workspace, fan: string, limit: number, beforeSeq: number | undefined): Promise<{ items: TimelineItem[]; nextBefore: number | null }> {
  const { store } = workspace;
  // After the first page, the event at `beforeSeq` (the previous page's oldest) is read too: its
  // time bounds this page's changes, so that each change shows on exactly one page.
  const rows = await store.readFanEvents(fan, beforeSeq === undefined ? limit : limit + 1, beforeSeq === undefined ? undefined : beforeSeq + 1);
  const boundary = beforeSeq !== undefined && rows[0]?.seq === beforeSeq ? (rows.shift() as { seq: number; body: string }) : null;
  const events = rows.slice(0, limit);
  const timeOf = (event: { ts: string | number }) => (typeof event.ts === 'number' ? event.ts : Date.parse(event.ts));
  const items: TimelineItem[] = events.map((row) => {
    const event = JSON.parse(row.body) as { id: string; type: string; ts: string | number; channel?: string; props?: Record<string, unknown> };
    const detail: Record<string, unknown> = { ...(event.props ?? {}) };
    if (event.channel) detail.channel = event.channel;
    return { at: new Date(timeOf(event)).toISOString(), kind: 'event', type: event.type, eventId: event.id, seq: row.seq, detail };
  });
  const newest = boundary ? timeOf(JSON.parse(boundary.body) as { ts: string | number }) : undefined;
  const oldest = events.length === limit ? Date.parse(items[items.length - 1].at) : Number.NEGATIVE_INFINITY;
  for (const row of await store.readFanDerived(fan, DERIVED_PER_PAGE, newest)) {
    if (row.ts < oldest) continue;
    const { type, fan: _fan, ts: _ts, eventId: _eventId, ...detail } = JSON.parse(row.data) as Record<string, unknown>;
    items.push({ at: new Date(row.ts).toISOString(), kind: 'change', type: String(type), eventId: row.eventId, seq: null, detail });
  }
  items.sort((a, b) => (a.at < b.at ? 1 : a.at > b.at ? -1 : a.kind === b.kind ? 0 : a.kind === 'change' ? -1 : 1));
  return { items, nextBefore: events.length === limit ? events[events.length - 1].seq : null };
}

export interface TreeNode {
  fan: string;
  children: TreeNode[];
}

/**
 * The referral tree below `root` (the fan itself and everyone it brought, directly or not), at
 * most `maxNodes` fans, breadth first; `truncated` says when more were left out.
 */
export async function queryReferralTree(workspace: Workspace, root: string, maxNodes = 500): Promise<{ root: string; people: number; levels: number; truncated: boolean; tree: TreeNode }> {
  const children = new Map<string, string[]>();
  for (const edge of await workspace.store.referralEdges()) {
    const list = children.get(edge.referrer);
    if (list) list.push(edge.fan);
    else children.set(edge.referrer, [edge.fan]);
  }
  const tree: TreeNode = { fan: root, children: [] };
  let people = 1;
  let levels = 1;
  let truncated = false;
  let frontier: [TreeNode, number][] = [[tree, 1]];
  const seen = new Set([root]);
  while (frontier.length > 0) {
    const next: [TreeNode, number][] = [];
    for (const [node, depth] of frontier) {
      for (const fan of (children.get(node.fan) ?? []).sort()) {
        if (seen.has(fan)) continue;
        if (people >= maxNodes) {
          truncated = true;
          continue;
        }
        seen.add(fan);
        const child = { fan, children: [] };
        node.children.push(child);
        people++;
        levels = Math.max(levels, depth + 1);
        next.push([child, depth + 1]);
      }
    }
    frontier = next;
  }
  return { root, people, levels, truncated, tree };
}
