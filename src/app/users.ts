/**
 * Dashboard operators: accounts per workspace with a role, passwords stored as scrypt hashes,
 * sessions as random cookie tokens of which only the SHA-256 is stored (like API keys), each
 * with its own CSRF token. An email belongs to one workspace in a deployment, so the login form
 * needs no workspace field.
 */
import { createHash, randomBytes, randomUUID, scrypt as scryptCallback, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import { USER_ROLES, type Catalog, type KeyScope, type StoredUser, type UserRole } from '../store/store.js';
import { UsageError } from './errors.js';
import { checkWorkspaceName } from './keys.js';

/** scrypt cost: N = 2^15, r = 8, p = 1 (about 32 MiB and 50–100 ms per hash on a laptop core). */
const SCRYPT = { N: 1 << 15, r: 8, p: 1, maxmem: 64 << 20 };
const KEY_LENGTH = 32;
export const MIN_PASSWORD_LENGTH = 10;
/** Sessions last 12 hours from sign-in. */
export const SESSION_TTL_MS = 12 * 3_600_000;

const EMAIL_PATTERN = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

function scrypt(password: string, salt: Buffer, options: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => scryptCallback(password.normalize('NFKC'), salt, KEY_LENGTH, options, (error, key) => (error ? reject(error) : resolve(key))));
}

/** `scrypt$N$r$p$salt$hash` (base64url), so that the cost can rise without breaking old hashes. */
export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const key = await scrypt(password, salt, SCRYPT);
  return ['scrypt', SCRYPT.N, SCRYPT.r, SCRYPT.p, salt.toString('base64url'), key.toString('base64url')].join('$');
}

export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const parts = stored.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return false;
  const [N, r, p] = parts.slice(1, 4).map(Number);
  const expected = Buffer.from(parts[5], 'base64url');
  const actual = await scrypt(password, Buffer.from(parts[4], 'base64url'), { N, r, p, maxmem: SCRYPT.maxmem });
  return actual.length === expected.length && timingSafeEqual(actual, expected);
}

export function normalizeEmail(email: string): string {
  return email.trim().toLowerCase();
}

export function parseRole(text: string): UserRole {
  if (!(USER_ROLES as readonly string[]).includes(text)) throw new UsageError(`--role: use one of ${USER_ROLES.join(', ')}`);
  return text as UserRole;
}

/** What a role may do through the API: owners and admins act and change the program; analysts read. */
export function scopesOf(role: UserRole): KeyScope[] {
  return role === 'analyst' ? ['read'] : ['read', 'ingest', 'admin'];
}

export async function createUser(catalog: Catalog, input: { workspace: string; email: string; password: string; role: UserRole }, now: Date): Promise<{ id: string; workspace: string; email: string; role: UserRole }> {
  checkWorkspaceName(input.workspace);
  const email = normalizeEmail(input.email);
  if (!EMAIL_PATTERN.test(email)) throw new UsageError(`--email ${JSON.stringify(input.email)}: not an email address`);
  if (input.password.length < MIN_PASSWORD_LENGTH) throw new UsageError(`--password: use at least ${MIN_PASSWORD_LENGTH} characters`);
  if (await catalog.findUserByEmail(email)) throw new UsageError(`${email} already has an account in this deployment`);
  const user: StoredUser = { id: randomUUID(), workspace: input.workspace, email, passwordHash: await hashPassword(input.password), role: input.role, createdAt: now.toISOString(), disabledAt: null };
  await catalog.createUser(user);
  return { id: user.id, workspace: user.workspace, email, role: user.role };
}

/** Sets a new password (every session of the user ends); false when there is no such user. */
export async function resetPassword(catalog: Catalog, email: string, password: string): Promise<boolean> {
  if (password.length < MIN_PASSWORD_LENGTH) throw new UsageError(`--password: use at least ${MIN_PASSWORD_LENGTH} characters`);
  return catalog.setPassword(normalizeEmail(email), await hashPassword(password));
}

export function describeUser(user: StoredUser): { email: string; workspace: string; role: UserRole; createdAt: string; disabledAt: string | null } {
  return { email: user.email, workspace: user.workspace, role: user.role, createdAt: user.createdAt, disabledAt: user.disabledAt };
}

export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

// A fixed hash to verify against when the email is unknown, so that both cases take as long.
let decoy: Promise<string> | null = null;

/** A new session for correct credentials of an enabled user; null otherwise. */
export async function signIn(catalog: Catalog, email: string, password: string, now: number): Promise<{ token: string; csrf: string; user: StoredUser } | null> {
  const user = await catalog.findUserByEmail(normalizeEmail(email));
  decoy ??= hashPassword(randomBytes(12).toString('hex'));
  const ok = await verifyPassword(password, user?.passwordHash ?? (await decoy));
  if (!user || !ok || user.disabledAt !== null) return null;
  const token = randomBytes(32).toString('base64url');
  const csrf = randomBytes(24).toString('base64url');
  await catalog.createSession({ hash: hashToken(token), userId: user.id, csrf, createdAt: new Date(now).toISOString(), expiresAt: now + SESSION_TTL_MS });
  return { token, csrf, user };
}
