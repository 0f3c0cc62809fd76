/**
 * Terminal strings in English and Simplified Chinese. Indicator, layer and signal ids from the
 * report are translated here; anything without a translation falls back to English.
 */
export type Lang = 'en' | 'zh-CN';

const en = {
  title: 'fanflow — fan ecosystem',
  asOf: 'as of',
  program: 'program',
  layers: 'Layer pyramid (share of followers vs the seed band)',
  levels: 'Level distribution',
  indicators: 'Health indicators',
  maturity: 'Maturity',
  signals: 'Abnormal signals and optimisation directions',
  actions: 'Fans to act on',
  noSignals: 'No abnormal signal this month.',
  layer: 'layer',
  count: 'fans',
  share: 'share',
  band: 'target',
  ok: 'ok',
  indicator: 'indicator',
  value: 'value',
  target: 'target',
  level: 'level',
  criterion: 'criterion',
  partial: 'partial month (to the as-of instant)',
  overview: 'Data overview',
  highlights: 'Highlights',
  problems: 'Problem analysis',
  directions: 'Optimisation directions',
  followers: 'followers',
  newFollowers: 'new followers',
  revenue: 'revenue',
  eligibleForTop: 'Lv5-eligible, awaiting brand recognition',
  closestToCore: 'Backbone fans closest to Core',
  coreAtRisk: 'Core fans at churn risk',
  closestToBackbone: 'General fans closest to Backbone',
  slipping: 'Core and Backbone fans slipping away',
  observationRecent: 'Observation fans who followed most recently',
  none: '(none)',
  fan: 'fan',
  points: 'points',
  churnRisk: 'churn risk',
  referrer: 'referrer',
  qualifiedReferrals: 'qualified referrals',
  nextLevel: 'next level',
  missing: 'missing',
  tags: 'tags',
  recentPostings: 'last postings',
  windows: 'windows',
  core: 'Core',
  backbone: 'Backbone',
  general: 'General',
  observation: 'Observation',
  unfollowed: 'Unfollowed',
} as const;

type Key = keyof typeof en;

const zh: Record<Key, string> = {
  title: 'fanflow — 粉丝生态',
  asOf: '截至',
  program: '规则',
  layers: '分层金字塔(占粉丝比例 vs 方法论区间)',
  levels: '等级分布',
  indicators: '健康指标',
  maturity: '生态成熟度',
  signals: '异常信号与优化方向',
  actions: '需要跟进的粉丝',
  noSignals: '本月没有异常信号。',
  layer: '层级',
  count: '人数',
  share: '占比',
  band: '目标',
  ok: '达标',
  indicator: '指标',
  value: '数值',
  target: '目标',
  level: '等级',
  criterion: '条件',
  partial: '本月未结束(截至指定时刻)',
  overview: '数据概览',
  highlights: '亮点总结',
  problems: '问题分析',
  directions: '优化方向',
  followers: '粉丝数',
  newFollowers: '新增粉丝',
  revenue: '营收',
  eligibleForTop: '满足 Lv5 条件、待品牌认可',
  closestToCore: '最接近核心层的骨干粉丝',
  coreAtRisk: '有流失风险的核心粉丝',
  closestToBackbone: '最接近骨干层的普通粉丝',
  slipping: '正在流失的核心与骨干粉丝',
  observationRecent: '最近关注的观察层粉丝',
  none: '(无)',
  fan: '粉丝',
  points: '积分',
  churnRisk: '流失风险',
  referrer: '推荐人',
  qualifiedReferrals: '有效推荐',
  nextLevel: '下一级',
  missing: '还差',
  tags: '标签',
  recentPostings: '最近积分流水',
  windows: '时间窗口',
  core: '核心层',
  backbone: '骨干层',
  general: '普通层',
  observation: '观察层',
  unfollowed: '已取关',
};

const zhIndicators: Record<string, string> = {
  layer_core_share: '核心层占比',
  layer_backbone_share: '骨干层占比',
  layer_general_share: '普通层占比',
  layer_observation_share: '观察层占比',
  promotion_general_to_backbone: '普通→骨干 晋升率',
  promotion_backbone_to_core: '骨干→核心 晋升率',
  churn_monthly: '月流失率',
  churn_core: '核心粉丝流失率',
  activity_rate: '月活跃率',
  activity_rate_core: '核心粉丝活跃率',
  arpu: 'ARPU',
  arpu_change: 'ARPU 环比',
  repurchase_rate: '复购率(365 天)',
  ltv: '买家观测 LTV',
  ugc_share: 'UGC 内容占比',
  referral_share: '新买家推荐占比',
  nps: 'NPS 净推荐值',
  follower_growth: '粉丝增长率',
  self_growth_share: '自增长占比',
  core_share: '核心层占比',
  groups: '已有粉丝群',
  core_identified: '已识别核心粉丝',
  points_earned: '积分在发放',
};

export interface Messages {
  readonly lang: Lang;
  t(key: Key): string;
  indicator(id: string, fallback: string): string;
}

export function resolveLang(option: string | undefined, env: NodeJS.ProcessEnv): Lang {
  const raw = option ?? env.FANFLOW_LANG ?? env.LC_ALL ?? env.LANG ?? 'en';
  return raw.toLowerCase().startsWith('zh') ? 'zh-CN' : 'en';
}

export function messages(lang: Lang): Messages {
  return {
    lang,
    t: (key) => (lang === 'zh-CN' ? zh[key] : en[key]),
    indicator: (id, fallback) => (lang === 'zh-CN' ? zhIndicators[id] ?? fallback : fallback),
  };
}
