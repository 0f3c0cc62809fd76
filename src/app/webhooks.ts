/**
 * Outgoing webhooks: subscriptions per workspace, and the dispatcher that delivers the outbox.
 *
 * Delivery is at least once: an item is claimed for a lease, POSTed, then marked delivered or
 * failed. A failure is retried after base × 2^(attempts − 1) (capped at an hour); after
 * `maxAttempts` failures the item becomes a dead letter, listed by the API and the CLI until it is
 * retried. Receivers deduplicate by the `Fanflow-Event-Id` header (the payload's `id`).
 *
 * Each request carries `Fanflow-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "t.body">`
 * with the subscription's secret; a receiver recomputes it and refuses old timestamps.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { WEBHOOK_EVENT_TYPES, type Database, type OutboxItem, type WebhookEventType, type WebhookSubscription } from '../store/store.js';
import { UsageError } from './errors.js';

export function parseEventTypes(text: string | readonly string[]): WebhookEventType[] {
  const names = (typeof text === 'string' ? text.split(',') : [...text]).map((name) => name.trim()).filter((name) => name !== '');
  if (names.length === 0) throw new UsageError(`events: name at least one of ${WEBHOOK_EVENT_TYPES.join(', ')}`);
  for (const name of names) {
    if (!(WEBHOOK_EVENT_TYPES as readonly string[]).includes(name)) throw new UsageError(`events: unknown event type ${JSON.stringify(name)}; known: ${WEBHOOK_EVENT_TYPES.join(', ')}`);
  }
  return [...new Set(names)] as WebhookEventType[];
}

export function checkWebhookUrl(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new UsageError(`url ${JSON.stringify(url)}: not a URL`);
  }
  if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') throw new UsageError(`url ${JSON.stringify(url)}: use http or https`);
  return parsed.toString();
}

export async function addSubscription(database: Database, workspace: string, url: string, types: WebhookEventType[], now: Date): Promise<WebhookSubscription> {
  const subscription: WebhookSubscription = {
    id: `wh_${randomBytes(9).toString('base64url')}`,
    workspace,
    url: checkWebhookUrl(url),
    secret: `whsec_${randomBytes(24).toString('base64url')}`,
    types,
    createdAt: now.toISOString(),
  };
  await database.addWebhook(subscription);
  return subscription;
}

/** A subscription as listed: the secret is shown once, when it is created. */
export function describeSubscription({ secret: _secret, ...rest }: WebhookSubscription): Omit<WebhookSubscription, 'secret'> {
  return rest;
}

export function describeDelivery(item: OutboxItem): { seq: number; subscription: string; url: string; type: string; attempts: number; lastError: string | null; createdAt: string; payload: unknown } {
  return { seq: item.seq, subscription: item.subscription, url: item.url, type: item.type, attempts: item.attempts, lastError: item.lastError, createdAt: item.createdAt, payload: JSON.parse(item.payload) };
}

export function sign(secret: string, timestampSeconds: number, body: string): string {
  return `t=${timestampSeconds},v1=${createHmac('sha256', secret).update(`${timestampSeconds}.${body}`).digest('hex')}`;
}

/** Checks a signature header as a receiver would (within `toleranceSeconds` of `nowSeconds`). */
export function verifySignature(secret: string, header: string, body: string, nowSeconds: number, toleranceSeconds = 300): boolean {
  const match = /^t=(\d+),v1=([0-9a-f]{64})$/.exec(header);
  if (!match) return false;
  const timestamp = Number(match[1]);
  if (Math.abs(nowSeconds - timestamp) > toleranceSeconds) return false;
  const expected = Buffer.from(sign(secret, timestamp, body).slice(-64), 'hex');
  return timingSafeEqual(expected, Buffer.from(match[2], 'hex'));
}

export interface DispatchOptions {
  database: Database;
  /** First retry delay; each further failure doubles it (capped at an hour). */
  baseDelayMs?: number;
  /** Failures before an item becomes a dead letter. */
  maxAttempts?: number;
  timeoutMs?: number;
  leaseMs?: number;
  batch?: number;
  onError?: (error: unknown) => void;
}

const DEFAULTS = { baseDelayMs: 10_000, maxAttempts: 8, timeoutMs: 10_000, leaseMs: 60_000, batch: 50 };

async function deliver(item: OutboxItem, timeoutMs: number): Promise<string | null> {
  const timestamp = Math.floor(Date.now() / 1000);
  const payload = JSON.parse(item.payload) as { id: string };
  try {
    const response = await fetch(item.url, {
      method: 'POST',
      headers: {
        'Content-Type': 'application/json',
        'User-Agent': 'fanflow-webhooks',
        'Fanflow-Event-Id': payload.id,
        'Fanflow-Event-Type': item.type,
        'Fanflow-Delivery': String(item.seq),
        'Fanflow-Signature': sign(item.secret, timestamp, item.payload),
      },
      body: item.payload,
      signal: AbortSignal.timeout(timeoutMs),
      redirect: 'manual',
    });
    await response.arrayBuffer().catch(() => undefined);
    return response.status >= 200 && response.status < 300 ? null : `HTTP ${response.status}`;
  } catch (error) {
    return (error as Error).message || String(error);
  }
}

/** One pass: claims the due items and attempts each once. Returns how many were attempted. */
export async function deliverDue(options: DispatchOptions): Promise<{ attempted: number; delivered: number; dead: number }> {
  const settings = { ...DEFAULTS, ...options };
  const now = Date.now();
  const items = await options.database.claimDeliveries(now, settings.batch, settings.leaseMs);
  let delivered = 0;
  let dead = 0;
  await Promise.all(
    items.map(async (item) => {
      const error = await deliver(item, settings.timeoutMs);
      if (error === null) {
        delivered++;
        await options.database.finishDelivery(item.seq, { deliveredAt: new Date().toISOString() });
        return;
      }
      const attempts = item.attempts + 1;
      const nextAttemptAt = attempts >= settings.maxAttempts ? null : Date.now() + Math.min(3_600_000, settings.baseDelayMs * 2 ** (attempts - 1));
      if (nextAttemptAt === null) dead++;
      await options.database.finishDelivery(item.seq, { error, nextAttemptAt });
    }),
  );
  return { attempted: items.length, delivered, dead };
}

/** Delivers in the background until stopped: a pass, then the next as soon as work is due. */
export function startDispatcher(options: DispatchOptions & { pollMs?: number }): { stop(): Promise<void> } {
  const pollMs = options.pollMs ?? 500;
  let stopped = false;
  let timer: NodeJS.Timeout | null = null;
  let running: Promise<void> = Promise.resolve();
  const loop = () => {
    if (stopped) return;
    running = deliverDue(options)
      .then((pass) => {
        if (!stopped) timer = setTimeout(loop, pass.attempted === (options.batch ?? DEFAULTS.batch) ? 0 : pollMs).unref();
      })
      .catch((error: unknown) => {
        options.onError?.(error);
        if (!stopped) timer = setTimeout(loop, pollMs).unref();
      });
  };
  timer = setTimeout(loop, 0).unref();
  return {
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      await running;
    },
  };
}
