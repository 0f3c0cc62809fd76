/**
 * The dashboard's files (built by Vite into dist/web) served from memory, gzipped once when the
 * browser accepts it. Page paths answer with index.html (the app routes in the browser); a page
 * other than /login without a session redirects to /login first.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { extname, join, normalize, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import type { Context, Hono } from 'hono';
import type { Env } from './app.js';
import type { Catalog } from '../store/store.js';
import { sessionOf } from './session-auth.js';

/** The built dashboard, the same from src/ (tests) and dist/ (the package). */
export const WEB_ROOT = fileURLToPath(new URL('../../dist/web/', import.meta.url));

/** The dashboard's page paths (see web/src/routes.ts). */
export const PAGE_PATHS = ['/', '/login', '/fans', '/fans/:id', '/movement', '/referral', '/review', '/program'];

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.json': 'application/json',
  '.woff2': 'font/woff2',
};

interface Asset {
  type: string;
  raw: Buffer;
  gzip: Buffer | null;
}

export function mountWebAssets(app: Hono<Env>, catalog: Catalog, root = WEB_ROOT): void {
  const cache = new Map<string, Asset | null>();
  const load = (relative: string): Asset | null => {
    if (cache.has(relative)) return cache.get(relative) ?? null;
    const file = normalize(join(root, relative));
    let asset: Asset | null = null;
    if (file.startsWith(root.endsWith(sep) ? root : root + sep) && existsSync(file) && statSync(file).isFile()) {
      const raw = readFileSync(file);
      const type = TYPES[extname(file)] ?? 'application/octet-stream';
      asset = { type, raw, gzip: /text|javascript|svg|json/.test(type) && raw.length > 1024 ? gzipSync(raw, { level: 9 }) : null };
    }
    cache.set(relative, asset);
    return asset;
  };
  const send = (c: Context, asset: Asset, cacheControl: string) => {
    const gzip = asset.gzip !== null && /\bgzip\b/.test(c.req.header('Accept-Encoding') ?? '');
    const headers: Record<string, string> = { 'Content-Type': asset.type, 'Cache-Control': cacheControl, Vary: 'Accept-Encoding' };
    if (gzip) headers['Content-Encoding'] = 'gzip';
    return c.body(new Uint8Array(gzip ? (asset.gzip as Buffer) : asset.raw), 200, headers);
  };
  const page = async (c: Context) => {
    const index = load('index.html');
    if (!index) return c.text('The dashboard is not built: run `npm run build`.', 503);
    if (c.req.path !== '/login' && !(await sessionOf(catalog, c))) {
      const next = c.req.path + (new URL(c.req.url).search || '');
      return c.redirect(`/login?next=${encodeURIComponent(next)}`, 302);
    }
    c.header('X-Frame-Options', 'DENY');
    c.header('Content-Security-Policy', "default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'");
    return send(c, index, 'no-cache');
  };
  for (const path of PAGE_PATHS) app.get(path, page);
  // Hashed file names: cached for a year.
  app.get('/assets/:file', (c) => {
    const asset = load(`assets/${c.req.param('file')}`);
    return asset ? send(c, asset, 'public, max-age=31536000, immutable') : c.text('not found', 404);
  });
  app.get('/favicon.svg', (c) => {
    const asset = load('favicon.svg');
    return asset ? send(c, asset, 'public, max-age=86400') : c.text('not found', 404);
  });
}
