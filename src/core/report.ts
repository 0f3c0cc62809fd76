/**
 * The monthly review (PRODUCT §4): layer distribution against the seed's bands, health indicators
 * with targets, maturity level with each criterion, abnormal signals with the seed's optimisation
 * directions and the fans to act on.
 */
import type { Snapshot, MonthStats, LayerName } from './state.js';
import { LAYER_CODES, LAYER_NAMES, emptyMonthStats } from './state.js';

export interface Indicator {
  id: string;
  label: string;
  value: number | null;
  target: string;
  min: number | null;
  max: number | null;
  ok: boolean | null;
}

export interface Criterion {
  level: number;
  id: string;
  label: string;
  value: number | boolean | null;
  target: string;
  ok: boolean;
}

export interface Signal {
  id: string;
  /** The indicator that raised it. */
  indicator: string;
  severity: 'warning' | 'critical';
  message: string;
  value: number | null;
  target: string;
  directions: string[];
  fans: string[];
  fansLabel: string;
}

export interface ActionLists {
  eligibleForTop: string[];
  closestToCore: string[];
  closestToBackbone: string[];
  coreAtRisk: string[];
  slipping: string[];
  observationRecent: string[];
}

export interface MonthlyReport {
  month: string;
  asOf: string;
  partial: boolean;
  programVersion: string;
  currency: string;
  followers: { start: number; end: number; new: number; referredNew: number; unfollows: number };
  layers: Record<LayerName, { count: number; share: number | null; band: string | null; ok: boolean | null }>;
  levels: Record<string, number>;
  indicators: Indicator[];
  maturity: { level: number; criteria: Criterion[] };
  signals: Signal[];
  actions: ActionLists;
  overview: { revenue: number; arpu: number | null; activeFans: number; promotions: number; demotions: number; pointsEarned: number };
  highlights: string[];
}

export interface ReportInput {
  month: string;
  asOf: string;
  partial: boolean;
  programVersion: string;
  currency: string;
  cac: number | null;
  start: Snapshot | null;
  end: Snapshot;
  stats: MonthStats | undefined;
  previousStats: MonthStats | undefined;
  groupEventsSeen: boolean;
  actions: ActionLists;
}

const BANDS: Record<Exclude<LayerName, 'unfollowed'>, { min: number | null; max: number | null; target: string }> = {
  core: { min: 0.01, max: 0.05, target: '1–5 %' },
  backbone: { min: 0.1, max: 0.2, target: '10–20 %' },
  general: { min: 0.3, max: 0.5, target: '30–50 %' },
  observation: { min: null, max: 0.3, target: '< 30 %' },
};

const ratio = (numerator: number, denominator: number): number | null => (denominator > 0 ? numerator / denominator : null);
const round = (value: number | null, digits = 4): number | null => (value === null ? null : Math.round(value * 10 ** digits) / 10 ** digits);

interface Population {
  followers: number;
  byLayer: Record<LayerName, number>;
  levels: Record<string, number>;
}

// Snapshots are immutable; a month's end is the next month's start, so a trend counts each once.
const populations = new WeakMap<Snapshot, Population>();

function population(snapshot: Snapshot | null): Population {
  const byLayer: Record<LayerName, number> = { core: 0, backbone: 0, general: 0, observation: 0, unfollowed: 0 };
  const levels: Record<string, number> = { '1': 0, '2': 0, '3': 0, '4': 0, '5': 0 };
  if (!snapshot) return { followers: 0, byLayer, levels };
  const known = populations.get(snapshot);
  if (known) return known;
  // Counted by character code: one pass, no per-fan strings or arrays.
  const layerCounts = new Float64Array(128);
  const levelCounts = new Float64Array(128);
  const { layers, levels: levelCodes } = snapshot;
  const unfollowed = 'U'.charCodeAt(0);
  const absent = '-'.charCodeAt(0);
  for (let no = 0; no < layers.length; no++) {
    const code = layers.charCodeAt(no);
    layerCounts[code]++;
    if (code !== absent && code !== unfollowed) levelCounts[levelCodes.charCodeAt(no)]++;
  }
  let followers = 0;
  LAYER_NAMES.forEach((layer, index) => {
    byLayer[layer] = layerCounts[LAYER_CODES.charCodeAt(index)];
    if (layer !== 'unfollowed') followers += byLayer[layer];
  });
  for (const level of Object.keys(levels)) levels[level] = levelCounts[level.charCodeAt(0)];
  const result = { followers, byLayer, levels };
  populations.set(snapshot, result);
  return result;
}

/** Share of fans in `layer` at the start who are in a higher layer at the end. */
function promotionRate(start: Snapshot | null, end: Snapshot, from: string, higher: string): number | null {
  if (!start) return null;
  let base = 0;
  let promoted = 0;
  for (let no = 0; no < start.layers.length; no++) {
    if (start.layers[no] !== from) continue;
    base++;
    if (higher.includes(end.layers[no])) promoted++;
  }
  return ratio(promoted, base);
}

/** Of fans active in the previous month (and in `layer` at the start, if given): inactive now or unfollowed. */
function churnRate(start: Snapshot | null, end: Snapshot, layer: string | null): number | null {
  if (!start) return null;
  let base = 0;
  let churned = 0;
  for (let no = 0; no < start.active.length; no++) {
    if (start.active[no] !== '1' || start.layers[no] === 'U') continue;
    if (layer !== null && start.layers[no] !== layer) continue;
    base++;
    if (end.active[no] !== '1' || end.layers[no] === 'U') churned++;
  }
  return ratio(churned, base);
}

function activityRate(end: Snapshot, onlyLayerAtStart: Snapshot | null, layer: string | null): number | null {
  let base = 0;
  let active = 0;
  for (let no = 0; no < end.layers.length; no++) {
    if (end.layers[no] === 'U' || end.layers[no] === '-') continue;
    if (layer !== null && (!onlyLayerAtStart || onlyLayerAtStart.layers[no] !== layer)) continue;
    base++;
    if (end.active[no] === '1') active++;
  }
  return ratio(active, base);
}

function repurchaseRate(end: Snapshot): number | null {
  let buyers = 0;
  let repeat = 0;
  for (let no = 0; no < end.purchases365.length; no++) {
    const count = end.purchases365[no];
    if (count === '1' || count === '2') buyers++;
    if (count === '2') repeat++;
  }
  return ratio(repeat, buyers);
}

function indicator(id: string, label: string, value: number | null, target: string, min: number | null, max: number | null): Indicator {
  let ok: boolean | null = null;
  if (value !== null) ok = (min === null || value > min) && (max === null || value < max);
  return { id, label, value: round(value), target, min, max, ok };
}

export function computeReport(input: ReportInput): MonthlyReport {
  const stats = input.stats ?? emptyMonthStats();
  const previous = input.previousStats;
  const startPop = population(input.start);
  const endPop = population(input.end);
  const followers = endPop.followers;
  const layers = {} as MonthlyReport['layers'];
  for (const layer of LAYER_NAMES) {
    const count = endPop.byLayer[layer];
    if (layer === 'unfollowed') {
      layers[layer] = { count, share: round(ratio(count, followers + count)), band: null, ok: null };
      continue;
    }
    const band = BANDS[layer];
    const share = ratio(count, followers);
    // Bands are inclusive ranges, except "< 30 %" for Observation.
    const ok = share === null ? null : band.min === null ? share < (band.max as number) : share >= band.min && share <= (band.max as number);
    layers[layer] = { count, share: round(share), band: band.target, ok };
  }
  const revenue = stats.revenueMinor / 100;
  const arpu = ratio(revenue, followers);
  const previousArpu = previous && startPop.followers > 0 ? previous.revenueMinor / 100 / startPop.followers : null;
  const arpuChange = arpu !== null && previousArpu !== null && previousArpu > 0 ? (arpu - previousArpu) / previousArpu : null;
  const ltv = ratio(input.end.revenueToDateMinor / 100, input.end.buyersToDate);
  const coreShare = ratio(endPop.byLayer.core, followers);
  const ugcShare = ratio(stats.selectedUgc, stats.selectedUgc + stats.posts);
  const referralShare = ratio(stats.referredNewBuyers, stats.newBuyers);
  const nps = stats.npsAnswers > 0 ? ((stats.npsPromoters - stats.npsDetractors) / stats.npsAnswers) * 100 : null;
  const followerGrowth = ratio(followers - startPop.followers, startPop.followers);
  const selfGrowth = ratio(stats.referredNewFollowers, stats.newFollowers);
  const indicators: Indicator[] = [
    indicator('layer_core_share', 'Core share', coreShare, '1–5 %', null, null),
    indicator('layer_backbone_share', 'Backbone share', ratio(endPop.byLayer.backbone, followers), '10–20 %', null, null),
    indicator('layer_general_share', 'General share', ratio(endPop.byLayer.general, followers), '30–50 %', null, null),
    indicator('layer_observation_share', 'Observation share', ratio(endPop.byLayer.observation, followers), '< 30 %', null, 0.3),
    indicator('promotion_general_to_backbone', 'Promotion General → Backbone', promotionRate(input.start, input.end, 'G', 'BC'), '> 5 %', 0.05, null),
    indicator('promotion_backbone_to_core', 'Promotion Backbone → Core', promotionRate(input.start, input.end, 'B', 'C'), '> 1 %', 0.01, null),
    indicator('churn_monthly', 'Monthly churn', churnRate(input.start, input.end, null), '< 10 %', null, 0.1),
    indicator('churn_core', 'Core churn', churnRate(input.start, input.end, 'C'), '< 1 %', null, 0.01),
    indicator('activity_rate', 'Monthly activity rate', activityRate(input.end, null, null), '> 40 %', 0.4, null),
    indicator('activity_rate_core', 'Core activity rate', activityRate(input.end, input.start, 'C'), '> 80 %', 0.8, null),
    { ...indicator('arpu', `ARPU (${input.currency})`, arpu, 'growing', null, null), ok: arpuChange === null ? null : arpuChange > 0 },
    indicator('arpu_change', 'ARPU change vs previous month', arpuChange, '> 0 %', 0, null),
    indicator('repurchase_rate', 'Repurchase rate (365 d)', repurchaseRate(input.end), '> 30 %', 0.3, null),
    { ...indicator('ltv', `Observed LTV per buyer (${input.currency})`, ltv, input.cac === null ? 'CAC not set' : `> CAC ${input.cac}`, input.cac, null), ok: input.cac === null || ltv === null ? null : ltv > input.cac },
    indicator('ugc_share', 'UGC share of content', ugcShare, '> 20 %', 0.2, null),
    indicator('referral_share', 'Referral share of new buyers', referralShare, '> 30 %', 0.3, null),
    indicator('nps', 'NPS', nps, '> 40', 40, null),
    indicator('follower_growth', 'Follower growth', followerGrowth, '> 0 %', 0, null),
    indicator('self_growth_share', 'Self-growth share of new followers', selfGrowth, '> 50 %', 0.5, null),
  ];
  for (const [layer, id] of [['core', 'layer_core_share'], ['backbone', 'layer_backbone_share'], ['general', 'layer_general_share']] as const) {
    const entry = indicators.find((item) => item.id === id) as Indicator;
    entry.ok = layers[layer].ok;
    entry.min = BANDS[layer].min;
    entry.max = BANDS[layer].max;
  }
  const maturity = computeMaturity({ coreShare, coreCount: endPop.byLayer.core, selfGrowth, ugcShare, referralShare, followerGrowth, groupEventsSeen: input.groupEventsSeen, pointsEarned: stats.pointsEarned });
  const signals = computeSignals(indicators, input.actions);
  return {
    month: input.month,
    asOf: input.asOf,
    partial: input.partial,
    programVersion: input.programVersion,
    currency: input.currency,
    followers: { start: startPop.followers, end: followers, new: stats.newFollowers, referredNew: stats.referredNewFollowers, unfollows: stats.unfollows },
    layers,
    levels: endPop.levels,
    indicators,
    maturity,
    signals,
    actions: input.actions,
    overview: { revenue, arpu: round(arpu, 2), activeFans: stats.activeFans, promotions: stats.promotions, demotions: stats.demotions, pointsEarned: stats.pointsEarned },
    highlights: indicators.filter((item) => item.ok === true).map((item) => `${item.label}: ${formatValue(item)} (target ${item.target})`),
  };
}

export function formatValue(item: Pick<Indicator, 'id' | 'value'>): string {
  if (item.value === null) return 'n/a';
  if (item.id === 'nps' || item.id === 'arpu' || item.id === 'ltv') return item.value.toFixed(item.id === 'nps' ? 1 : 2);
  return `${(item.value * 100).toFixed(1)} %`;
}

interface MaturityFacts {
  coreShare: number | null;
  coreCount: number;
  selfGrowth: number | null;
  ugcShare: number | null;
  referralShare: number | null;
  followerGrowth: number | null;
  groupEventsSeen: boolean;
  pointsEarned: number;
}

function computeMaturity(facts: MaturityFacts): MonthlyReport['maturity'] {
  const above = (value: number | null, threshold: number) => value !== null && value > threshold;
  const criteria: Criterion[] = [
    { level: 4, id: 'core_share', label: 'Core share', value: round(facts.coreShare), target: '> 3 %', ok: above(facts.coreShare, 0.03) },
    { level: 4, id: 'self_growth_share', label: 'Self-growth share', value: round(facts.selfGrowth), target: '> 50 %', ok: above(facts.selfGrowth, 0.5) },
    { level: 4, id: 'ugc_share', label: 'UGC share', value: round(facts.ugcShare), target: '> 30 %', ok: above(facts.ugcShare, 0.3) },
    { level: 4, id: 'referral_share', label: 'Referral share', value: round(facts.referralShare), target: '> 40 %', ok: above(facts.referralShare, 0.4) },
    { level: 3, id: 'core_share', label: 'Core share', value: round(facts.coreShare), target: '> 1 %', ok: above(facts.coreShare, 0.01) },
    { level: 3, id: 'follower_growth', label: 'Follower growth', value: round(facts.followerGrowth), target: '> 10 %', ok: above(facts.followerGrowth, 0.1) },
    { level: 3, id: 'ugc_share', label: 'UGC share', value: round(facts.ugcShare), target: '> 15 %', ok: above(facts.ugcShare, 0.15) },
    { level: 3, id: 'referral_share', label: 'Referral share', value: round(facts.referralShare), target: '> 20 %', ok: above(facts.referralShare, 0.2) },
    { level: 2, id: 'groups', label: 'Fan groups exist', value: facts.groupEventsSeen, target: 'group events seen', ok: facts.groupEventsSeen },
    { level: 2, id: 'core_identified', label: 'Core fans identified', value: facts.coreCount, target: '> 0', ok: facts.coreCount > 0 },
    { level: 2, id: 'points_earned', label: 'Points being earned', value: facts.pointsEarned, target: '> 0 this month', ok: facts.pointsEarned > 0 },
  ];
  let level = 1;
  for (const candidate of [4, 3, 2]) {
    if (criteria.filter((item) => item.level === candidate).every((item) => item.ok)) {
      level = candidate;
      break;
    }
  }
  return { level, criteria };
}

const DIRECTIONS = {
  coreTooSmall: ['Increase core selection channels', 'Strengthen Backbone → Core conversion (invite to testing and co-creation)', 'Provide more core benefits'],
  backboneTooSmall: ['Respond to first interactions promptly', 'Invite active General fans to the fan group', 'Offer a first-purchase discount; activate repurchase'],
  observationTooLarge: ['Publish high-quality content and topics that attract', 'Lower the participation threshold (polls, likes, collects)', 'Run wake-up activities for recent followers'],
  flowNotSmooth: ['Lower promotion thresholds', 'Increase promotion incentives', 'Optimise the growth path'],
  activityDeclining: ['Increase interactive activities', 'Optimise content quality', 'Strengthen community operation'],
  conversionLow: ['Optimise product value', 'Improve conversion copy', 'Increase conversion incentives (purchase-share and referral rewards)'],
  churnHigh: ['Reach out one-on-one to slipping Core and Backbone fans', 'Deliver the promised benefits of their level', 'Ask for feedback on why they are quieter'],
  ugcLow: ['Reward purchase shares with points or coupons', 'Repost high-quality fan notes', 'Run a monthly content selection'],
  npsLow: ['Collect feedback from detractors', 'Fix the top complaint before scaling fission'],
};

function computeSignals(indicators: Indicator[], actions: ActionLists): Signal[] {
  const get = (id: string) => indicators.find((item) => item.id === id) as Indicator;
  const signals: Signal[] = [];
  const add = (id: string, source: Indicator, severity: Signal['severity'], message: string, directions: string[], fans: string[], fansLabel: string) =>
    signals.push({ id, indicator: source.id, severity, message, value: source.value, target: source.target, directions, fans, fansLabel });
  const core = get('layer_core_share');
  if (core.value !== null && core.value < 0.01) add('core_too_small', core, 'critical', 'Core layer < 1 %: lack of in-depth users', DIRECTIONS.coreTooSmall, actions.closestToCore, 'Backbone fans closest to Core');
  const backbone = get('layer_backbone_share');
  if (backbone.value !== null && backbone.value < 0.1) add('backbone_too_small', backbone, 'warning', 'Backbone layer < 10 %: lack of stable users', DIRECTIONS.backboneTooSmall, actions.closestToBackbone, 'General fans closest to Backbone');
  const observation = get('layer_observation_share');
  if (observation.value !== null && observation.value > 0.5) add('observation_too_large', observation, 'critical', 'Observation layer > 50 %: too many inactive followers', DIRECTIONS.observationTooLarge, actions.observationRecent, 'Observation fans who followed most recently');
  else if (observation.ok === false) add('observation_high', observation, 'warning', 'Observation layer above 30 %', DIRECTIONS.observationTooLarge, actions.observationRecent, 'Observation fans who followed most recently');
  for (const id of ['promotion_general_to_backbone', 'promotion_backbone_to_core']) {
    const rate = get(id);
    if (rate.ok === false) {
      const toCore = id.endsWith('core');
      add(`flow_not_smooth_${toCore ? 'core' : 'backbone'}`, rate, 'warning', `${rate.label} below target: flow is not smooth`, DIRECTIONS.flowNotSmooth, toCore ? actions.closestToCore : actions.closestToBackbone, toCore ? 'Backbone fans closest to Core' : 'General fans closest to Backbone');
    }
  }
  const activity = get('activity_rate');
  if (activity.ok === false) add('activity_low', activity, 'warning', 'Monthly activity rate below 40 %', DIRECTIONS.activityDeclining, actions.slipping, 'Core and Backbone fans slipping away');
  for (const id of ['churn_monthly', 'churn_core']) {
    const churn = get(id);
    if (churn.ok === false) add(`${id}_high`, churn, id === 'churn_core' ? 'critical' : 'warning', `${churn.label} above target`, DIRECTIONS.churnHigh, id === 'churn_core' ? actions.coreAtRisk : actions.slipping, id === 'churn_core' ? 'Core fans at churn risk' : 'Core and Backbone fans slipping away');
  }
  for (const id of ['repurchase_rate', 'referral_share']) {
    const conversion = get(id);
    if (conversion.ok === false) add(`${id}_low`, conversion, 'warning', `${conversion.label} below target: conversion is low`, DIRECTIONS.conversionLow, actions.closestToCore, 'Backbone fans closest to Core');
  }
  const ugc = get('ugc_share');
  if (ugc.ok === false) add('ugc_low', ugc, 'warning', 'UGC share below 20 %', DIRECTIONS.ugcLow, actions.closestToCore, 'Backbone fans closest to Core');
  const nps = get('nps');
  if (nps.ok === false) add('nps_low', nps, 'warning', 'NPS below 40', DIRECTIONS.npsLow, [], '');
  return signals;
}
