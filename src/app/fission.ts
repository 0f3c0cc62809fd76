/**
 * Referral and ledger use cases (PRODUCT §5) for the CLI and the HTTP API: a fan's referral
 * view, redemptions decided once under the writer lock, payout runs, the fraud review queue, the
 * ledger check and a fan's audit trail.
 */
import { LedgerTally, type LedgerCheck } from '../core/ledger.js';
import type { CashItem, FanState, ReviewState, World } from '../core/state.js';
import type { LogEntry, RedemptionRecord, Store } from '../store/store.js';
import { NotFoundError, UsageError } from './errors.js';
import { deserializeFan } from './serialize.js';
import { catchUp, currentMeta, underStateLock, worldAt, type Workspace } from './workspace.js';
import { samePayload } from './same-payload.js';
import { clockOf } from './queries.js';
import { countBelow } from '../core/facts.js';

const toMain = (minor: number) => minor / 100;
const iso = (ts: number) => new Date(ts).toISOString();

export interface CashFigures {
  pending: number;
  available: number;
  paid: number;
  voided: number;
  held: number;
}

export interface ReferralView {
  fan: string;
  codes: string[];
  link: string;
  poster: string;
  referrer: string | null;
  referees: { fan: string; depth: 1 | 2 | 3; qualified: boolean; flags: string[]; review: ReviewState | null }[];
  qualifiedReferrals: number;
  /** In the currency's main unit. */
  cash: CashFigures;
  coupons: number;
  badges: string[];
  asOf: string;
}

/** Brings the state up to the log (the CLI's way; the server passes its own). */
export type Sync = () => Promise<unknown>;

export function cliSync(workspace: Workspace): Sync {
  return async () => {
    if (!(await currentMeta(workspace))) await catchUp(workspace);
  };
}

/** Text with {code}, {link}, {name}, {coupon} filled in. */
function fill(template: string, values: Record<string, string>): string {
  return template.replace(/\{(\w+)\}/g, (whole, key: string) => values[key] ?? whole);
}

export function referralLink(workspace: Workspace, code: string): string {
  return fill(workspace.program.referral.link, { code });
}

/**
 * Cash of one fan as of `asOf` at or after the state's clock: pending items whose refund window
 * ended by then count as available (held when their referral is still under review).
 */
function cashAsOf(fan: FanState, asOf: number, reviewOf: (referee: string) => ReviewState | null): CashFigures {
  let { cashPending: pending, cashAvailable: available, cashHeld: held } = fan;
  for (const item of fan.cashItems) {
    if (item.state !== 'pending' || item.due > asOf) continue;
    const amount = item.base - item.reversed;
    pending -= amount;
    if (reviewOf(item.referee) === 'open') held += amount;
    else available += amount;
  }
  return { pending: toMain(pending), available: toMain(available), paid: toMain(fan.cashPaid), voided: toMain(fan.cashVoided), held: toMain(held) };
}

/** Fan states by id, from a world (a past instant) or from the store (the current state). */
type FanSource = (id: string) => Promise<FanState | null>;

function storeSource(store: Store): FanSource {
  const cache = new Map<string, FanState | null>();
  return async (id) => {
    if (!cache.has(id)) {
      const row = await store.loadFan(id);
      cache.set(id, row ? deserializeFan(row.state) : null);
    }
    return cache.get(id) ?? null;
  };
}

export async function referralShow(workspace: Workspace, id: string, asOf: number, sync: Sync): Promise<ReferralView> {
  await sync();
  const clock = clockOf(await workspace.store.loadStateMeta());
  let source: FanSource;
  if (asOf >= clock) source = storeSource(workspace.store);
  else {
    const past: World = await worldAt(workspace, asOf);
    source = async (fanId) => past.fans.get(fanId) ?? null;
  }
  const fan = await source(id);
  if (!fan) throw new NotFoundError(`unknown fan ${JSON.stringify(id)}${asOf < clock ? ` at ${iso(asOf)}` : ''}`);
  const reviews = new Map<string, ReviewState | null>();
  const { fraud } = workspace.program.referral;
  for (const item of fan.cashItems) {
    if (reviews.has(item.referee)) continue;
    const referee = await source(item.referee);
    // As the engine will decide at the window's end: a referee still without activity is held.
    const idle = referee !== null && fraud.neverActed && referee.attributedTs !== null && (referee.lastActivityTs === null || referee.lastActivityTs < referee.attributedTs);
    reviews.set(item.referee, referee?.referralReview ?? (idle ? 'open' : null));
  }
  const referees: ReferralView['referees'] = [];
  let level: string[] = fan.referees;
  for (let depth = 1; depth <= 3 && level.length > 0; depth++) {
    const next: string[] = [];
    for (const refereeId of level) {
      const referee = await source(refereeId);
      if (!referee) continue;
      referees.push({ fan: referee.id, depth: depth as 1 | 2 | 3, qualified: referee.qualifiedTs !== null && referee.qualifiedTs <= asOf, flags: referee.referralFlags, review: referee.referralReview });
      next.push(...referee.referees);
    }
    level = next;
  }
  const { referral } = workspace.program;
  const link = referralLink(workspace, fan.code);
  return {
    fan: fan.id,
    codes: [fan.code],
    link,
    poster: fill(referral.poster, { code: fan.code, link, name: String(fan.profile.name ?? fan.id), coupon: `${referral.refereeCoupon} ${workspace.program.currency}` }),
    referrer: fan.referrer,
    referees,
    qualifiedReferrals: fan.qualifiedReferralTs.filter((ts) => ts <= asOf).length,
    cash: cashAsOf(fan, asOf, (referee) => reviews.get(referee) ?? null),
    coupons: toMain(fan.couponMinor),
    badges: fan.badges,
    asOf: iso(asOf),
  };
}

// ——— Redemption ———

export type RedemptionCode = 'INSUFFICIENT_POINTS' | 'OUT_OF_STOCK' | 'NOT_ELIGIBLE';

export type RedemptionOutcome =
  | { status: 'redeemed'; requestId: string; fan: string; item: string; points: number; balance: number; eventId: string; at: string }
  | { status: 'refused'; requestId: string; fan: string; item: string; points: number; code: RedemptionCode; reason: string; balance: number; at: string };

export interface RedemptionRequest {
  requestId: string;
  fan: string;
  item: string;
}

/** The same request id again with another fan or item. */
export class RequestReuseError extends UsageError {}

function outcomeOf(record: RedemptionRecord, request: RedemptionRequest): RedemptionOutcome {
  if (record.fan !== request.fan || record.item !== request.item) {
    throw new RequestReuseError(`requestId ${request.requestId} was used for fan ${record.fan} and item ${record.item}`);
  }
  return JSON.parse(record.outcome) as RedemptionOutcome;
}

/**
 * Redeems a catalog item for points, once per request id: decided under the workspace's writer
 * lock against the stored balance minus the redemptions appended since that state, so that two
 * concurrent requests never spend the same points or the same unit of stock. An accepted
 * redemption appends a `redeem` event; a refusal says why. The same request id again returns the
 * first outcome.
 */
export async function redeem(workspace: Workspace, request: RedemptionRequest, now: number, sync: Sync): Promise<RedemptionOutcome> {
  const { store, program } = workspace;
  const item = program.points.catalog.find((candidate) => candidate.id === request.item);
  const known = await store.findRedemption(request.requestId);
  if (known) return outcomeOf(known, request);
  if (!item) throw new UsageError(`unknown catalog item ${JSON.stringify(request.item)}; the catalog has ${program.points.catalog.map((entry) => entry.id).join(', ')}`);
  await sync();
  return store.exclusive(async (tx) => {
    const prior = await tx.findRedemption(request.requestId);
    if (prior) return outcomeOf(prior, request);
    const meta = await tx.loadStateMeta();
    if (!meta || meta.programVersion !== program.version) throw new Error('the derived state is not under the active program yet; try again');
    const row = await tx.loadFan(request.fan);
    if (!row) throw new NotFoundError(`unknown fan ${JSON.stringify(request.fan)}`);
    const fan = deserializeFan(row.state);
    const world = JSON.parse(meta.world) as { stockUsed?: Record<string, number> };
    // Spent but not yet in the stored state: redemptions appended after its position.
    const unapplied = await tx.redemptionsAfter(meta.appliedSeq);
    const mine = unapplied.filter((entry) => entry.fan === fan.id);
    const balance = fan.pointsBalance - mine.reduce((sum, entry) => sum + entry.points, 0);
    const redeemedByFan = (fan.redeemed[item.id] ?? 0) + mine.filter((entry) => entry.item === item.id).length;
    const stockUsed = (world.stockUsed?.[item.id] ?? 0) + unapplied.filter((entry) => entry.item === item.id).length;
    const at = iso(now);
    const base = { requestId: request.requestId, fan: fan.id, item: item.id, points: item.points, at };
    let refusal: { code: RedemptionCode; reason: string } | null = null;
    if (fan.level < item.minLevel) refusal = { code: 'NOT_ELIGIBLE', reason: `${item.id} needs Lv${item.minLevel}; the fan is Lv${fan.level}` };
    else if (item.perFanLimit !== null && redeemedByFan >= item.perFanLimit) refusal = { code: 'NOT_ELIGIBLE', reason: `${item.id} is limited to ${item.perFanLimit} per fan; already redeemed ${redeemedByFan}` };
    else if (item.stock !== null && stockUsed >= item.stock) refusal = { code: 'OUT_OF_STOCK', reason: `all ${item.stock} units of ${item.id} are redeemed` };
    else if (balance < item.points) refusal = { code: 'INSUFFICIENT_POINTS', reason: `${item.id} costs ${item.points} points; the balance is ${balance}` };
    if (refusal) {
      const outcome: RedemptionOutcome = { status: 'refused', ...base, ...refusal, balance };
      await tx.saveRedemption({ ...base, seq: null, outcome: JSON.stringify(outcome), createdAt: at });
      return outcome;
    }
    const eventId = `redeem-${request.requestId}`;
    const event = { id: eventId, type: 'redeem', fan: fan.id, ts: at, props: { requestId: request.requestId, item: item.id, points: item.points } };
    const [status] = await tx.append([{ id: eventId, ts: now, body: JSON.stringify(event), source: 'redemption', line: null, fan: event.fan }], samePayload);
    if (status !== 'accepted') throw new RequestReuseError(`the log already holds an event ${eventId}`);
    // Inside the writer lock no other append commits in between: the log's end is this event.
    const seq = await tx.maxSeq();
    const outcome: RedemptionOutcome = { status: 'redeemed', ...base, balance: balance - item.points, eventId };
    await tx.saveRedemption({ ...base, seq, outcome: JSON.stringify(outcome), createdAt: at });
    return outcome;
  });
}

// ——— Payouts ———

export interface PayoutRun {
  payoutId: string;
  at: string;
  currency: string;
  fans: number;
  total: number;
  lines: { fan: string; code: string; amount: number; eventId: string }[];
  /** True when this run id was already paid: nothing new was appended. */
  already: boolean;
}

/**
 * Pays every fan's available referral cash as of `at` (held and pending cash stay): one
 * `op_payout` event per fan, appended under the writer lock so that no cash is paid twice.
 */
export async function runPayout(workspace: Workspace, payoutId: string, at: number): Promise<PayoutRun> {
  if (!/^[\w.:-]{1,64}$/.test(payoutId)) throw new UsageError('payout id: 1–64 letters, digits, _ . : -');
  const { engine, program } = workspace;
  return underStateLock(workspace, async (tx, world) => {
    const previous = world.payouts[payoutId];
    if (previous) {
      const lines: PayoutRun['lines'] = [];
      for await (const postings of tx.readPostings()) {
        for (const posting of postings) {
          if (posting.rule === 'payout' && posting.eventId.startsWith(`payout-${payoutId}-`)) lines.push({ fan: posting.fan, code: world.fans.get(posting.fan)?.code ?? '', amount: toMain(posting.amount), eventId: posting.eventId });
        }
      }
      return { payoutId, at: iso(previous.at), currency: program.currency, fans: previous.fans, total: toMain(previous.totalMinor), lines, already: true };
    }
    if (at < world.clock) throw new UsageError(`a payout is made now or later: the state already reaches ${iso(world.clock)}`);
    engine.advanceClock(world, at, engine.newOutput());
    const entries: LogEntry[] = [];
    const lines: PayoutRun['lines'] = [];
    let total = 0;
    for (const fan of world.fans.values()) {
      if (fan.cashAvailable <= 0) continue;
      const eventId = `payout-${payoutId}-${fan.id}`;
      const event = { id: eventId, type: 'op_payout', fan: fan.id, ts: iso(at), props: { payoutId, amount: (fan.cashAvailable / 100).toFixed(2) } };
      entries.push({ id: eventId, ts: at, body: JSON.stringify(event), source: `payout:${payoutId}`, line: null, fan: event.fan });
      lines.push({ fan: fan.id, code: fan.code, amount: toMain(fan.cashAvailable), eventId });
      total += fan.cashAvailable;
    }
    if (entries.length > 0) {
      const statuses = await tx.append(entries, samePayload);
      const clash = statuses.findIndex((status) => status !== 'accepted');
      if (clash >= 0) throw new UsageError(`the log already holds ${entries[clash].id}: pick another payout id`);
    }
    return { payoutId, at: iso(at), currency: program.currency, fans: lines.length, total: toMain(total), lines, already: false };
  });
}

/** The payout file: one line per fan, amounts in the currency's main unit. */
export function payoutCsv(run: PayoutRun): string {
  const quote = (text: string) => (/[",\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text);
  const lines = run.lines.map((line) => [quote(run.payoutId), quote(line.fan), line.code, line.amount.toFixed(2), run.currency, quote(line.eventId)].join(','));
  return `payoutId,fan,code,amount,currency,eventId\n${lines.join('\n')}${lines.length > 0 ? '\n' : ''}`;
}

export async function listPayouts(workspace: Workspace, sync: Sync): Promise<{ payoutId: string; at: string; fans: number; total: number }[]> {
  await sync();
  const meta = await workspace.store.loadStateMeta();
  const payouts = meta ? ((JSON.parse(meta.world) as { payouts?: World['payouts'] }).payouts ?? {}) : {};
  return Object.entries(payouts).map(([payoutId, run]) => ({ payoutId, at: iso(run.at), fans: run.fans, total: toMain(run.totalMinor) }));
}

// ——— Fraud review ———

export interface ReviewItem {
  referee: string;
  referrer: string;
  reasons: string[];
  /** Cash of this referral waiting: pending (in its refund window) and held, in the main unit. */
  pending: number;
  held: number;
  attributedAt: string | null;
}

export async function reviewQueue(workspace: Workspace, sync: Sync): Promise<ReviewItem[]> {
  await sync();
  const meta = await workspace.store.loadStateMeta();
  const queue = meta ? ((JSON.parse(meta.world) as { reviewQueue?: string[] }).reviewQueue ?? []) : [];
  const source = storeSource(workspace.store);
  const items: ReviewItem[] = [];
  for (const refereeId of queue) {
    const referee = await source(refereeId);
    if (!referee || referee.referrer === null) continue;
    let pending = 0;
    let held = 0;
    for (let fan = await source(referee.referrer), level = 0; fan && level < 3; level++, fan = fan.referrer === null ? null : await source(fan.referrer)) {
      for (const item of fan.cashItems as CashItem[]) {
        if (item.referee !== refereeId) continue;
        if (item.state === 'pending') pending += item.base - item.reversed;
        if (item.state === 'held') held += item.base - item.reversed;
      }
    }
    items.push({ referee: refereeId, referrer: referee.referrer, reasons: referee.referralFlags, pending: toMain(pending), held: toMain(held), attributedAt: referee.attributedTs === null ? null : iso(referee.attributedTs) });
  }
  return items;
}

/** Records an operator's decision on a suspect referral: release pays it, void takes it back. */
export async function resolveReview(workspace: Workspace, referee: string, decision: 'release' | 'void', now: number, actor: string, sync: Sync): Promise<{ referee: string; decision: string; eventId: string }> {
  const queue = await reviewQueue(workspace, sync);
  if (!queue.some((item) => item.referee === referee)) throw new NotFoundError(`no referral of fan ${JSON.stringify(referee)} is under review`);
  const eventId = `review-${referee}-${now}`;
  const event = { id: eventId, type: 'op_review_referral', fan: referee, ts: iso(now), props: { decision, actor } };
  await workspace.store.append([{ id: eventId, ts: now, body: JSON.stringify(event), source: actor, line: null, fan: event.fan }], samePayload);
  await sync();
  return { referee, decision, eventId };
}

// ——— Ledger ———

export async function ledgerVerify(workspace: Workspace, sync: Sync): Promise<LedgerCheck> {
  await sync();
  const tally = new LedgerTally();
  for await (const postings of workspace.store.readPostings()) for (const posting of postings) tally.add(posting);
  const fans: FanState[] = [];
  for await (const rows of workspace.store.iterateFans()) for (const row of rows) fans.push(deserializeFan(row.state));
  return tally.check(fans);
}

export interface AuditLine {
  seq: number;
  at: string;
  asset: string;
  account: string;
  /** Signed change of the account: points as integers, cash and coupons in the main unit. */
  change: number;
  balance: number;
  rule: string;
  eventId: string;
  eventType: string | null;
}

/** Every posting of one fan, oldest first, with running balances per account and the event that caused it. */
export async function ledgerAudit(workspace: Workspace, id: string, asset: string | null, sync: Sync): Promise<{ fan: string; balances: Record<string, number>; lines: AuditLine[] }> {
  await sync();
  if (!(await workspace.store.loadFan(id))) throw new NotFoundError(`unknown fan ${JSON.stringify(id)}`);
  const balances: Record<string, number> = {};
  const lines: AuditLine[] = [];
  const own = (account: string) => account === `fan:${id}` || account.startsWith(`fan:${id}:`);
  for await (const postings of workspace.store.readPostings()) {
    for (const posting of postings) {
      if (posting.fan !== id || (asset !== null && posting.asset !== asset)) continue;
      const scale = posting.asset === 'points' ? 1 : 100;
      for (const [account, sign] of [[posting.target, 1], [posting.source, -1]] as const) {
        if (!own(account)) continue;
        balances[account] = (balances[account] ?? 0) + sign * posting.amount;
        lines.push({ seq: posting.seq, at: iso(posting.ts), asset: posting.asset, account, change: (sign * posting.amount) / scale, balance: balances[account] / scale, rule: posting.rule, eventId: posting.eventId, eventType: null });
      }
    }
  }
  // Read after the stream ends: a store may serve one operation at a time.
  const types = new Map<string, string | null>();
  for (const line of lines) {
    if (!types.has(line.eventId)) {
      const body = await workspace.store.readEvent(line.eventId);
      types.set(line.eventId, body === null ? null : ((JSON.parse(body) as { type?: string }).type ?? null));
    }
    line.eventType = types.get(line.eventId) ?? null;
  }
  const scaled = Object.fromEntries(Object.entries(balances).map(([account, value]) => [account, account.includes(':cash:') || account.endsWith(':coupon') ? value / 100 : value]));
  return { fan: id, balances: scaled, lines };
}

// ——— Leaderboards and compliance ———

export interface LeaderboardEntry {
  rank: number;
  fan: string;
  code: string;
  referrals: number;
  /** "Referral Expert" for fans holding the referral-expert badge. */
  title: string | null;
}

/**
 * Qualified referrals per referrer, all time or in one calendar month (program time zone), the
 * most first; ties by the earlier fan. Reads only fans with a qualified referral.
 */
export async function leaderboard(workspace: Workspace, month: string | null, limit: number, sync: Sync): Promise<{ period: string; entries: LeaderboardEntry[] }> {
  await sync();
  const { calendar } = workspace.engine;
  const entry = (fan: FanState, referrals: number) => ({ fan: fan.id, code: fan.code, referrals, title: fan.badges.includes('referral-expert') ? 'Referral Expert' : null, no: fan.no });
  let ranked: ReturnType<typeof entry>[];
  if (month === null) {
    ranked = (await workspace.store.referrerStates(limit)).map((state) => {
      const fan = deserializeFan(state);
      return entry(fan, fan.qualifiedReferralTs.length);
    });
  } else {
    const from = calendar.startOfMonth(month);
    const to = calendar.startOfMonth(calendar.nextMonthKey(month));
    ranked = [];
    for (const state of await workspace.store.referrerStates()) {
      const fan = deserializeFan(state);
      const referrals = fan.qualifiedReferralTs.filter((ts) => ts >= from && ts < to).length;
      if (referrals > 0) ranked.push(entry(fan, referrals));
    }
  }
  ranked.sort((a, b) => b.referrals - a.referrals || a.no - b.no);
  return { period: month ?? 'all', entries: ranked.slice(0, limit).map(({ no: _no, ...rest }, i) => ({ rank: i + 1, ...rest })) };
}

/** The legal markers in China for a pyramid scheme: 3 or more levels and 30 or more people. */
export const PYRAMID_MARKERS = { levels: 3, people: 30 } as const;

export interface ComplianceReport {
  /** Levels the program pays (the referrer and those above it), and the cap. */
  paidLevels: number;
  maxPaidLevels: number;
  qualifyOn: 'purchase' | 'follow';
  checks: { check: string; ok: boolean; detail: string }[];
  referredFans: number;
  trees: number;
  /** The most levels of any tree (a root alone is 1). */
  deepestLevels: number;
  largestTrees: { root: string; people: number; levels: number }[];
  largestDownlines: { fan: string; direct: number; downline: number }[];
  warnings: { root: string; people: number; levels: number; severity: 'approaching' | 'at-markers'; message: string }[];
}

export async function complianceReport(workspace: Workspace, sync: Sync, top = 10): Promise<ComplianceReport> {
  await sync();
  const { referral } = workspace.program;
  const edges = await workspace.store.referralEdges();
  const children = new Map<string, string[]>();
  const referred = new Set<string>();
  for (const { fan, referrer } of edges) {
    referred.add(fan);
    const list = children.get(referrer);
    if (list) list.push(fan);
    else children.set(referrer, [fan]);
  }
  // Downline sizes bottom-up over each tree, levels top-down; iterative (trees may be deep).
  const downline = new Map<string, number>();
  const trees: ComplianceReport['largestTrees'] = [];
  for (const root of children.keys()) {
    if (referred.has(root)) continue;
    const order: [string, number][] = [[root, 1]];
    let levels = 1;
    for (let i = 0; i < order.length; i++) {
      const [fan, level] = order[i];
      levels = Math.max(levels, level);
      for (const child of children.get(fan) ?? []) order.push([child, level + 1]);
    }
    for (let i = order.length - 1; i >= 0; i--) {
      const [fan] = order[i];
      downline.set(fan, (children.get(fan) ?? []).reduce((sum, child) => sum + 1 + (downline.get(child) ?? 0), 0));
    }
    trees.push({ root, people: order.length, levels });
  }
  trees.sort((a, b) => b.people - a.people || b.levels - a.levels || (a.root < b.root ? -1 : 1));
  const warnings: ComplianceReport['warnings'] = [];
  for (const tree of trees) {
    const at = tree.levels >= PYRAMID_MARKERS.levels && tree.people >= PYRAMID_MARKERS.people;
    // Approaching: one marker reached and two thirds of the other.
    const near = (tree.levels >= PYRAMID_MARKERS.levels && tree.people >= (PYRAMID_MARKERS.people * 2) / 3) || (tree.people >= PYRAMID_MARKERS.people && tree.levels >= PYRAMID_MARKERS.levels - 1);
    if (!at && !near) continue;
    warnings.push({
      ...tree,
      severity: at ? 'at-markers' : 'approaching',
      message: `tree of ${tree.root}: ${tree.people} people over ${tree.levels} levels${at ? ' reaches' : ' approaches'} the markers (≥ ${PYRAMID_MARKERS.levels} levels and ≥ ${PYRAMID_MARKERS.people} people); the program pays ${referral.depth} level(s), from purchases only`,
    });
  }
  const largestDownlines = [...downline]
    .map(([fan, size]) => ({ fan, direct: children.get(fan)?.length ?? 0, downline: size }))
    .filter((entry) => entry.downline > 0)
    .sort((a, b) => b.downline - a.downline || (a.fan < b.fan ? -1 : 1))
    .slice(0, top);
  const milestonePay = referral.milestones.some((milestone) => milestone.reward > 0);
  return {
    paidLevels: referral.depth,
    maxPaidLevels: 3,
    qualifyOn: referral.qualifyOn,
    checks: [
      { check: 'depth cap', ok: referral.depth <= 3, detail: `the program pays ${referral.depth} level(s); validation rejects more than 3` },
      { check: 'no entry fee', ok: true, detail: 'fanflow has no way to charge a fan for joining or for a code' },
      { check: 'no pay for downline size', ok: true, detail: 'commissions are a share of purchases; no rule pays for the number of people below a fan' },
      {
        check: 'recruitment alone pays only the one-time reward',
        ok: referral.qualifyOn === 'purchase' || !milestonePay,
        detail: referral.qualifyOn === 'purchase' ? 'referrals qualify on a purchase: rewards and milestones need sales' : 'referrals qualify on follow: milestone rewards must be 0 (validation enforces it)',
      },
    ],
    referredFans: referred.size,
    trees: trees.length,
    deepestLevels: trees.reduce((max, tree) => Math.max(max, tree.levels), 0),
    largestTrees: trees.slice(0, top),
    largestDownlines,
    warnings,
  };
}

// ——— Fission analytics ———

export interface FissionAnalytics {
  /** Per calendar month: new followers, how many were referred, and K = referred new followers ÷ followers at the month's start. */
  months: { month: string; newFollowers: number; referredNewFollowers: number; followersAtStart: number; kFactor: number | null; newBuyers: number; referredNewBuyers: number }[];
  /** Per cohort (month of the first follow): fans, the referees they brought (ever), K = referees ÷ fans. */
  cohorts: { month: string; fans: number; referees: number; kFactor: number | null }[];
  /** Referred fans by generation: 1 = referred by a root (a fan nobody referred), 2 = by a generation-1 fan, … */
  generations: { generation: number; fans: number }[];
  /** What the programme cost (cash posted net of voids and clawbacks, coupons issued) against the net revenue of referred fans. */
  cost: { cash: number; coupons: number; total: number; referredRevenue: number; costShareOfRevenue: number | null; currency: string };
}

/** Reads every fan once (streamed); no target, minutes of history are fine. */
export async function fissionAnalytics(workspace: Workspace, sync: Sync): Promise<FissionAnalytics> {
  await sync();
  const { calendar } = workspace.engine;
  const follows: number[] = [];
  const newFollowers = new Map<string, { all: number; referred: number; buyers: number; referredBuyers: number }>();
  const cohorts = new Map<string, { fans: number; referees: number }>();
  const cohortOf = new Map<string, string>();
  const referrerOf = new Map<string, string>();
  const refereeCount = new Map<string, number>();
  let cashMinor = 0;
  let couponMinor = 0;
  let referredRevenue = 0;
  const bump = (month: string) => {
    let entry = newFollowers.get(month);
    if (!entry) newFollowers.set(month, (entry = { all: 0, referred: 0, buyers: 0, referredBuyers: 0 }));
    return entry;
  };
  for await (const rows of workspace.store.iterateFans()) {
    for (const row of rows) {
      const fan = deserializeFan(row.state);
      if (fan.firstFollowTs !== null) {
        const month = calendar.monthKey(fan.firstFollowTs);
        follows.push(fan.firstFollowTs);
        const entry = bump(month);
        entry.all++;
        if (fan.referrer !== null) entry.referred++;
        cohortOf.set(fan.id, month);
        const cohort = cohorts.get(month) ?? { fans: 0, referees: 0 };
        cohort.fans++;
        cohorts.set(month, cohort);
      }
      if (fan.orders.length > 0) {
        const entry = bump(calendar.monthKey(fan.orders[0].ts));
        entry.buyers++;
        if (fan.referrer !== null) entry.referredBuyers++;
      }
      if (fan.referrer !== null) {
        referrerOf.set(fan.id, fan.referrer);
        refereeCount.set(fan.referrer, (refereeCount.get(fan.referrer) ?? 0) + 1);
        for (const order of fan.orders) referredRevenue += order.amountMinor - order.refundedMinor;
      }
      cashMinor += fan.cashPending + fan.cashAvailable + fan.cashHeld + fan.cashPaid;
      couponMinor += fan.couponMinor;
    }
  }
  for (const [referrer, count] of refereeCount) {
    const month = cohortOf.get(referrer);
    if (month !== undefined) (cohorts.get(month) as { referees: number }).referees += count;
  }
  follows.sort((a, b) => a - b);
  const months = [...newFollowers.keys()].sort().map((month) => {
    const entry = newFollowers.get(month) as { all: number; referred: number; buyers: number; referredBuyers: number };
    const followersAtStart = countBelow(follows, calendar.startOfMonth(month));
    return { month, newFollowers: entry.all, referredNewFollowers: entry.referred, followersAtStart, kFactor: followersAtStart > 0 ? entry.referred / followersAtStart : null, newBuyers: entry.buyers, referredNewBuyers: entry.referredBuyers };
  });
  // Generation of a referred fan: how many referrers up to a root (memoised walk; the tree has no cycle).
  const generation = new Map<string, number>();
  const generationOf = (fan: string): number => {
    const path: string[] = [];
    let at: string | undefined = fan;
    while (at !== undefined && !generation.has(at) && referrerOf.has(at)) {
      path.push(at);
      at = referrerOf.get(at);
    }
    let depth = at !== undefined && generation.has(at) ? (generation.get(at) as number) : 0;
    for (let i = path.length - 1; i >= 0; i--) generation.set(path[i], ++depth);
    return generation.get(fan) ?? 0;
  };
  const byGeneration = new Map<number, number>();
  for (const fan of referrerOf.keys()) {
    const g = generationOf(fan);
    byGeneration.set(g, (byGeneration.get(g) ?? 0) + 1);
  }
  const total = cashMinor + couponMinor;
  return {
    months,
    cohorts: [...cohorts].sort(([a], [b]) => (a < b ? -1 : 1)).map(([month, cohort]) => ({ month, fans: cohort.fans, referees: cohort.referees, kFactor: cohort.fans > 0 ? cohort.referees / cohort.fans : null })),
    generations: [...byGeneration].sort(([a], [b]) => a - b).map(([g, fans]) => ({ generation: g, fans })),
    cost: { cash: toMain(cashMinor), coupons: toMain(couponMinor), total: toMain(total), referredRevenue: toMain(referredRevenue), costShareOfRevenue: referredRevenue > 0 ? total / referredRevenue : null, currency: workspace.program.currency },
  };
}

// ——— Task fission campaigns ———

export interface CampaignReport {
  id: string;
  title: string;
  from: string;
  to: string;
  status: 'upcoming' | 'running' | 'ended';
  target: number;
  participants: number;
  completed: number;
  newFollowers: number;
  rewardPoints: number;
  rewardCash: number;
  /** The referrers who brought the most new followers (up to 10). */
  top: { fan: string; newFollowers: number; completed: boolean }[];
}

/** Each campaign of the program with its figures; `top` reads the fans with qualified referrals or campaign counts. */
export async function campaignReport(workspace: Workspace, asOf: number, sync: Sync): Promise<CampaignReport[]> {
  await sync();
  const meta = await workspace.store.loadStateMeta();
  const stats = meta ? ((JSON.parse(meta.world) as { campaignStats?: World['campaignStats'] }).campaignStats ?? {}) : {};
  const campaigns = workspace.program.referral.campaigns;
  const tops = new Map<string, { fan: string; newFollowers: number; completed: boolean }[]>(campaigns.map((campaign) => [campaign.id, []]));
  if (campaigns.length > 0) {
    // Participants referred someone: their ids are the referrers of the referral links.
    const referrers = [...new Set((await workspace.store.referralEdges()).map((edge) => edge.referrer))];
    const source = storeSource(workspace.store);
    for (const id of referrers) {
      const fan = await source(id);
      if (!fan) continue;
      for (const campaign of campaigns) {
        const count = fan.campaigns[campaign.id] ?? 0;
        if (count > 0) tops.get(campaign.id)?.push({ fan: fan.id, newFollowers: count, completed: count >= campaign.newFollowers });
      }
    }
  }
  return campaigns.map((campaign) => {
    const figures = stats[campaign.id] ?? { participants: 0, completed: 0, newFollowers: 0, rewardPoints: 0, rewardCashMinor: 0 };
    const from = Date.parse(campaign.from);
    const to = Date.parse(campaign.to);
    const top = (tops.get(campaign.id) ?? []).sort((a, b) => b.newFollowers - a.newFollowers || (a.fan < b.fan ? -1 : 1)).slice(0, 10);
    return {
      id: campaign.id,
      title: campaign.title,
      from: iso(from),
      to: iso(to),
      status: asOf < from ? 'upcoming' : asOf < to ? 'running' : 'ended',
      target: campaign.newFollowers,
      participants: figures.participants,
      completed: figures.completed,
      newFollowers: figures.newFollowers,
      rewardPoints: figures.rewardPoints,
      rewardCash: toMain(figures.rewardCashMinor),
      top,
    };
  });
}
