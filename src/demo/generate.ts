/**
 * The synthetic community: seeded, heterogeneous, believable. Follower inflow grows over the
 * months with referral chains; each real fan has a gamma-distributed visit rate and a beta
 * dropout probability (the BG/NBD story), gamma–gamma spend, shares, UGC, groups, gifts, NPS and
 * profiles; click-farm zombies arrive in bursts and then do nothing or a few scripted likes.
 * Ground-truth zombie labels go to a separate list, never into the events.
 */
import { createCalendar, DAY_MS, HOUR_MS } from '../core/calendar.js';
import { createRandom, type Random } from './random.js';

export interface GenerateOptions {
  fans: number;
  months: number;
  seed: string;
  /** First instant of the generated period (a month start in the time zone). */
  start: string;
  timeZone: string;
  zombieShare: number;
  /** Referral attacks of each kind (self-referral, device farm, burst, ring), labelled in `attacks`. */
  attacks: number;
}

export const DEFAULT_GENERATE: GenerateOptions = {
  fans: 20_000,
  months: 12,
  seed: 'fanflow',
  start: '2025-11-01T00:00:00+08:00',
  timeZone: 'Asia/Shanghai',
  zombieShare: 0.18,
  attacks: 3,
};

interface RawEvent {
  ts: number;
  type: string;
  fan: string | null;
  channel: string | null;
  props: Record<string, unknown> | null;
}

export interface GeneratedCommunity {
  /** NDJSON lines in log order (ts, then id). */
  lines: string[];
  labels: { fan: string; zombie: boolean; burst: number | null }[];
  /** Seeded referral attacks: the referrer, the fake referees, and those the fraud rules must flag. */
  attacks: { kind: 'self-referral' | 'device-farm' | 'burst' | 'ring'; referrer: string; referees: string[]; flagged: string[] }[];
  start: number;
  end: number;
}

const CATEGORIES = ['guide', 'review', 'story', 'tutorial', 'comparison', 'safety'];
const CHANNELS = ['wechat', 'xiaohongshu', 'douyin', 'weibo', 'bilibili', 'live', 'shop', 'qq'];
const CHANNEL_WEIGHTS = [30, 25, 20, 8, 6, 5, 4, 2];
const SERIES = ['classic', 'pro', 'lite', 'kids', 'limited'];
const REGIONS = ['Shanghai', 'Beijing', 'Guangdong', 'Zhejiang', 'Jiangsu', 'Sichuan', 'Hubei', 'Fujian'];
const GROUPS = ['g-public', 'g-follower', 'g-active', 'g-core'];

/** A local hour of day with evening and lunch peaks. */
function hourOfDay(random: Random): number {
  return random.weighted(
    [0, 1, 2, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23],
    [1, 0.5, 0.3, 0.5, 2, 4, 3, 3, 3, 6, 5, 3, 3, 3, 3, 4, 6, 9, 10, 8, 4],
  );
}

function profileOf(random: Random): Record<string, unknown> {
  const persona = random.weighted(['A', 'B', 'C', 'other'], [35, 25, 15, 25]);
  const female = persona !== 'other' ? true : random.chance(0.4);
  const age = persona === 'A' ? 25 + random.int(11) : persona === 'B' ? 18 + random.int(7) : persona === 'C' ? 30 + random.int(11) : 20 + random.int(35);
  const profile: Record<string, unknown> = {
    age,
    gender: female ? 'female' : 'male',
    region: random.pick(REGIONS),
  };
  if (random.chance(0.6)) profile.occupation = persona === 'B' ? 'student' : random.pick(['white_collar', 'freelancer', 'homemaker', 'engineer', 'teacher']);
  if (persona === 'C') profile.family = 'with_children';
  else if (random.chance(0.4)) profile.family = random.pick(['single', 'married', 'with_children']);
  if (random.chance(0.5)) profile.income = persona === 'A' ? 10_000 + random.int(20_000) : persona === 'B' ? random.int(5000) : 5000 + random.int(40_000);
  profile.reach = Math.round(Math.exp(3 + 1.8 * random.normal()));
  return profile;
}

export function generateCommunity(options: GenerateOptions): GeneratedCommunity {
  const random = createRandom(`${options.seed}:${options.fans}:${options.months}`);
  const calendar = createCalendar(options.timeZone);
  const start = Date.parse(options.start);
  if (Number.isNaN(start)) throw new Error(`invalid start ${options.start}`);
  let endKey = calendar.monthKey(start);
  for (let i = 0; i < options.months; i++) endKey = calendar.nextMonthKey(endKey);
  const end = calendar.startOfMonth(endKey);
  const horizon = end - start;
  const events: RawEvent[] = [];
  const emit = (ts: number, type: string, fan: string | null, channel: string | null, props: Record<string, unknown> | null) => {
    if (ts >= start && ts < end) events.push({ ts: Math.floor(ts / 1000) * 1000, type, fan, channel, props });
  };
  const localMidnight = (ts: number) => calendar.startOfDay(calendar.dayIndex(ts));
  const atHour = (ts: number) => localMidnight(ts) + hourOfDay(random) * HOUR_MS + random.int(3600) * 1000;

  // Brand posts, about four a week, and the recent ones fans interact with.
  const posts: { ts: number; id: string; category: string }[] = [];
  for (let ts = start + random.exponential(4 / 7) * DAY_MS; ts < end; ts += random.exponential(4 / 7) * DAY_MS) {
    const post = { ts: atHour(ts), id: `p${posts.length + 1}`, category: random.pick(CATEGORIES) };
    posts.push(post);
    emit(post.ts, 'post', null, 'xiaohongshu', { contentId: post.id, category: post.category });
  }
  const recentPost = (ts: number) => {
    let high = posts.length;
    let low = 0;
    while (low < high) {
      const mid = (low + high) >>> 1;
      if (posts[mid].ts <= ts) low = mid + 1;
      else high = mid;
    }
    if (low === 0) return null;
    return posts[Math.max(0, low - 1 - random.int(Math.min(low, 12)))];
  };

  const labels: GeneratedCommunity['labels'] = [];
  const zombieCount = Math.round(options.fans * options.zombieShare);
  const realCount = options.fans - zombieCount;
  const arrivals: { ts: number; propensity: number; id: string }[] = [];
  let orderNo = 0;
  let contentNo = 0;
  let fanNo = 0;
  const nextFanId = () => `u${String(++fanNo).padStart(6, '0')}`;

  // Arrival instants: a base in the first month, then inflow growing over the period.
  const arrivalTimes: number[] = [];
  for (let i = 0; i < realCount; i++) {
    const base = random.chance(0.25);
    const u = random.next();
    const fraction = base ? u * 0.08 : Math.sqrt(u);
    arrivalTimes.push(start + fraction * horizon);
  }
  arrivalTimes.sort((a, b) => a - b);

  for (let i = 0; i < realCount; i++) {
    const id = nextFanId();
    const arrival = arrivalTimes[i];
    labels.push({ fan: id, zombie: false, burst: null });
    const channel = random.weighted(CHANNELS, CHANNEL_WEIGHTS);
    // Three segments, each heterogeneous: a few superfans, some engaged fans, most casual.
    const segment = random.weighted(['super', 'engaged', 'casual'], [3, 14, 83]);
    // Referral propensity: heavy-tailed, and higher for fans who love the brand.
    const propensity = random.gamma(0.35, 1) * (segment === 'super' ? 6 : segment === 'engaged' ? 2 : 1);
    // Each real fan follows from a phone of its own.
    const followProps: Record<string, unknown> = { device: `dev-${id}` };
    if (arrivals.length > 10 && random.chance(0.32)) {
      // A referral: an earlier fan chosen by referral propensity (heavy-tailed, so chains branch unevenly).
      let referrer = arrivals[random.int(arrivals.length)];
      for (let tries = 0; tries < 6; tries++) {
        const candidate = arrivals[random.int(arrivals.length)];
        if (candidate.propensity > referrer.propensity) referrer = candidate;
      }
      if (random.chance(0.5)) followProps.referrer = referrer.id;
      else followProps.referralCode = referrer.id;
    }
    emit(arrival, 'follow', id, channel, followProps);
    arrivals.push({ ts: arrival, propensity, id });
    if (random.chance(0.6)) emit(arrival + random.int(3600) * 1000, 'profile', id, channel, profileOf(random));

    const rate = segment === 'super' ? random.gamma(4, 0.15) : segment === 'engaged' ? random.gamma(2, 0.12) : random.gamma(0.5, 0.04); // visits a day
    const dropout = segment === 'super' ? random.beta(1, 120) : segment === 'engaged' ? random.beta(1, 30) : random.beta(1, 2);
    const buyProbability = segment === 'super' ? random.beta(2, 10) : random.beta(1.2, 9);
    const meanSpend = random.gamma(3, 70);
    const shareProbability = segment === 'super' ? random.beta(2, 10) : random.beta(1, 12);
    const joinsGroup = random.chance(0.25);
    const gifter = random.chance(0.08);
    let ts = arrival;
    let purchases: { id: string; ts: number; amount: number }[] = [];
    let answeredNps = false;
    for (let session = 0; session < 400; session++) {
      const gap = random.exponential(rate) * DAY_MS;
      if (!(ts + gap < end)) break;
      ts = atHour(ts + gap);
      const post = recentPost(ts);
      const contentProps = post ? { contentId: post.id, category: post.category } : null;
      let t = ts;
      const step = () => (t += (30 + random.int(600)) * 1000);
      if (random.chance(0.45)) emit(step(), 'view', id, channel, contentProps);
      if (random.chance(0.1)) emit(step(), 'view', id, channel, contentProps);
      if (random.chance(0.55)) emit(step(), 'like', id, channel, contentProps);
      if (random.chance(0.25)) emit(step(), 'collect', id, channel, contentProps);
      if (random.chance(0.22)) emit(step(), 'comment', id, channel, contentProps);
      if (random.chance(shareProbability)) emit(step(), 'share', id, channel, contentProps);
      if (random.chance(0.08)) emit(step(), 'checkin', id, channel, null);
      if (random.chance(0.04)) emit(step(), 'message', id, channel, null);
      if (joinsGroup && session === 1) emit(step(), 'group_join', id, 'wechat', { groupId: random.pick(GROUPS) });
      if (joinsGroup && session > 1 && random.chance(0.3)) emit(step(), 'group_message', id, 'wechat', { groupId: random.pick(GROUPS) });
      if (gifter && random.chance(0.2)) emit(step(), 'gift', id, 'live', { amount: 1 + random.int(99), streamId: `s${calendar.dayIndex(t)}` });
      if (random.chance(0.01)) emit(step(), 'vote', id, channel, { pollId: `poll${calendar.monthKey(t)}`, option: random.pick(['A', 'B', 'C']) });
      if (random.chance(buyProbability)) {
        const amount = Math.max(1, Math.round(random.gamma(4, meanSpend / 4) * 100) / 100);
        const order = { id: `o${++orderNo}`, ts: step(), amount };
        purchases.push(order);
        emit(order.ts, 'purchase', id, 'shop', { orderId: order.id, amount, currency: 'CNY', series: random.pick(SERIES) });
        if (random.chance(0.04)) {
          const refund = random.chance(0.5) ? amount : Math.round(amount * random.next() * 100) / 100;
          emit(order.ts + (1 + random.int(10)) * DAY_MS, 'refund', id, 'shop', { orderId: order.id, amount: refund });
        }
      }
      if (random.chance(0.025 + (purchases.length > 0 ? 0.03 : 0))) {
        const contentId = `ugc${++contentNo}`;
        const kind = purchases.length > 0 && random.chance(0.6) ? 'purchase_share' : random.pick(['experience', 'note', 'question']);
        emit(step(), 'content_submit', id, channel, { contentId, kind });
        if (random.chance(0.4)) emit(t + (2 + random.int(72)) * HOUR_MS, 'content_select', id, null, { contentId });
      }
      if (!answeredNps && random.chance(0.05)) {
        answeredNps = true;
        const engaged = Math.min(1, rate * 3);
        emit(step(), 'nps', id, channel, { score: Math.max(0, Math.min(10, Math.round(6 + engaged * 4 + random.normal() * 2))) });
      }
      if (random.chance(0.004)) emit(step(), 'test_feedback', id, channel, { productId: `prod-${random.int(6)}`, score: 3 + random.int(3) });
      if (random.chance(dropout)) {
        if (random.chance(0.18)) emit(t + random.exponential(1 / 20) * DAY_MS, 'unfollow', id, channel, null);
        break;
      }
    }
    purchases = [];
  }

  // Click-farm zombies: bursts of follows within minutes, then nothing or a few scripted likes.
  const bursts = Math.max(1, Math.round(options.months * 1.5));
  const burstStarts = Array.from({ length: bursts }, () => start + random.next() * horizon).sort((a, b) => a - b);
  for (let i = 0; i < zombieCount; i++) {
    const id = nextFanId();
    const burst = random.int(bursts);
    labels.push({ fan: id, zombie: true, burst });
    const followTs = burstStarts[burst] + random.int(900) * 1000;
    emit(followTs, 'follow', id, 'douyin', null);
    if (random.chance(0.3)) {
      const post = recentPost(followTs) ?? posts[0];
      const likes = 1 + random.int(3);
      for (let k = 0; k < likes; k++) emit(followTs + (k + 1) * 600_000, 'like', id, 'douyin', post ? { contentId: post.id, category: post.category } : null);
    }
  }

  // The operator recognised a handful of top fans (brand recognition for Lv5) late in the period.
  const recognitions = Math.max(1, Math.round(realCount / 4000));
  const byPropensity = [...arrivals].sort((a, b) => b.propensity - a.propensity).slice(0, recognitions);
  for (const fan of byPropensity) emit(Math.max(fan.ts + DAY_MS, end - (5 + random.int(40)) * DAY_MS), 'op_recognize', fan.id, null, null);

  // Referral attacks, from a stream of their own (the community above is the same with or without).
  const attacks: GeneratedCommunity['attacks'] = [];
  const attackRandom = createRandom(`${options.seed}:${options.fans}:${options.months}:attacks`);
  let attackNo = 0;
  const fake = (referrer: { id: string }, ts: number, device: string): string => {
    const id = `x${String(++attackNo).padStart(5, '0')}`;
    emit(ts, 'follow', id, 'wechat', { referralCode: referrer.id, device });
    // A small first order qualifies the referral, which is what pays the referrer.
    emit(ts + (20 + attackRandom.int(600)) * 60_000, 'purchase', id, 'shop', { orderId: `xo-${id}`, amount: 9.9 });
    return id;
  };
  const eligible = arrivals.filter((fan) => fan.ts < end - 30 * DAY_MS);
  for (let i = 0; i < options.attacks && eligible.length > 0; i++) {
    for (const kind of ['self-referral', 'device-farm', 'burst', 'ring'] as const) {
      const referrer = eligible[attackRandom.int(eligible.length)];
      const at = referrer.ts + DAY_MS + attackRandom.next() * (end - 20 * DAY_MS - referrer.ts - DAY_MS);
      if (kind === 'self-referral') {
        // Second accounts on the referrer's own phone.
        const referees = [fake(referrer, at, `dev-${referrer.id}`), fake(referrer, at + 3 * DAY_MS, `dev-${referrer.id}`)];
        attacks.push({ kind, referrer: referrer.id, referees, flagged: referees });
      } else if (kind === 'device-farm') {
        // Three "friends" a day apart, all on one phone: the second and third share the first's.
        const device = `farm-${attackNo}`;
        const referees = [0, 1, 2].map((k) => fake(referrer, at + k * DAY_MS, device));
        attacks.push({ kind, referrer: referrer.id, referees, flagged: referees.slice(1) });
      } else if (kind === 'ring') {
        // Five accounts, each recruited by the previous one a day later, each buying once to qualify.
        const referees: string[] = [];
        let above: { id: string } = referrer;
        for (let k = 0; k < 5; k++) {
          const id = fake(above, at + k * DAY_MS, `ring-${attackNo + 1}`);
          referees.push(id);
          above = { id };
        }
        attacks.push({ kind, referrer: referrer.id, referees, flagged: referees.slice(3) });
      } else {
        // Six follows within five minutes, each on its own phone: the fifth and sixth make a burst.
        const referees = [0, 1, 2, 3, 4, 5].map((k) => fake(referrer, at + k * 50_000, `burner-${attackNo + 1}`));
        attacks.push({ kind, referrer: referrer.id, referees, flagged: referees.slice(4) });
      }
    }
  }

  events.sort((a, b) => a.ts - b.ts);
  const width = String(events.length).length;
  const lines = events.map((event, index) => {
    const object: Record<string, unknown> = { id: `e-${String(index + 1).padStart(width, '0')}`, type: event.type };
    if (event.fan !== null) object.fan = event.fan;
    object.ts = calendar.formatLocal(event.ts);
    if (event.channel !== null) object.channel = event.channel;
    if (event.props !== null) object.props = event.props;
    return JSON.stringify(object);
  });
  return { lines, labels, attacks, start, end };
}
