/**
 * Browser sign-in for the dashboard. A session is an HttpOnly, SameSite=Strict cookie holding a
 * random token (only its SHA-256 is stored, so sessions survive restarts and are shared by every
 * server instance on the same store). State-changing requests made with a session must carry the
 * session's CSRF token in `X-CSRF-Token`; API keys in `Authorization` need none (a browser never
 * sends them by itself).
 */
import type { Context, Hono } from 'hono';
import type { Env } from './app.js';
import { deleteCookie, getCookie, setCookie } from 'hono/cookie';
import type { Catalog, StoredKey, StoredUser } from '../store/store.js';
import { describeUser, hashToken, scopesOf, signIn, SESSION_TTL_MS } from '../app/users.js';
import { ApiProblem } from './problem.js';

export const SESSION_COOKIE = 'ff_session';
export const CSRF_HEADER = 'X-CSRF-Token';

/** Failed sign-ins per email before a pause, and the window they are counted in. */
const MAX_FAILURES = 10;
const FAILURE_WINDOW_MS = 15 * 60_000;

export interface SessionPrincipal {
  key: StoredKey;
  user: StoredUser;
  csrf: string;
  tokenHash: string;
}

/** A session acts through the API like a key with its role's scopes; its id names the operator. */
function principalOf(user: StoredUser, csrf: string, tokenHash: string): SessionPrincipal {
  const key: StoredKey = { id: `user:${user.email}`, workspace: user.workspace, hash: '', scopes: scopesOf(user.role), label: user.email, createdAt: user.createdAt, revokedAt: null };
  return { key, user, csrf, tokenHash };
}

export async function sessionOf(catalog: Catalog, c: Context): Promise<SessionPrincipal | null> {
  const token = getCookie(c, SESSION_COOKIE);
  if (!token || token.length > 100) return null;
  const tokenHash = hashToken(token);
  const found = await catalog.findSession(tokenHash, Date.now());
  return found ? principalOf(found.user, found.session.csrf, tokenHash) : null;
}

/** Refuses a state-changing request whose CSRF header does not match its session's token. */
export function assertCsrf(c: Context, principal: SessionPrincipal): void {
  if (c.req.method === 'GET' || c.req.method === 'HEAD' || c.req.method === 'OPTIONS') return;
  if (c.req.header(CSRF_HEADER) !== principal.csrf) throw new ApiProblem(403, 'CSRF_FAILED', `a state-changing request made with a session needs its ${CSRF_HEADER} header`);
}

/** A form posted from another site is refused (login CSRF); requests without Origin are not browsers posting forms. */
function assertSameOrigin(c: Context): void {
  const origin = c.req.header('Origin');
  if (origin === undefined || origin === 'null') return;
  const host = c.req.header('Host');
  let originHost: string;
  try {
    originHost = new URL(origin).host;
  } catch {
    throw new ApiProblem(403, 'CSRF_FAILED', 'the Origin header is not a URL');
  }
  if (host !== undefined && originHost !== host) throw new ApiProblem(403, 'CSRF_FAILED', `a sign-in from ${origin} is refused`);
}

function isSecure(c: Context): boolean {
  return new URL(c.req.url).protocol === 'https:' || c.req.header('X-Forwarded-Proto') === 'https';
}

/** A local path to go to after sign-in; anything else (another host, a scheme) becomes `/`. */
export function safeNext(next: unknown): string {
  return typeof next === 'string' && /^\/(?!\/)[^\s\\]*$/.test(next) && !next.startsWith('/auth/') ? next : '/';
}

export function mountSessionRoutes(app: Hono<Env>, catalog: Catalog): void {
  const failures = new Map<string, number[]>();
  const recentFailures = (email: string, now: number) => (failures.get(email) ?? []).filter((at) => at > now - FAILURE_WINDOW_MS);

  app.post('/auth/login', async (c) => {
    assertSameOrigin(c);
    const isForm = !(c.req.header('Content-Type') ?? '').includes('application/json');
    let body: Record<string, unknown>;
    try {
      body = isForm ? await c.req.parseBody() : ((await c.req.json()) as Record<string, unknown>);
    } catch {
      throw new ApiProblem(400, 'BAD_REQUEST', 'send email and password as a form or as JSON');
    }
    const email = typeof body.email === 'string' ? body.email.trim().toLowerCase() : '';
    const password = typeof body.password === 'string' ? body.password : '';
    const next = safeNext(body.next);
    if (email === '' || password === '') {
      if (isForm) return c.redirect(`/login?error=missing&next=${encodeURIComponent(next)}`, 303);
      throw new ApiProblem(400, 'BAD_REQUEST', 'email and password are required', [...(email === '' ? [{ field: 'email', reason: 'required' }] : []), ...(password === '' ? [{ field: 'password', reason: 'required' }] : [])]);
    }
    const now = Date.now();
    if (recentFailures(email, now).length >= MAX_FAILURES) {
      if (isForm) return c.redirect(`/login?error=locked&next=${encodeURIComponent(next)}`, 303);
      throw new ApiProblem(429, 'RATE_LIMITED', `${MAX_FAILURES} failed sign-ins in ${FAILURE_WINDOW_MS / 60_000} minutes; wait before trying again`, undefined, { 'Retry-After': String(FAILURE_WINDOW_MS / 1000) });
    }
    const session = await signIn(catalog, email, password, now);
    if (!session) {
      failures.set(email, [...recentFailures(email, now), now]);
      if (isForm) return c.redirect(`/login?error=credentials&next=${encodeURIComponent(next)}`, 303);
      throw new ApiProblem(401, 'UNAUTHORIZED', 'the email or the password is wrong, or the account is disabled');
    }
    failures.delete(email);
    setCookie(c, SESSION_COOKIE, session.token, { httpOnly: true, sameSite: 'Strict', path: '/', secure: isSecure(c), maxAge: SESSION_TTL_MS / 1000 });
    if (isForm) return c.redirect(next, 303);
    return c.json({ user: describeUser(session.user), csrf: session.csrf }, 200);
  });

  app.get('/auth/session', async (c) => {
    const principal = await sessionOf(catalog, c);
    if (!principal) throw new ApiProblem(401, 'UNAUTHORIZED', 'not signed in');
    c.header('Cache-Control', 'no-store');
    return c.json({ user: describeUser(principal.user), csrf: principal.csrf, scopes: principal.key.scopes }, 200);
  });

  app.post('/auth/logout', async (c) => {
    const principal = await sessionOf(catalog, c);
    if (principal) {
      assertCsrf(c, principal);
      await catalog.deleteSession(principal.tokenHash);
    }
    deleteCookie(c, SESSION_COOKIE, { path: '/' });
    return c.body(null, 204);
  });
}
