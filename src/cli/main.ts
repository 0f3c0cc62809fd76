/**
 * The `fanflow` command. Exit codes: 0 ok, 1 failure, 2 bad usage or input.
 * With --json, stdout holds exactly one JSON document; progress goes to stderr.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { Command, CommanderError, Option } from 'commander';
import cliProgress from 'cli-progress';
import { parseMonthKey } from '../core/calendar.js';
import { parseTimestamp } from '../core/events.js';
import { DEFAULT_PROGRAM_YAML, parseProgram } from '../core/program.js';
import { NotFoundError, UsageError } from '../app/errors.js';
import { importFile, type ImportSummary } from '../app/import.js';
import { compileProgramText, formatProgramIssues, loadProgramFile, programVersionOf, type LoadedProgram } from '../app/program-source.js';
import { queryFan, queryFans, queryReport } from '../app/queries.js';
import { activate, openWorkspace, type Progress, type Workspace } from '../app/workspace.js';
import { runReplay } from '../app/replay.js';
import { DEFAULT_GENERATE, generateCommunity } from '../demo/generate.js';
import { openSqliteDatabase, type SqliteOptions } from '../store/sqlite-store.js';
import { DEFAULT_WORKSPACE, WEBHOOK_EVENT_TYPES, type Database, type Store } from '../store/store.js';
import { addSubscription, deliverDue, describeDelivery, describeSubscription, parseEventTypes } from '../app/webhooks.js';
import { checkWorkspaceName, createKey, describeKey, parseScopes } from '../app/keys.js';
import { createUser, describeUser, MIN_PASSWORD_LENGTH, normalizeEmail, parseRole, resetPassword } from '../app/users.js';
import { messages, resolveLang } from './messages.js';
import { renderFan, renderFansCsv, renderFansTable, renderReport, table } from './render.js';
import { renderAnalytics, renderAudit, renderCampaigns, renderCompliance, renderLeaderboard, renderLedgerCheck, renderPayout, renderRedemption, renderReferral, renderReviewQueue } from './render-fission.js';
import { campaignReport, cliSync, complianceReport, fissionAnalytics, leaderboard, ledgerAudit, ledgerVerify, listPayouts, payoutCsv, redeem, referralShow, resolveReview, reviewQueue, runPayout } from '../app/fission.js';
import { randomUUID } from 'node:crypto';

const PACKAGE_VERSION = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

interface GlobalOptions {
  db: string;
  databaseUrl?: string;
  workspace: string;
  asOf?: string;
  program?: string;
  json?: boolean;
  lang?: string;
}

function progressBar(enabled: boolean): Progress {
  if (!enabled) return { start() {}, update() {}, stop() {} };
  let bar: cliProgress.SingleBar | null = null;
  return {
    start(total, label) {
      if (total === 0) return;
      // Imports count bytes (shown in MB); replays count events; reports' passes count fans.
      const bytes = label === 'import';
      const unit = bytes ? ' MB' : label === 'report' ? ' fans' : ' events';
      bar = new cliProgress.SingleBar(
        {
          format: `${label.padEnd(7)} [{bar}] {percentage}% | {value}/{total}${unit} | {duration_formatted}`,
          hideCursor: true,
          clearOnComplete: false,
          stream: process.stderr,
          formatValue: (value, _options, type) => (bytes && (type === 'value' || type === 'total') ? (value / 1e6).toFixed(1) : String(value)),
        },
        cliProgress.Presets.shades_classic,
      );
      bar.start(total, 0);
    },
    update(done) {
      bar?.update(done);
    },
    stop() {
      bar?.stop();
      bar = null;
    },
  };
}

function parseAsOf(value: string | undefined): number {
  if (value === undefined) return Date.now();
  const parsed = parseTimestamp(/^\d+$/.test(value) ? Number(value) : value);
  if (typeof parsed === 'string') throw new UsageError(`--as-of ${value}: ${parsed}`);
  return parsed;
}

function print(text: string): void {
  process.stdout.write(text);
}

function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** One document with --json, else the rendering in the options' language. */
function show<T>(options: GlobalOptions, value: T, render: (value: T, m: ReturnType<typeof messages>) => string): void {
  if (options.json) printJson(value);
  else print(render(value, messages(resolveLang(options.lang, process.env))));
}

/**
 * The server, `fan` and `report` read a SQLite file through a memory map of up to 1 GiB
 * (FANFLOW_SQLITE_MMAP_MIB; 0: none): no read call per page. The mapped pages count in the
 * process's resident size, so the commands that go over every fan (import, replay, fans) read
 * through read calls.
 */
function mapped(): SqliteOptions {
  const mmapMiB = Number(process.env.FANFLOW_SQLITE_MMAP_MIB ?? 1024);
  if (!Number.isFinite(mmapMiB) || mmapMiB < 0) throw new UsageError(`FANFLOW_SQLITE_MMAP_MIB=${process.env.FANFLOW_SQLITE_MMAP_MIB}: a number of MiB, 0 or more`);
  return { mmapMiB };
}

/**
 * How much lower the state worker's scheduling priority is than the request thread's (its nice
 * increment, FANFLOW_STATE_WORKER_NICE, default 10; 0 keeps it equal): on a machine whose cores
 * are all busy, requests are answered first and the derived state catches up with what is left.
 */
function stateWorkerNice(): number {
  const text = process.env.FANFLOW_STATE_WORKER_NICE ?? '10';
  const nice = Number(text);
  if (!Number.isInteger(nice) || nice < 0 || nice > 19) throw new UsageError(`FANFLOW_STATE_WORKER_NICE=${text}: a whole number from 0 to 19`);
  return nice;
}

/** The database the options name: PostgreSQL with --database-url (or FANFLOW_DATABASE_URL), else the SQLite file. */
async function openDatabase(options: GlobalOptions, create = true, sqlite: SqliteOptions = {}): Promise<Database> {
  const url = options.databaseUrl ?? process.env.FANFLOW_DATABASE_URL;
  if (url) {
    try {
      const { openPostgresDatabase } = await import('../store/postgres-store.js');
      return await openPostgresDatabase(url);
    } catch (error) {
      throw new UsageError(`cannot use PostgreSQL at ${url.replace(/\/\/[^@/]*@/, '//…@')}: ${(error as Error).message}`);
    }
  }
  if (!create && !existsSync(options.db)) throw new UsageError(`no database at ${options.db} (import events first, or pass --db)`);
  mkdirSync(dirname(resolve(options.db)), { recursive: true });
  return openSqliteDatabase(options.db, sqlite);
}

/** Runs `run` on the database the options name, closing it after. */
async function withDatabase<T>(options: GlobalOptions, run: (database: Database) => Promise<T>): Promise<T> {
  const database = await openDatabase(options);
  try {
    return await run(database);
  } finally {
    await database.close();
  }
}

/** Opens the store and the program; a --program different from the active one becomes active. */
async function open(options: GlobalOptions, create = true, sqlite: SqliteOptions = {}): Promise<Workspace> {
  const database = await openDatabase(options, create, sqlite);
  const opened = await database.workspace(checkWorkspaceName(options.workspace));
  const store: Store = { ...opened, close: () => database.close() };
  const given: LoadedProgram | null = options.program ? loadProgramFile(options.program) : null;
  const workspace = await openWorkspace(store, given);
  // The program in use becomes the active one, so later commands read it without re-validating.
  if (given || (create && !(await store.activeProgram()))) await activate(store, { program: workspace.program, yaml: workspace.yaml }, new Date().toISOString());
  return workspace;
}

async function withWorkspace<T>(options: GlobalOptions, create: boolean, run: (workspace: Workspace) => T | Promise<T>, sqlite: SqliteOptions = {}): Promise<T> {
  const workspace = await open(options, create, sqlite);
  try {
    return await run(workspace);
  } finally {
    await workspace.store.close();
  }
}

function showProgress(): boolean {
  return Boolean(process.stderr.isTTY) && !process.env.CI;
}

function summaryLine(file: string, summary: ImportSummary): string {
  return `${file}: ${summary.accepted} accepted, ${summary.duplicates} duplicates, ${summary.conflicts} conflicts, ${summary.rejected} rejected${summary.rejectsFile ? ` (see ${summary.rejectsFile})` : ''}${summary.rebuilt ? '; state rebuilt from the log (events arrived before the last applied one)' : ''}\n`;
}

function previousMonth(asOf: number, workspace: Workspace): string {
  const { calendar } = workspace.engine;
  return calendar.previousMonthKey(calendar.monthKey(asOf));
}

interface ServeCliOptions extends GlobalOptions {
  port: string;
  host: string;
  rateLimit: string;
}

/** Serves the API and the dashboard until SIGTERM/SIGINT; `onListening` runs once the port is open. */
async function serveUntilStopped(options: ServeCliOptions, onListening?: (url: string) => void): Promise<void> {
  const port = Number(options.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError(`--port ${options.port}: not a port number`);
  const rateLimit = Number(options.rateLimit);
  if (!(rateLimit > 0)) throw new UsageError(`--rate-limit ${options.rateLimit}: a positive number of requests per second`);
  const sqlite = mapped();
  const database = await openDatabase(options, true, sqlite);
  // The engine runs on a thread of its own with its own connection, and so do fan reads
  // (FANFLOW_STATE_WORKER=0, FANFLOW_READ_WORKER=0: on the request thread).
  const url = options.databaseUrl ?? process.env.FANFLOW_DATABASE_URL;
  const location = url ? { kind: 'postgres' as const, location: url } : { kind: 'sqlite' as const, location: resolve(options.db) };
  const stateWorker = process.env.FANFLOW_STATE_WORKER === '0' ? null : { ...location, nice: stateWorkerNice() };
  const readWorker = process.env.FANFLOW_READ_WORKER === '0' ? null : { ...location, mmapMiB: sqlite.mmapMiB };
  const { startServer } = await import('../server/serve.js');
  const server = await startServer({ database, host: options.host, port, rateLimit, version: PACKAGE_VERSION, stateWorker, readWorker, prepareDashboard: true });
  const where = database.kind === 'postgres' ? 'PostgreSQL' : options.db;
  process.stderr.write(`fanflow serving ${where} at ${server.url} (dashboard: ${server.url}/, API reference: ${server.url}/docs)\n`);
  onListening?.(server.url);
  await new Promise<void>((done) => {
    let stopping = false;
    // The first signal stops cleanly (requests in flight finish); a second one exits at once.
    const stop = () => {
      if (stopping) process.exit(130);
      stopping = true;
      void server.close().then(done);
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
  });
}

export function buildCli(): Command {
  const cli = new Command('fanflow')
    .description('Fan ecosystem engine: layers, levels, points ledger and community health from an event log.')
    .option('--db <path>', 'SQLite database file', './fanflow.db')
    .option('--database-url <url>', 'PostgreSQL instead of the SQLite file: postgres://user@host:5432/db[?schema=name] (also FANFLOW_DATABASE_URL)')
    .option('--workspace <name>', 'workspace (brand) inside the database', process.env.FANFLOW_WORKSPACE ?? DEFAULT_WORKSPACE)
    .option('--as-of <instant>', 'evaluate as of this instant (RFC 3339 or epoch ms; default: now)')
    .option('--program <file.yaml>', 'program file (default: the active program in the database, else the built-in default)')
    .option('--lang <lang>', 'output language: en or zh-CN (default from FANFLOW_LANG / LANG)')
    .showHelpAfterError()
    .exitOverride();
  const globals = (command: Command): GlobalOptions => command.optsWithGlobals() as GlobalOptions;

  cli
    .command('import')
    .description('import NDJSON or CSV event files (idempotent; out-of-order arrival is fine)')
    .argument('<files...>', 'event files (.ndjson/.jsonl or .csv)')
    .option('--rejects <file>', 'where to write rejected lines (default: <file>.rejects.ndjson)')
    .option('--json', 'print one JSON summary')
    .action(async (files: string[], _opts, command: Command) => {
      const options = globals(command) as GlobalOptions & { rejects?: string };
      for (const file of files) if (!existsSync(file)) throw new UsageError(`no such file: ${file}`);
      const summaries = await withWorkspace(options, true, async (workspace) => {
        const done: ImportSummary[] = [];
        for (const file of files) {
          const summary = await importFile(workspace, file, { progress: progressBar(showProgress()), rejectsPath: options.rejects ?? null });
          if (!options.json) print(summaryLine(file, summary));
          done.push(summary);
        }
        return done;
      });
      if (options.json) {
        const total = summaries.reduce(
          (sum, s) => ({ accepted: sum.accepted + s.accepted, duplicates: sum.duplicates + s.duplicates, conflicts: sum.conflicts + s.conflicts, rejected: sum.rejected + s.rejected, rejectsFile: sum.rejectsFile ?? s.rejectsFile }),
          { accepted: 0, duplicates: 0, conflicts: 0, rejected: 0, rejectsFile: null as string | null },
        );
        printJson(files.length === 1 ? { ...total, rebuilt: summaries[0].rebuilt } : { ...total, files: summaries.map((s, i) => ({ file: files[i], ...s })) });
      }
      if (summaries.some((s) => s.rejected > 0 || s.conflicts > 0)) process.exitCode = 2;
    });

  cli
    .command('fan')
    .description('show one fan: level with its rule and figures, layer, points, tags, churn risk')
    .argument('<id>', 'the fan external id')
    .option('--json', 'print JSON')
    .action(async (id: string, _opts, command: Command) => {
      const options = globals(command);
      const view = await withWorkspace(options, false, (workspace) => queryFan(workspace, id, parseAsOf(options.asOf)), mapped());
      show(options, view, renderFan);
    });

  cli
    .command('fans')
    .description('list and export fans by layer, level and tags')
    .addOption(new Option('--layer <layer>', 'layer').choices(['core', 'backbone', 'general', 'observation', 'unfollowed']))
    .option('--level <n>', 'level 1–5')
    .option('--tag <key=value...>', 'tag filter, e.g. churnRisk=high (repeatable)')
    .option('--limit <n>', 'at most this many fans')
    .addOption(new Option('--format <format>', 'output format').choices(['table', 'csv', 'json', 'ndjson']).default('table'))
    .option('--json', 'same as --format json')
    .action(async (_opts, command: Command) => {
      const options = globals(command) as GlobalOptions & { layer?: string; level?: string; tag?: string[]; limit?: string; format: string };
      const level = options.level === undefined ? undefined : Number(options.level);
      if (level !== undefined && !(Number.isInteger(level) && level >= 1 && level <= 5)) throw new UsageError('--level must be an integer 1–5');
      const limit = options.limit === undefined ? undefined : Number(options.limit);
      if (limit !== undefined && !(Number.isInteger(limit) && limit > 0)) throw new UsageError('--limit must be a positive integer');
      const tags = (options.tag ?? []).map((tag) => {
        const [key, ...rest] = tag.split('=');
        return { key, value: rest.length === 0 ? 'true' : rest.join('=') };
      });
      const views = await withWorkspace(options, false, (workspace) => queryFans(workspace, { layer: options.layer, level, tags, limit }, parseAsOf(options.asOf)));
      const format = options.json ? 'json' : options.format;
      if (format === 'json') printJson(views);
      else if (format === 'ndjson') print(views.map((view) => JSON.stringify(view)).join('\n') + (views.length ? '\n' : ''));
      else if (format === 'csv') print(renderFansCsv(views));
      else print(renderFansTable(views, messages(resolveLang(options.lang, process.env))));
    });

  cli
    .command('report')
    .description('the monthly ecosystem review (PRODUCT §4)')
    .option('--month <YYYY-MM>', 'the month (default: the last full month before --as-of)')
    .addOption(new Option('--format <format>', 'output format').choices(['text', 'md', 'json']).default('text'))
    .option('--json', 'same as --format json')
    .action(async (_opts, command: Command) => {
      const options = globals(command) as GlobalOptions & { month?: string; format: string };
      if (options.month !== undefined && !parseMonthKey(options.month)) throw new UsageError(`--month must be YYYY-MM, got ${options.month}`);
      const report = await withWorkspace(options, false, (workspace) => {
        const asOf = parseAsOf(options.asOf);
        // A report past the last event passes over every stored fan (seconds at a million).
        workspace.progress = progressBar(showProgress());
        workspace.holdReportCandidates = false;
        return queryReport(workspace, options.month ?? previousMonth(asOf, workspace), asOf);
      }, mapped());
      const format = options.json ? 'json' : options.format;
      if (format === 'json') printJson(report);
      else print(renderReport(report, messages(resolveLang(options.lang, process.env)), format === 'md'));
    });

  const programCommand = cli.command('program').description('the rules as configuration');
  programCommand
    .command('init')
    .description('write the default program to a file to edit')
    .argument('<file>', 'target YAML file')
    .option('--force', 'overwrite an existing file')
    .action((file: string, opts: { force?: boolean }) => {
      if (existsSync(file) && !opts.force) throw new UsageError(`${file} exists (use --force to overwrite)`);
      writeFileSync(file, DEFAULT_PROGRAM_YAML);
      print(`wrote ${file}\n`);
    });
  programCommand
    .command('validate')
    .description('check a program file; errors name the line and path')
    .argument('<file>', 'YAML file')
    .option('--json', 'print JSON')
    .action((file: string, _opts, command: Command) => {
      const options = globals(command);
      if (!existsSync(file)) throw new UsageError(`no such file: ${file}`);
      const parsed = parseProgram(readFileSync(file, 'utf8'));
      if (parsed.ok) {
        const version = programVersionOf(parsed.spec);
        if (options.json) printJson({ ok: true, version, issues: [] });
        else print(`${file}: valid (version ${version})\n`);
        return;
      }
      if (options.json) printJson({ ok: false, version: null, issues: parsed.issues });
      else process.stderr.write(`${formatProgramIssues(file, parsed.issues)}\n`);
      process.exitCode = 2;
    });
  programCommand
    .command('show')
    .description('print the program in effect (YAML, or --json)')
    .option('--json', 'print JSON')
    .action(async (_opts, command: Command) => {
      const options = globals(command);
      const shown = existsSync(options.db) || options.program
        ? await withWorkspace(options, true, (workspace) => ({ version: workspace.program.version, yaml: workspace.yaml, program: workspace.program }))
        : (() => {
            const loaded = compileProgramText(DEFAULT_PROGRAM_YAML, '(built-in default)');
            return { version: loaded.program.version, yaml: loaded.yaml, program: loaded.program };
          })();
      if (options.json) printJson({ version: shown.version, program: shown.program });
      else print(`# version ${shown.version}\n${shown.yaml}`);
    });

  cli
    .command('replay')
    .description('rebuild all state from the event log and verify it equals the incremental state')
    .option('--json', 'print JSON')
    .action(async (_opts, command: Command) => {
      const options = globals(command);
      const result = await withWorkspace(options, false, (workspace) => runReplay(workspace, progressBar(showProgress())));
      if (options.json) printJson(result);
      else print(`replayed ${result.events} events → ${result.fans} fans in ${result.seconds.toFixed(2)} s (${Math.round(result.eventsPerSecond)} events/s); incremental state ${result.verified ? 'verified identical' : result.compared ? `DIFFERS in ${result.differences} records (replaced by the replay)` : 'absent, under another program or from another engine version (replaced)'}; ledger ${result.ledgerOk ? 'balanced' : 'NOT balanced'}\n`);
      if (result.compared && !result.verified) process.exitCode = 1;
    });



  cli
    .command('serve')
    .description('run the HTTP API (OpenAPI at /openapi.json, reference at /docs)')
    .option('--port <n>', 'port', '8080')
    .option('--host <host>', 'interface to listen on', '127.0.0.1')
    .option('--rate-limit <n>', 'requests per second per API key (bursts up to twice that)', '2000')
    .action(async (_opts, command: Command) => {
      await serveUntilStopped(globals(command) as ServeCliOptions);
    });

  const keys = cli.command('keys').description('API keys of a workspace (stored hashed; the key is shown once)');
  keys
    .command('create')
    .description('create a key (and the workspace if new)')
    .requiredOption('--scopes <list>', 'comma-separated: ingest, read, admin')
    .option('--label <text>', 'what the key is for')
    .option('--json', 'print JSON')
    .action(async (_opts, command: Command) => {
      const options = globals(command) as GlobalOptions & { scopes: string; label?: string; json?: boolean };
      const scopes = parseScopes(options.scopes);
      await withDatabase(options, async (database) => {
        const created = await createKey(database, checkWorkspaceName(options.workspace), scopes, options.label ?? null, new Date());
        if (options.json) printJson(created);
        else print(`${created.key}\nworkspace ${created.workspace}, scopes ${created.scopes.join(',')}, id ${created.id}. Store the key now: it is not shown again.\n`);
      });
    });
  keys
    .command('list')
    .description('list keys (all workspaces unless --workspace is given)')
    .option('--json', 'print JSON')
    .action(async (_opts, command: Command) => {
      const options = globals(command) as GlobalOptions & { json?: boolean };
      await withDatabase(options, async (database) => {
        const named = command.getOptionValueSourceWithGlobals('workspace') !== 'default';
        const listed = (await database.listKeys(named ? options.workspace : undefined)).map(describeKey);
        if (options.json) printJson({ keys: listed });
        else print(listed.length === 0 ? 'no keys\n' : `${listed.map((k) => `${k.id}  ${k.workspace.padEnd(12)} ${k.scopes.join(',').padEnd(18)} ${k.createdAt}${k.revokedAt ? `  revoked ${k.revokedAt}` : ''}${k.label ? `  ${k.label}` : ''}`).join('\n')}\n`);
      });
    });
  keys
    .command('revoke')
    .description('revoke a key by its id (the part after ff_)')
    .argument('<id>', 'key id')
    .option('--json', 'print JSON')
    .action(async (id: string, _opts, command: Command) => {
      const options = globals(command) as GlobalOptions & { json?: boolean };
      await withDatabase(options, async (database) => {
        const keyId = /^ff_([a-z2-9]{12})_/.exec(id)?.[1] ?? id;
        if (!(await database.findKey(keyId))) throw new NotFoundError(`no key ${keyId}`);
        const revoked = await database.revokeKey(keyId, new Date().toISOString());
        if (options.json) printJson({ id: keyId, revoked });
        else print(revoked ? `revoked ${keyId}\n` : `${keyId} was already revoked\n`);
      });
    });

  const users = cli.command('users').description('dashboard operators of a workspace (passwords stored as scrypt hashes)');
  users
    .command('create')
    .description('create an operator account (and the workspace if new); one email per deployment')
    .requiredOption('--email <email>', 'sign-in email')
    .option('--password <password>', `at least ${MIN_PASSWORD_LENGTH} characters (default: FANFLOW_PASSWORD)`)
    .option('--role <role>', 'owner, admin (act and change the program) or analyst (read only)', 'analyst')
    .option('--json', 'print JSON')
    .action(async (_opts, command: Command) => {
      const options = globals(command) as GlobalOptions & { email: string; password?: string; role: string; json?: boolean };
      const password = options.password ?? process.env.FANFLOW_PASSWORD;
      if (password === undefined) throw new UsageError('--password (or FANFLOW_PASSWORD) is required');
      const role = parseRole(options.role);
      await withDatabase(options, async (database) => {
        const created = await createUser(database, { workspace: options.workspace, email: options.email, password, role }, new Date());
        if (options.json) printJson(created);
        else print(`created ${created.email} (${created.role}) in workspace ${created.workspace}\n`);
      });
    });
  users
    .command('list')
    .description('list operators (all workspaces unless --workspace is given)')
    .option('--json', 'print JSON')
    .action(async (_opts, command: Command) => {
      const options = globals(command) as GlobalOptions & { json?: boolean };
      await withDatabase(options, async (database) => {
        const named = command.getOptionValueSourceWithGlobals('workspace') !== 'default';
        const listed = (await database.listUsers(named ? options.workspace : undefined)).map(describeUser);
        if (options.json) printJson({ users: listed });
        else print(listed.length === 0 ? 'no users\n' : `${listed.map((u) => `${u.email.padEnd(32)} ${u.workspace.padEnd(12)} ${u.role.padEnd(8)} ${u.createdAt}${u.disabledAt ? `  disabled ${u.disabledAt}` : ''}`).join('\n')}\n`);
      });
    });
  users
    .command('disable')
    .description('disable an operator: sessions end at once, sign-in is refused')
    .argument('<email>', 'the operator')
    .option('--json', 'print JSON')
    .action(async (email: string, _opts, command: Command) => {
      const options = globals(command) as GlobalOptions & { json?: boolean };
      await withDatabase(options, async (database) => {
        if (!(await database.findUserByEmail(normalizeEmail(email)))) throw new NotFoundError(`no user ${email}`);
        const disabled = await database.disableUser(normalizeEmail(email), new Date().toISOString());
        if (options.json) printJson({ email: normalizeEmail(email), disabled });
        else print(disabled ? `disabled ${normalizeEmail(email)}\n` : `${normalizeEmail(email)} was already disabled\n`);
      });
    });
  users
    .command('password')
    .description("set an operator's password (sessions end)")
    .argument('<email>', 'the operator')
    .option('--password <password>', 'the new password (default: FANFLOW_PASSWORD)')
    .action(async (email: string, _opts, command: Command) => {
      const options = globals(command) as GlobalOptions & { password?: string };
      const password = options.password ?? process.env.FANFLOW_PASSWORD;
      if (password === undefined) throw new UsageError('--password (or FANFLOW_PASSWORD) is required');
      await withDatabase(options, async (database) => {
        if (!(await resetPassword(database, email, password))) throw new NotFoundError(`no user ${email}`);
        print(`password of ${normalizeEmail(email)} set; its sessions ended\n`);
      });
    });

  const webhooks = cli.command('webhooks').description('subscriptions to derived events, delivered with signatures and retries by fanflow serve');
  webhooks
    .command('add')
    .description('subscribe a URL; prints the signing secret once')
    .requiredOption('--url <url>', 'where to POST')
    .requiredOption('--events <list>', `comma-separated: ${WEBHOOK_EVENT_TYPES.join(', ')}`)
    .option('--json', 'print JSON')
    .action(async (_opts, command: Command) => {
      const options = globals(command) as GlobalOptions & { url: string; events: string; json?: boolean };
      const types = parseEventTypes(options.events);
      await withDatabase(options, async (database) => {
        const subscription = await addSubscription(database, checkWorkspaceName(options.workspace), options.url, types, new Date());
        if (options.json) printJson({ ...describeSubscription(subscription), secret: subscription.secret });
        else print(`${subscription.id} → ${subscription.url} (${types.join(', ')})\nsecret ${subscription.secret} (shown once; it signs the Fanflow-Signature header)\n`);
      });
    });
  webhooks
    .command('list')
    .description("the workspace's subscriptions")
    .option('--json', 'print JSON')
    .action(async (_opts, command: Command) => {
      const options = globals(command) as GlobalOptions & { json?: boolean };
      await withDatabase(options, async (database) => {
        const listed = (await database.listWebhooks(checkWorkspaceName(options.workspace))).map(describeSubscription);
        if (options.json) printJson({ items: listed });
        else print(listed.length === 0 ? 'no subscriptions\n' : `${listed.map((w) => `${w.id}  ${w.url}  ${w.types.join(',')}  ${w.createdAt}`).join('\n')}\n`);
      });
    });
  webhooks
    .command('remove')
    .description('remove a subscription (its pending deliveries are dropped)')
    .argument('<id>', 'subscription id')
    .action(async (id: string, _opts, command: Command) => {
      const options = globals(command);
      await withDatabase(options, async (database) => {
        if (!(await database.removeWebhook(checkWorkspaceName(options.workspace), id))) throw new NotFoundError(`no subscription ${id} in workspace ${options.workspace}`);
        print(`removed ${id}\n`);
      });
    });
  webhooks
    .command('dead-letters')
    .description('deliveries that failed every attempt')
    .option('--json', 'print JSON')
    .action(async (_opts, command: Command) => {
      const options = globals(command) as GlobalOptions & { json?: boolean };
      await withDatabase(options, async (database) => {
        const items = (await database.deadLetters(checkWorkspaceName(options.workspace))).map(describeDelivery);
        if (options.json) printJson({ items });
        else print(items.length === 0 ? 'no dead letters\n' : `${items.map((d) => `${d.seq}  ${d.type}  ${d.url}  ${d.attempts} attempts  ${d.lastError ?? ''}`).join('\n')}\n`);
      });
    });
  webhooks
    .command('retry')
    .description('deliver a dead letter again')
    .argument('<seq>', 'the dead letter number')
    .action(async (seq: string, _opts, command: Command) => {
      const options = globals(command);
      if (!/^\d+$/.test(seq)) throw new UsageError(`${seq}: a dead letter number`);
      await withDatabase(options, async (database) => {
        if (!(await database.retryDelivery(checkWorkspaceName(options.workspace), Number(seq), Date.now()))) throw new NotFoundError(`no dead letter ${seq} in workspace ${options.workspace}`);
        print(`dead letter ${seq} queued again\n`);
      });
    });
  webhooks
    .command('deliver')
    .description('one delivery pass now (what fanflow serve does continuously)')
    .option('--json', 'print JSON')
    .action(async (_opts, command: Command) => {
      const options = globals(command) as GlobalOptions & { json?: boolean };
      await withDatabase(options, async (database) => {
        const pass = await deliverDue({ database });
        if (options.json) printJson(pass);
        else print(`${pass.attempted} attempted, ${pass.delivered} delivered, ${pass.dead} now dead letters\n`);
      });
    });

  const referral = cli.command('referral').description('referral codes, trees, cash and the fraud review (PRODUCT §5)');
  referral
    .command('show')
    .description("a fan's code, link and poster text, referrer, referees (depth ≤ 3) and referral cash")
    .argument('<fan>', 'the fan external id')
    .option('--json', 'print JSON')
    .action(async (fan: string, _opts, command: Command) => {
      const options = globals(command);
      const view = await withWorkspace(options, false, (workspace) => referralShow(workspace, fan, parseAsOf(options.asOf), cliSync(workspace)));
      show(options, view, renderReferral);
    });
  referral
    .command('poster')
    .description("the QR code of a fan's referral link, as PNG or SVG, for the share poster")
    .argument('<fan>', 'the fan external id')
    .requiredOption('--out <file>', 'the image file to write (.png or .svg)')
    .action(async (fan: string, opts: { out: string }, command: Command) => {
      const options = globals(command);
      const view = await withWorkspace(options, false, (workspace) => referralShow(workspace, fan, parseAsOf(options.asOf), cliSync(workspace)));
      const { writeQrFile } = await import('../app/qr.js');
      await writeQrFile(opts.out, view.link);
      print(`wrote ${opts.out}: QR code of ${view.link}\n${view.poster}\n`);
    });
  referral
    .command('review')
    .description('referrals held as suspect, with their evidence and the cash waiting')
    .option('--json', 'print JSON')
    .action(async (_opts, command: Command) => {
      const options = globals(command);
      const items = await withWorkspace(options, false, (workspace) => reviewQueue(workspace, cliSync(workspace)));
      show(options, items, renderReviewQueue);
    });
  referral
    .command('leaderboard')
    .description('referrers by qualified referrals, all time or in a month')
    .option('--month <YYYY-MM>', 'one calendar month (default: all time)')
    .option('--limit <n>', 'how many', '20')
    .option('--json', 'print JSON')
    .action(async (opts: { month?: string; limit: string }, command: Command) => {
      const options = globals(command);
      if (opts.month !== undefined && !parseMonthKey(opts.month)) throw new UsageError(`--month must be YYYY-MM, got ${opts.month}`);
      const limit = Number(opts.limit);
      if (!(Number.isInteger(limit) && limit > 0)) throw new UsageError('--limit must be a positive integer');
      const board = await withWorkspace(options, false, (workspace) => leaderboard(workspace, opts.month ?? null, limit, cliSync(workspace)));
      show(options, board, renderLeaderboard);
    });
  referral
    .command('campaigns')
    .description("task fission campaigns (bring N new followers between two dates): participants, completions, rewards")
    .option('--json', 'print JSON')
    .action(async (_opts, command: Command) => {
      const options = globals(command);
      const report = await withWorkspace(options, false, (workspace) => campaignReport(workspace, parseAsOf(options.asOf), cliSync(workspace)));
      show(options, report, renderCampaigns);
    });
  referral
    .command('analytics')
    .description('fission analytics: K-factor per month and per cohort, generations, programme cost against referred revenue')
    .option('--json', 'print JSON')
    .action(async (_opts, command: Command) => {
      const options = globals(command);
      const analytics = await withWorkspace(options, false, (workspace) => fissionAnalytics(workspace, cliSync(workspace)));
      show(options, analytics, renderAnalytics);
    });
  referral
    .command('compliance')
    .description('depth paid and used, the largest trees and downlines, warnings near the pyramid-scheme markers (≥ 3 levels and ≥ 30 people)')
    .option('--json', 'print JSON')
    .action(async (_opts, command: Command) => {
      const options = globals(command);
      const report = await withWorkspace(options, false, (workspace) => complianceReport(workspace, cliSync(workspace)));
      show(options, report, renderCompliance);
    });
  for (const decision of ['release', 'void'] as const) {
    referral
      .command(decision)
      .description(decision === 'release' ? 'pay a held referral: its cash becomes available, the coupon is issued' : 'void a held referral: its cash goes back to the programme')
      .argument('<referee>', 'the referred fan whose referral is under review')
      .option('--json', 'print JSON')
      .action(async (referee: string, _opts, command: Command) => {
        const options = globals(command);
        const result = await withWorkspace(options, false, (workspace) => resolveReview(workspace, referee, decision, Date.now(), 'cli', cliSync(workspace)));
        if (options.json) printJson(result);
        else print(`${decision === 'release' ? 'released' : 'voided'} the referral of ${referee} (event ${result.eventId})\n`);
      });
  }

  cli
    .command('redeem')
    .description('redeem a catalog item for points, once per request id (PRODUCT §3.2)')
    .argument('<fan>', 'the fan external id')
    .argument('<item>', 'the catalog item id, e.g. coupon-20')
    .option('--request-id <id>', 'idempotency key: the same id again returns the first outcome (default: a new one)')
    .option('--json', 'print JSON')
    .action(async (fan: string, item: string, opts: { requestId?: string }, command: Command) => {
      const options = globals(command);
      const requestId = opts.requestId ?? randomUUID();
      const outcome = await withWorkspace(options, false, (workspace) => redeem(workspace, { requestId, fan, item }, Date.now(), cliSync(workspace)));
      if (options.json) printJson(outcome);
      else print(renderRedemption(outcome));
      if (outcome.status === 'refused') process.exitCode = 1;
    });

  const payouts = cli.command('payouts').description('pay out available referral cash');
  payouts
    .command('run')
    .description("pay every fan's available cash as of --as-of (default now); writes the payout file")
    .requiredOption('--id <payoutId>', 'the run id, e.g. 2026-10 (running it again pays nothing twice)')
    .option('--out <file>', 'the payout file (CSV)')
    .option('--json', 'print JSON')
    .action(async (opts: { id: string; out?: string }, command: Command) => {
      const options = globals(command);
      const run = await withWorkspace(options, false, (workspace) => runPayout(workspace, opts.id, parseAsOf(options.asOf)));
      if (opts.out) writeFileSync(opts.out, payoutCsv(run));
      if (options.json) printJson(run);
      else print(renderPayout(run, opts.out ?? null, messages(resolveLang(options.lang, process.env))));
    });
  payouts
    .command('list')
    .description('payout runs made')
    .option('--json', 'print JSON')
    .action(async (_opts, command: Command) => {
      const options = globals(command);
      const runs = await withWorkspace(options, false, (workspace) => listPayouts(workspace, cliSync(workspace)));
      if (options.json) printJson(runs);
      else print(runs.length === 0 ? 'no payout run yet\n' : `${table(['payout', 'at', 'fans', 'total'], runs.map((run) => [run.payoutId, run.at, run.fans, run.total.toFixed(2)]), false)}\n`);
    });

  const ledger = cli.command('ledger').description('the double-entry ledger of points, cash and coupons');
  ledger
    .command('verify')
    .description('check that postings sum to zero per asset, no account is negative where forbidden, and fan balances equal their postings')
    .option('--json', 'print JSON')
    .action(async (_opts, command: Command) => {
      const options = globals(command);
      const check = await withWorkspace(options, false, (workspace) => ledgerVerify(workspace, cliSync(workspace)));
      show(options, check, renderLedgerCheck);
      if (!check.ok) process.exitCode = 1;
    });
  ledger
    .command('audit')
    .description("why a fan has its balances: every posting with its rule and the event that caused it")
    .argument('<fan>', 'the fan external id')
    .addOption(new Option('--asset <asset>', 'one asset only').choices(['points', 'cash', 'coupon']))
    .option('--json', 'print JSON')
    .action(async (fan: string, opts: { asset?: string }, command: Command) => {
      const options = globals(command);
      const audit = await withWorkspace(options, false, (workspace) => ledgerAudit(workspace, fan, opts.asset ?? null, cliSync(workspace)));
      show(options, audit, renderAudit);
    });

  cli
    .command('demo')
    .description('generate a realistic synthetic community, import it and show its health')
    .option('--fans <n>', 'number of fans', String(DEFAULT_GENERATE.fans))
    .option('--months <n>', 'number of months', String(DEFAULT_GENERATE.months))
    .option('--seed <seed>', 'random seed', DEFAULT_GENERATE.seed)
    .option('--start <instant>', 'first instant of the period', DEFAULT_GENERATE.start)
    .option('--out <file>', 'only write the generated NDJSON here (no import)')
    .option('--labels <file>', 'zombie ground-truth labels CSV (default: <out>.labels.csv)')
    .option('--json', 'print the report as JSON')
    .option('--serve', 'then serve the dashboard on the demo community (an owner account is set up and printed)')
    .option('--port <n>', 'port for --serve', '8080')
    .option('--host <host>', 'interface for --serve', '127.0.0.1')
    .action((_opts, command: Command) => runDemo(globals(command) as DemoOptions));
  return cli;
}

interface DemoOptions extends GlobalOptions {
  serve?: boolean;
  port: string;
  host: string;
  fans: string;
  months: string;
  seed: string;
  start: string;
  out?: string;
  labels?: string;
}

async function runDemo(options: DemoOptions): Promise<void> {
  const fans = Number(options.fans);
  const months = Number(options.months);
  if (!Number.isInteger(fans) || fans < 10) throw new UsageError('--fans must be an integer ≥ 10');
  if (!Number.isInteger(months) || months < 1 || months > 120) throw new UsageError('--months must be an integer 1–120');
  if (typeof parseTimestamp(options.start) === 'string') throw new UsageError(`--start ${options.start}: not an RFC 3339 instant`);
  const started = Date.now();
  const community = generateCommunity({ ...DEFAULT_GENERATE, fans, months, seed: options.seed, start: options.start });
  const file = options.out ?? join(dirname(resolve(options.db)), 'fanflow-demo.ndjson');
  writeFileSync(file, community.lines.join('\n') + '\n');
  const labels = options.labels ?? `${file}.labels.csv`;
  writeFileSync(labels, 'fan,zombie,burst\n' + community.labels.map((l) => `${l.fan},${l.zombie},${l.burst ?? ''}`).join('\n') + '\n');
  if (options.out) {
    if (!options.json) process.stderr.write(`wrote ${community.lines.length} events to ${file} and labels to ${labels}\n`);
    else printJson({ events: community.lines.length, file, labels });
    return;
  }
  const asOf = options.asOf ? parseAsOf(options.asOf) : community.end;
  const m = messages(resolveLang(options.lang, process.env));
  const report = await withWorkspace(options, true, async (workspace) => {
    const summary = await importFile(workspace, file, { progress: progressBar(showProgress()) });
    if (!options.json) process.stderr.write(summaryLine(file, summary));
    const month = workspace.engine.calendar.previousMonthKey(workspace.engine.calendar.monthKey(asOf));
    return queryReport(workspace, month, asOf);
  });
  if (options.json) printJson(report);
  else {
    print(renderReport(report, m, false));
    print(`\n${community.lines.length} events, ${fans} fans, ${((Date.now() - started) / 1000).toFixed(1)} s · database ${options.db} · try: fanflow fan ${report.actions.closestToCore[0] ?? report.actions.eligibleForTop[0] ?? 'u000001'} --as-of ${report.asOf}\n`);
  }
  if (options.serve) await serveDemo(options);
}

/** The demo's operator: an owner of the demo workspace with a fresh password each run. */
const DEMO_EMAIL = 'demo@fanflow.local';

async function serveDemo(options: DemoOptions): Promise<void> {
  const password = randomBytes(9).toString('base64url');
  await withDatabase(options, async (database) => {
    if (!(await resetPassword(database, DEMO_EMAIL, password))) await createUser(database, { workspace: options.workspace, email: DEMO_EMAIL, password, role: 'owner' }, new Date());
  });
  await serveUntilStopped({ ...options, rateLimit: '2000' }, (url) => {
    process.stderr.write(`\nopen ${url}/ and sign in as ${DEMO_EMAIL} with password ${password} (Ctrl-C stops)\n`);
  });
}

/** With FANFLOW_STATS=1, the time spent inside the process and the peak RSS go to stderr as JSON. */
function reportStats(started: bigint): void {
  if (process.env.FANFLOW_STATS !== '1') return;
  const workMs = Number(process.hrtime.bigint() - started) / 1e6;
  process.stderr.write(`FANFLOW_STATS ${JSON.stringify({ workMs, maxRssMb: process.resourceUsage().maxRSS / 1024 })}\n`);
}

export async function main(argv: string[]): Promise<number> {
  const started = process.hrtime.bigint();
  try {
    return await run(argv);
  } finally {
    reportStats(started);
  }
}

async function run(argv: string[]): Promise<number> {
  const cli = buildCli();
  try {
    await cli.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (error) {
    if (error instanceof CommanderError) {
      if (error.code === 'commander.helpDisplayed' || error.code === 'commander.version' || error.exitCode === 0) return 0;
      return 2;
    }
    if (error instanceof UsageError || error instanceof NotFoundError) {
      process.stderr.write(`fanflow: ${error.message}\n`);
      return 2;
    }
    process.stderr.write(`fanflow: ${(error as Error).stack ?? String(error)}\n`);
    return 1;
  }
}
