/**
 * `fanflow serve`: the HTTP API on a database (a SQLite file or PostgreSQL). Stops cleanly on SIGTERM/SIGINT (in-flight
 * requests finish, the database closes). Logs are JSON lines on stderr (pino), without keys.
 */
import type { AddressInfo } from 'node:net';
import { serve, type ServerType } from '@hono/node-server';
import { pino } from 'pino';
import type { Database } from '../store/store.js';
import { createServerApp } from './app.js';
import { startDispatcher } from '../app/webhooks.js';
import { readWorkerAvailable, startReadWorker } from './read-client.js';
import { startStateWorker, stateWorkerAvailable } from './state-client.js';
import type { ReadWorkerSetup } from './read-worker.js';
import type { StateWorkerSetup } from './state-worker.js';

/** How long a stopping server lets requests in flight finish. */
const SHUTDOWN_GRACE_MS = 5000;

export interface ServeOptions {
  /** The database to serve; closed when the server stops. */
  database: Database;
  host: string;
  port: number;
  rateLimit?: number;
  maxBodyBytes?: number;
  /** Where the state worker connects (the same database); null: the engine runs on the request thread. */
  stateWorker?: StateWorkerSetup | null;
  /** Where the read worker connects (the same database); null: fan reads are built on the request thread. */
  readWorker?: ReadWorkerSetup | null;
  /** Webhook delivery: first retry delay and failures before a dead letter. */
  webhooks?: { baseDelayMs?: number; maxAttempts?: number; pollMs?: number };
  logLevel?: string;
  version?: string;
  /**
   * After listening, read in the background what the overview of each workspace with operator
   * accounts needs (its report candidates), so that the first person to open the dashboard does
   * not wait for that read.
   */
  prepareDashboard?: boolean;
}

export interface RunningServer {
  url: string;
  close(): Promise<void>;
}

export async function startServer(options: ServeOptions): Promise<RunningServer> {
  const logger = pino({ level: options.logLevel ?? process.env.FANFLOW_LOG_LEVEL ?? 'info', redact: ['req.headers.authorization'] }, pino.destination(2));
  const { database } = options;
  const stateWorker = options.stateWorker && stateWorkerAvailable() ? startStateWorker(options.stateWorker) : null;
  // The worker writes most of the log's pages; its commits copy them back, off the request loop.
  if (stateWorker && options.stateWorker?.kind === 'sqlite') database.leaveCheckpoints?.();
  const readWorker =
    options.readWorker && readWorkerAvailable()
      ? startReadWorker(options.readWorker, (error) => logger.warn({ err: error }, 'the read worker stopped; fan reads are built on the request thread'))
      : null;
  const { app, prepareOverview, openWorkspace } = createServerApp({
    database,
    logger,
    rateLimit: options.rateLimit,
    maxBodyBytes: options.maxBodyBytes,
    version: options.version,
    stateWorker,
    readWorker,
  });
  const server: ServerType = await new Promise((resolveServer, reject) => {
    const started = serve({ fetch: app.fetch, port: options.port, hostname: options.host }, () => resolveServer(started));
    started.once('error', reject);
  });
  const address = server.address() as AddressInfo;
  const url = `http://${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port}`;
  logger.info({ url, store: database.kind, stateWorker: stateWorker !== null, readWorker: readWorker !== null }, 'listening');
  // Every instance delivers; claims keep two from sending the same item at once.
  const dispatcher = startDispatcher({ database, ...options.webhooks, onError: (error) => logger.error({ err: error }, 'webhook delivery pass failed') });
  let closing: Promise<void> | null = null;
  // Opens every workspace (its program compiled, its engine made) before its first request would:
  // an opening takes the request loop for tens of milliseconds, more while the code is still cold.
  void (async () => {
    for (const { name } of await database.listWorkspaces()) {
      if (closing) return;
      await openWorkspace(name);
    }
  })().catch((error: unknown) => {
    if (!closing) logger.warn({ err: error }, 'opening the workspaces failed; each opens at its first request');
  });
  if (options.prepareDashboard) {
    void (async () => {
      const workspaces = [...new Set((await database.listUsers()).filter((user) => user.disabledAt === null).map((user) => user.workspace))];
      for (const workspace of workspaces) {
        if (closing) return;
        const started = performance.now();
        await prepareOverview(workspace);
        logger.info({ workspace, ms: Math.round(performance.now() - started) }, 'dashboard prepared');
      }
    })().catch((error: unknown) => {
      if (!closing) logger.warn({ err: error }, 'preparing the dashboard failed; the first overview will read what it needs');
    });
  }
  return {
    url,
    close() {
      closing ??= new Promise<void>((done) => {
        server.close(() => {
          void dispatcher
            .stop()
            .then(() => Promise.all([stateWorker?.close(), readWorker?.close()]))
            .then(() => database.close())
            .finally(() => {
              logger.flush();
              done();
            });
        });
        // Idle keep-alive connections would hold the close open; requests still in flight get a
        // grace period, then their connections are closed too.
        const http = server as unknown as { closeIdleConnections?: () => void; closeAllConnections?: () => void };
        http.closeIdleConnections?.();
        setTimeout(() => http.closeAllConnections?.(), SHUTDOWN_GRACE_MS).unref();
      });
      return closing;
    },
  };
}
