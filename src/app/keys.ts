/**
 * API keys: `ff_<id>_<secret>`. The id (public, 12 base32 characters) finds the key; only the
 * SHA-256 of the secret (32 random bytes) is stored, compared in constant time. A key belongs to
 * one workspace and carries scopes: ingest (write events), read, admin (program, operator actions).
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { KEY_SCOPES, type Catalog, type KeyScope, type StoredKey } from '../store/store.js';
import { UsageError } from './errors.js';

const ID_ALPHABET = 'abcdefghijkmnpqrstuvwxyz23456789';
const KEY_PATTERN = /^ff_([a-z2-9]{12})_([A-Za-z0-9_-]{43})$/;
const WORKSPACE_PATTERN = /^[a-z0-9][a-z0-9_-]{0,62}$/;

export function checkWorkspaceName(name: string): string {
  if (!WORKSPACE_PATTERN.test(name)) throw new UsageError(`workspace ${JSON.stringify(name)}: use 1–63 lower-case letters, digits, - or _, starting with a letter or digit`);
  return name;
}

export function parseScopes(text: string): KeyScope[] {
  const scopes = text.split(',').map((scope) => scope.trim()).filter((scope) => scope !== '');
  if (scopes.length === 0) throw new UsageError('--scopes: name at least one of ingest, read, admin');
  for (const scope of scopes) {
    if (!(KEY_SCOPES as readonly string[]).includes(scope)) throw new UsageError(`--scopes: unknown scope ${JSON.stringify(scope)}; known: ${KEY_SCOPES.join(', ')}`);
  }
  return [...new Set(scopes)] as KeyScope[];
}

function hashSecret(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

function randomId(): string {
  const bytes = randomBytes(12);
  let id = '';
  for (const byte of bytes) id += ID_ALPHABET[byte & 31];
  return id;
}

/** Creates a key; the returned `key` is the only time its secret exists outside the client. */
export async function createKey(catalog: Catalog, workspace: string, scopes: KeyScope[], label: string | null, now: Date): Promise<{ key: string; id: string; workspace: string; scopes: KeyScope[] }> {
  checkWorkspaceName(workspace);
  const id = randomId();
  const secret = randomBytes(32).toString('base64url');
  await catalog.createKey({ id, workspace, hash: hashSecret(secret), scopes, label, createdAt: now.toISOString() });
  return { key: `ff_${id}_${secret}`, id, workspace, scopes };
}

/** The stored key a presented key proves, or null (unknown, malformed, wrong secret, revoked). */
export async function authenticate(catalog: Catalog, presented: string): Promise<StoredKey | null> {
  const match = KEY_PATTERN.exec(presented);
  if (!match) return null;
  const stored = await catalog.findKey(match[1]);
  if (!stored || stored.revokedAt !== null) return null;
  const expected = Buffer.from(stored.hash, 'hex');
  const actual = Buffer.from(hashSecret(match[2]), 'hex');
  return expected.length === actual.length && timingSafeEqual(expected, actual) ? stored : null;
}

/** A key as shown in listings: never its hash. */
export function describeKey(key: StoredKey): { id: string; workspace: string; scopes: KeyScope[]; label: string | null; createdAt: string; revokedAt: string | null } {
  return { id: key.id, workspace: key.workspace, scopes: key.scopes, label: key.label, createdAt: key.createdAt, revokedAt: key.revokedAt };
}
