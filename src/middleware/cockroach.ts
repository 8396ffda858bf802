import {
  chmod,
  copyFile,
  cp,
  mkdir,
  readFile,
  readdir,
  rename,
  rm,
  writeFile,
} from 'node:fs/promises';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { execa, type Result } from 'execa';
import { z } from 'zod';
import { archiveTimestamp, type NodeLayout } from '../config/layout.js';
import { ClusterGuardError } from '../contracts/errors.js';
import { describeZodError } from '../contracts/validation.js';
import {
  listData,
  operationOptions,
  replaceFolder,
  runningPid,
  startProcess,
  stopProcess,
  wipeFolder,
  withOperations,
  type AdapterDeps,
  type ClusterView,
  type DataResult,
  type MiddlewareAdapter,
  type MiddlewareOperation,
  type OperationOptions,
  type ProcessSpec,
  type ServerStatus,
} from './kit/index.js';

// ---------------------------------------------------------------------------------------------
// Options (seed 001 §5–6: CockroachConfiguration.clusterOptions and databases)

/** CockroachDB's own default, and what decommissioning must preserve. */
export const REPLICATION_FACTOR = 3;

// Unquoted SQL identifiers fold to lower case; allowing only these avoids a database that the
// operator typed as `UAA` existing as `uaa` under another spelling.
const sqlIdentifier = z
  .string()
  .regex(/^[a-z_][a-z0-9_]{0,62}$/, 'lower-case letters, digits and _, not starting with a digit');
// Values of --cache / --max-sql-memory: `256MiB`, `1GB`, `.25`, `25%`.
const memorySize = z
  .string()
  .regex(/^(\d+(\.\d+)?|\.\d+)(%|[KMGT]i?B)?$/i, 'a size such as 256MiB, 1GB, .25 or 25%');
const port = z.number().int().min(1).max(65535);

export const cockroachDatabaseSchema = z.object({
  name: sqlIdentifier,
  username: sqlIdentifier,
  password: z.string().min(1),
});
export type CockroachDatabase = z.infer<typeof cockroachDatabaseSchema>;

export const cockroachOptionsSchema = z
  .object({
    sqlPort: port.default(26257),
    httpPort: port.default(8080),
    // Bounded by default: the appliance shares its memory with ZooKeeper, Kafka and the
    // controller, so CockroachDB's "25 % of RAM each" recommendation does not apply.
    cache: memorySize.default('256MiB'),
    maxSqlMemory: memorySize.default('256MiB'),
    insecure: z.boolean().default(false),
    databases: z.array(cockroachDatabaseSchema).default([]),
  })
  .superRefine((o, ctx) => {
    if (o.sqlPort === o.httpPort) {
      ctx.addIssue({ code: 'custom', message: `sqlPort and httpPort are both ${o.sqlPort}` });
    }
    const names = o.databases.map((d) => d.name);
    for (const dup of names.filter((n, i) => names.indexOf(n) !== i)) {
      ctx.addIssue({ code: 'custom', message: `database ${dup} is configured twice` });
    }
  });
export type CockroachOptions = z.infer<typeof cockroachOptionsSchema>;

/** Validates the agent's CockroachDB options; the message names the field, never a password. */
export function parseCockroachOptions(
  options: Partial<CockroachOptions> | undefined,
): CockroachOptions {
  const parsed = cockroachOptionsSchema.safeParse(options ?? {});
  if (!parsed.success) {
    throw new ClusterGuardError(
      'InvalidConfig',
      `invalid CockroachDB options: ${describeZodError(parsed.error)}`,
    );
  }
  return parsed.data;
}

// ---------------------------------------------------------------------------------------------
// Pure helpers

export interface CockroachStartSpec {
  address: string;
  sqlPort: number;
  httpPort: number;
  insecure: boolean;
  certsDir: string;
  storeDir: string;
  logDir: string;
  externalIoDir: string;
  /** Member addresses; every member's SQL port is `sqlPort`. */
  join: readonly string[];
  cache: string;
  maxSqlMemory: string;
}

/**
 * `cockroach start …` for a supervised foreground server (no --background: the supervisor
 * detaches it and owns its pid file). Every listener is bound to the node's own address so that
 * several nodes can share a machine.
 */
export function cockroachStartArgs(spec: CockroachStartSpec): string[] {
  for (const folder of [spec.storeDir, spec.certsDir, spec.logDir, spec.externalIoDir]) {
    // --store takes a comma-separated list of attributes.
    if (folder.includes(','))
      throw new ClusterGuardError(
        'InvalidConfig',
        `CockroachDB folders cannot contain commas: ${folder}`,
      );
  }
  if (spec.join.length === 0) {
    throw new ClusterGuardError(
      'InvalidInput',
      'cockroach start needs at least one --join address',
    );
  }
  return [
    'start',
    spec.insecure ? '--insecure' : `--certs-dir=${spec.certsDir}`,
    `--store=path=${spec.storeDir}`,
    `--listen-addr=${spec.address}:${spec.sqlPort}`,
    `--http-addr=${spec.address}:${spec.httpPort}`,
    `--join=${spec.join.map((n) => `${n}:${spec.sqlPort}`).join(',')}`,
    `--cache=${spec.cache}`,
    `--max-sql-memory=${spec.maxSqlMemory}`,
    // nodelocal:// URLs of BACKUP and RESTORE resolve here, and nowhere else.
    `--external-io-dir=${spec.externalIoDir}`,
    // Seed 001 §1: logs live in node-data/cockroach/log, not inside the store that join wipes.
    `--log-dir=${spec.logDir}`,
  ];
}

/** One row of `cockroach node status --format=json [--decommission]` (seed 001 §6 CockroachCluster). */
export interface CockroachNodeStatus {
  id: number;
  /** `host:port` the node advertises; missing for nodes that left gossip long ago. */
  address?: string;
  host?: string;
  port?: number;
  sqlAddress?: string;
  /** The build tag, e.g. `v25.2.0` (the seed's `version`). */
  build?: string;
  startedAt?: string;
  updatedAt?: string;
  locality?: string;
  isAvailable?: boolean;
  isLive: boolean;
  /** With --decommission: replicas the node still holds, per gossip. */
  replicas?: number;
  isDecommissioning?: boolean;
  /** With --decommission: `active`, `decommissioning` or `decommissioned`. */
  membership?: string;
  isDraining?: boolean;
}

const boolString = z.enum(['true', 'false']).transform((v) => v === 'true');
const countString = z
  .string()
  .regex(/^\d+$/)
  .transform((v) => Number(v));
// The CLI prints every value as a string (clisqlexec's JSON reporter), SQL NULL as "NULL".
const statusRowSchema = z.object({
  id: countString,
  address: z.string().optional(),
  sql_address: z.string().optional(),
  build: z.string().optional(),
  started_at: z.string().optional(),
  updated_at: z.string().optional(),
  locality: z.string().optional(),
  is_available: boolString.optional(),
  is_live: boolString.optional(),
  gossiped_replicas: countString.optional(),
  is_decommissioning: boolString.optional(),
  membership: z.string().optional(),
  is_draining: boolString.optional(),
});
const statusOutputSchema = z.array(z.record(z.string(), z.string()));

function splitHostPort(address: string): { host: string; port?: number } {
  const m = /^\[?(.*?)\]?:(\d+)$/.exec(address);
  return m?.[1] !== undefined ? { host: m[1], port: Number(m[2]) } : { host: address };
}

/** Parses the stdout of `cockroach node status --format=json [--decommission]`. */
export function parseNodeStatus(stdout: string): CockroachNodeStatus[] {
  let json: unknown;
  try {
    json = JSON.parse(stdout);
  } catch {
    throw new ClusterGuardError(
      'MiddlewareFailure',
      `cockroach node status printed something other than JSON: ${stdout.slice(0, 200)}`,
    );
  }
  const rows = statusOutputSchema.safeParse(json);
  if (!rows.success) {
    throw new ClusterGuardError(
      'MiddlewareFailure',
      `cockroach node status printed JSON that is not an array of string-valued rows: ${rows.error.message}`,
    );
  }
  return rows.data.map((raw) => {
    const present = Object.fromEntries(Object.entries(raw).filter(([, v]) => v !== 'NULL'));
    const row = statusRowSchema.safeParse(present);
    if (!row.success) {
      throw new ClusterGuardError(
        'MiddlewareFailure',
        `unexpected row in cockroach node status: ${JSON.stringify(raw)}: ${row.error.message}`,
      );
    }
    const r = row.data;
    const hp = r.address ? splitHostPort(r.address) : undefined;
    const status: CockroachNodeStatus = { id: r.id, isLive: r.is_live ?? false };
    const optional: Partial<CockroachNodeStatus> = {
      address: r.address,
      host: hp?.host,
      port: hp?.port,
      sqlAddress: r.sql_address,
      build: r.build,
      startedAt: r.started_at,
      updatedAt: r.updated_at,
      locality: r.locality,
      isAvailable: r.is_available,
      replicas: r.gossiped_replicas,
      isDecommissioning: r.is_decommissioning,
      membership: r.membership,
      isDraining: r.is_draining,
    };
    for (const [k, v] of Object.entries(optional)) {
      if (v !== undefined) Object.assign(status, { [k]: v });
    }
    return status;
  });
}

/** What CockroachDB's decommission pre-flight check printed when it refused. */
export interface DecommissionRefusal {
  blocked: { nodeId: number; replicas: number; error: string }[];
  /** The CLI reports at most five errors and then says there were more. */
  more: boolean;
}

/**
 * Recognises the pre-flight refusal of `cockroach node decommission` (pkg/cli/node.go:
 * `ranges blocking decommission detected`, `nN has R replicas blocked with error: "…"`,
 * `ERROR: Cannot decommission nodes.`); undefined for any other output.
 */
export function parseDecommissionRefusal(output: string): DecommissionRefusal | undefined {
  if (!/ranges blocking decommission detected|Cannot decommission nodes/.test(output)) {
    return undefined;
  }
  const blocked = [
    ...output.matchAll(/^n(\d+) has (\d+) replicas blocked with error: "(.*)"\s*$/gm),
  ].map((m) => ({ nodeId: Number(m[1]), replicas: Number(m[2]), error: m[3] ?? '' }));
  return { blocked, more: /more blocking errors detected/.test(output) };
}

/** One sentence for an operator, naming nodes by id and address. */
export function describeDecommissionRefusal(
  refusal: DecommissionRefusal,
  hostsById: ReadonlyMap<number, string> = new Map(),
): string {
  if (refusal.blocked.length === 0)
    return "CockroachDB's pre-flight check refused the decommission";
  const parts = refusal.blocked.map((b) => {
    const host = hostsById.get(b.nodeId);
    return `n${b.nodeId}${host ? ` (${host})` : ''} has ${b.replicas} replicas that cannot move: ${b.error}`;
  });
  return `CockroachDB's pre-flight check refused: ${parts.join('; ')}${refusal.more ? '; and more' : ''}`;
}

export interface DecommissionProgress {
  nodeId: number;
  replicas: number;
  membership: string;
  isLive?: boolean;
}

/**
 * The rows of the last status table that `cockroach node decommission` printed (tsv, csv or the
 * ASCII table, depending on --format and whether stdout is a terminal).
 */
export function parseDecommissionProgress(output: string): DecommissionProgress[] {
  const lines = output.split('\n');
  let last: DecommissionProgress[] = [];
  for (let i = 0; i < lines.length; i++) {
    const header = lines[i] ?? '';
    if (!/\breplicas\b/.test(header) || !/\bmembership\b/.test(header)) continue;
    const sep = header.includes('\t') ? '\t' : header.includes('|') ? '|' : ',';
    const columns = header.split(sep).map((c) => c.trim());
    const rows: DecommissionProgress[] = [];
    for (let j = i + 1; j < lines.length; j++) {
      const line = lines[j] ?? '';
      if (/^[-+\s]+$/.test(line) && line.includes('-')) continue;
      const cells = line.split(sep).map((c) => c.trim());
      if (cells.length !== columns.length || !/^\d+$/.test(cells[0] ?? '')) break;
      const get = (name: string) => cells[columns.indexOf(name)];
      rows.push({
        nodeId: Number(get('id')),
        replicas: Number(get('replicas')),
        membership: get('membership') ?? 'unknown',
        isLive: get('is_live') === undefined ? undefined : get('is_live') === 'true',
      });
    }
    if (rows.length) last = rows;
  }
  return last;
}

/** A double-quoted SQL identifier. */
export const quoteIdent = (name: string) => `"${name.replace(/"/g, '""')}"`;
/** A single-quoted SQL string literal. */
export const quoteLiteral = (value: string) => `'${value.replace(/'/g, "''")}'`;

/**
 * The statements that create the configured databases and users and (re)set the passwords.
 * Contains the passwords: send it on stdin, never log it.
 */
export function provisioningSql(databases: readonly CockroachDatabase[]): string {
  return databases
    .flatMap((d) => [
      `CREATE DATABASE IF NOT EXISTS ${quoteIdent(d.name)};`,
      `CREATE USER IF NOT EXISTS ${quoteIdent(d.username)};`,
      `ALTER USER ${quoteIdent(d.username)} WITH PASSWORD ${quoteLiteral(d.password)};`,
      `GRANT ALL ON DATABASE ${quoteIdent(d.name)} TO ${quoteIdent(d.username)};`,
    ])
    .join('\n');
}

/** Replaces every secret (as typed, and as quoted in SQL) with `***`. */
export function redact(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const secret of secrets) {
    if (!secret) continue;
    for (const form of [quoteLiteral(secret).slice(1, -1), secret])
      out = out.split(form).join('***');
  }
  return out;
}

/** Minimal RFC 4180 reader for `--format=csv` output. */
export function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let cell = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        cell += '"';
        i++;
      } else if (c === '"') quoted = false;
      else cell += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') {
      row.push(cell);
      cell = '';
    } else if (c === '\n') {
      row.push(cell);
      rows.push(row);
      row = [];
      cell = '';
    } else if (c !== '\r') cell += c;
  }
  if (cell || row.length) rows.push([...row, cell]);
  return rows;
}

export const nodelocalUri = (nodeId: number, folder: string) => `nodelocal://${nodeId}/${folder}`;

// ---------------------------------------------------------------------------------------------
// The adapter

/** Everything a CockroachDB node keeps on disk, under the node's root (seed 001 §1). */
export function cockroachPaths(layout: NodeLayout) {
  const certs = layout.nodeConfigFolder('cockroach');
  const configRoot = path.dirname(certs);
  const dataRoot = path.dirname(layout.nodeDataFolder('cockroach'));
  return {
    /** node-config/cockroach/certs: what this node runs with (--certs-dir). */
    certs,
    /**
     * node-config/cockroach/ca: the cluster's CA, on the node that ran createCluster. Never part
     * of cluster-config/<address>, so it is never distributed.
     */
    ca: path.join(configRoot, 'ca'),
    /** The members this node last started with, for a startServer() without a ClusterView. */
    membership: path.join(configRoot, 'membership.json'),
    data: layout.nodeDataFolder('cockroach'),
    log: layout.nodeLogFolder('cockroach'),
    /** --external-io-dir: a working folder is moved in here for the duration of a BACKUP/RESTORE. */
    externalIo: path.join(dataRoot, 'external-io'),
    pidFile: path.join(dataRoot, 'cockroach.pid'),
    consoleLog: path.join(layout.nodeLogFolder('cockroach'), 'cockroach-console.log'),
  };
}

/** The seed's MiddlewareService for CockroachDB, plus what runbooks need beyond it. */
export interface CockroachAdapter extends MiddlewareAdapter {
  readonly name: 'cockroach';
  createCluster(cluster: ClusterView): Promise<void>;
  joinCluster(cluster: ClusterView): Promise<void>;
  rejoinCluster(cluster: ClusterView): Promise<void>;
  decommissionCluster(cluster: ClusterView, leaving: string[]): Promise<void>;
  exportData(): Promise<DataResult>;
  importData(): Promise<DataResult>;
  backupData(): Promise<DataResult>;
  restoreData(): Promise<DataResult>;
  /** `cockroach node status --format=json [--decommission]`, asked of this node. */
  nodeStatus(options?: {
    decommission?: boolean;
    timeoutMs?: number;
  }): Promise<CockroachNodeStatus[]>;
  /**
   * The master's part of createCluster: the CA (created once, then reused) and, for every member,
   * `ca.crt`, `node.crt/key` and `client.root.crt/key` in `cluster-config/<address>/cockroach/certs`.
   */
  generateClusterConfig(cluster: ClusterView): Promise<void>;
  /** Installs `cluster-config/<self>/cockroach/certs` as this node's certificates. */
  applyClusterConfig(cluster: ClusterView): Promise<void>;
  /** Creates the configured databases and users and sets their passwords; idempotent. */
  provisionDatabases(): Promise<void>;
}

// A fatal start-up error (the CLI's `ERROR: …` / `* ERROR: …` and `Failed running "start"`), a
// Go panic, or a decommissioned node turned away by the cluster.
const FAIL_FILTER = String.raw`^(\* )?ERROR: |^Failed running "start"|^panic: |permanently removed from the cluster`;

const defaultOperationOptions: Partial<Record<MiddlewareOperation, OperationOptions>> = {
  startServer: { timeoutMs: 120_000, failFilter: FAIL_FILTER },
  createCluster: { timeoutMs: 180_000, failFilter: FAIL_FILTER },
  joinCluster: { timeoutMs: 180_000, failFilter: FAIL_FILTER },
  rejoinCluster: { timeoutMs: 180_000, failFilter: FAIL_FILTER },
  /** SIGTERM makes CockroachDB drain (leases, SQL sessions) before it exits; give it time. */
  stopServer: { timeoutMs: 60_000 },
  /** Per `node status` probe. */
  checkServer: { timeoutMs: 15_000 },
  /** Moving every replica off a node takes as long as the data is large. */
  decommissionCluster: { timeoutMs: 3_600_000 },
  exportData: { timeoutMs: 3_600_000 },
  importData: { timeoutMs: 3_600_000 },
  backupData: { timeoutMs: 3_600_000 },
  restoreData: { timeoutMs: 3_600_000 },
};

/**
 * How long the master waits for a restarted member of a multi-node cluster before it counts it
 * started: such a node cannot be live until a majority of its previous members is back, and they
 * start only after the master's createCluster returns.
 */
const SETTLE_MS = 3_000;
/** A readiness probe must not hang on a node that accepts connections but cannot answer. */
const PROBE_TIMEOUT_MS = 5_000;

type Readiness =
  /** `node status` lists this node live. */
  | { kind: 'live' }
  /** A new store on the master: `cockroach init` once it listens, then live. */
  | { kind: 'init' }
  /** Kept data in a multi-node cluster: live, or up for `ms` without a failure in its log. */
  | { kind: 'settle'; ms: number };

const membershipSchema = z.object({ nodes: z.array(z.string()).min(1) });

const firstLine = (text: string) => text.trim().split('\n')[0] ?? '';

function throttled(fn: ((detail: string) => void) | undefined, ms: number) {
  let last = 0;
  return (detail: string) => {
    const now = Date.now();
    if (fn && now - last >= ms) {
      last = now;
      fn(detail);
    }
  };
}

async function isEmptyFolder(folder: string): Promise<boolean> {
  try {
    return (await readdir(folder)).length === 0;
  } catch {
    return true;
  }
}

/** Moves a folder (replacing `to`); falls back to copying across file systems. */
async function moveFolder(from: string, to: string): Promise<void> {
  await rm(to, { recursive: true, force: true });
  await mkdir(path.dirname(to), { recursive: true });
  try {
    await rename(from, to);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw err;
    await cp(from, to, { recursive: true, verbatimSymlinks: true });
    await rm(from, { recursive: true, force: true });
  }
}

export function createCockroachAdapter(deps: AdapterDeps<CockroachOptions>): CockroachAdapter {
  const options = parseCockroachOptions(deps.options);
  const { address, layout, logger } = deps;
  const paths = cockroachPaths(layout);
  const bin = path.join(deps.binDir, 'cockroach');
  const self = `${address}:${options.sqlPort}`;
  const secrets = options.databases.map((d) => d.password);
  const opts = (op: MiddlewareOperation) =>
    operationOptions(defaultOperationOptions, deps.operationOptions, op);
  const progress = throttled(deps.onProgress, 1_000);
  // Offline appliances must not try to phone home.
  const env = { COCKROACH_SKIP_ENABLING_DIAGNOSTIC_REPORTING: 'true' };
  const connection = () => [
    `--host=${self}`,
    options.insecure ? '--insecure' : `--certs-dir=${paths.certs}`,
  ];

  const processSpec = (nodes: readonly string[]): ProcessSpec => ({
    name: `cockroach on ${address}`,
    command: bin,
    args: cockroachStartArgs({
      address,
      sqlPort: options.sqlPort,
      httpPort: options.httpPort,
      insecure: options.insecure,
      certsDir: paths.certs,
      storeDir: paths.data,
      logDir: paths.log,
      externalIoDir: paths.externalIo,
      join: nodes,
      cache: options.cache,
      maxSqlMemory: options.maxSqlMemory,
    }),
    env,
    cwd: path.dirname(paths.data),
    pidFile: paths.pidFile,
    logFile: paths.consoleLog,
    // The store path is unique per node, so a reused pid is never taken for this server.
    marker: `--store=path=${paths.data}`,
  });

  async function run(
    args: string[],
    { input, timeoutMs = 60_000 }: { input?: string; timeoutMs?: number } = {},
  ): Promise<Result> {
    const result = await execa(bin, args, {
      ...(input === undefined ? { stdin: 'ignore' as const } : { input }),
      timeout: timeoutMs,
      cancelSignal: deps.signal,
      reject: false,
      env,
    });
    if (result.failed && (result.code === 'ENOENT' || result.code === 'EACCES')) {
      throw new ClusterGuardError(
        'MissingBinary',
        `the CockroachDB binary ${bin} cannot be run (${result.code}); install it under the configured binary folder`,
      );
    }
    if (result.isCanceled) deps.signal?.throwIfAborted();
    return result;
  }

  function failure(what: string, result: Result): ClusterGuardError {
    const text =
      `${String(result.stderr)}\n${String(result.stdout)}`.trim() ||
      (result.shortMessage ?? 'no output');
    const reason = result.timedOut
      ? `no answer within ${Math.round(Number(result.durationMs) / 1000)} s`
      : redact(text, secrets);
    return new ClusterGuardError('MiddlewareFailure', `${what} failed on ${address}: ${reason}`);
  }

  async function checked(what: string, args: string[], o?: { input?: string; timeoutMs?: number }) {
    const result = await run(args, o);
    if (result.failed) throw failure(what, result);
    return String(result.stdout);
  }

  async function nodeStatus({
    decommission = false,
    timeoutMs = opts('checkServer').timeoutMs,
  }: { decommission?: boolean; timeoutMs?: number } = {}): Promise<CockroachNodeStatus[]> {
    const stdout = await checked(
      'cockroach node status',
      [
        'node',
        'status',
        '--format=json',
        ...(decommission ? ['--decommission'] : []),
        ...connection(),
      ],
      { timeoutMs },
    );
    return parseNodeStatus(stdout);
  }

  /** This node's row: a wiped node that joined again has a new id, its old one stays dead. */
  function findSelf(rows: CockroachNodeStatus[]): CockroachNodeStatus | undefined {
    const mine = rows.filter((r) => r.address === self || r.sqlAddress === self);
    return mine.sort((a, b) => Number(b.isLive) - Number(a.isLive) || b.id - a.id)[0];
  }

  /** Why the last readiness probe said no, for the message of a start that timed out. */
  let lastProbe = 'none yet';
  async function isLive(): Promise<boolean> {
    try {
      const rows = await nodeStatus({ timeoutMs: PROBE_TIMEOUT_MS });
      const me = findSelf(rows);
      const live = rows.filter((r) => r.isLive).length;
      lastProbe = me
        ? `n${me.id} is ${me.isLive ? '' : 'not '}live; ${live} of ${rows.length} nodes live`
        : `${self} is not among the ${rows.length} nodes of the cluster yet`;
      return me?.isLive ?? false;
    } catch (err) {
      if (err instanceof ClusterGuardError && err.type === 'MissingBinary') throw err;
      lastProbe = firstLine((err as Error).message.replace(/^.*? failed on [^:]+: /, ''));
      return false;
    }
  }

  async function localNodeId(): Promise<number> {
    const me = findSelf(await nodeStatus());
    if (!me) {
      throw new ClusterGuardError(
        'MiddlewareFailure',
        `cockroach node status on ${address} does not list ${self}; is this node a member?`,
      );
    }
    return me.id;
  }

  let lastInitError = '';
  async function tryInit(): Promise<boolean> {
    const result = await run(['init', ...connection()], { timeoutMs: PROBE_TIMEOUT_MS * 3 });
    const text = `${String(result.stderr)}\n${String(result.stdout)}`;
    if (!result.failed) {
      logger.info('cockroach: initialized a new cluster', { address });
      return true;
    }
    if (/already been initialized/.test(text)) return true;
    const error =
      firstLine(text.replace(/^\s*warning:.*$/gm, '')) || (result.shortMessage ?? 'no output');
    if (error !== lastInitError) {
      logger.warn('cockroach init not accepted yet', { address, error });
      lastInitError = error;
    }
    return false;
  }

  async function readMembership(): Promise<string[] | undefined> {
    try {
      return membershipSchema.parse(JSON.parse(await readFile(paths.membership, 'utf8'))).nodes;
    } catch {
      return undefined;
    }
  }

  async function writeMembership(nodes: readonly string[]): Promise<void> {
    await mkdir(path.dirname(paths.membership), { recursive: true });
    await writeFile(paths.membership, `${JSON.stringify({ nodes }, null, 2)}\n`);
  }

  async function checkServer(): Promise<ServerStatus> {
    const pid = await runningPid(processSpec([address]));
    if (!pid)
      return { running: false, healthy: false, detail: `cockroach is not running on ${address}` };
    try {
      const rows = await nodeStatus();
      const me = findSelf(rows);
      const live = rows.filter((r) => r.isLive).length;
      if (!me) {
        return {
          running: true,
          healthy: false,
          pid,
          detail: `running; ${self} is not a member yet`,
        };
      }
      return {
        running: true,
        healthy: me.isLive,
        pid,
        detail: `n${me.id} ${me.isLive ? 'live' : 'not live'}; ${live} of ${rows.length} nodes live; ${me.build ?? 'unknown build'}`,
      };
    } catch (err) {
      if (err instanceof ClusterGuardError && err.type === 'MissingBinary') throw err;
      return {
        running: true,
        healthy: false,
        pid,
        detail: `running, but cockroach node status does not answer: ${firstLine((err as Error).message)}`,
      };
    }
  }

  async function launch(
    op: MiddlewareOperation,
    nodes: readonly string[],
    readiness: Readiness,
  ): Promise<ServerStatus> {
    const o = opts(op);
    await Promise.all(
      [paths.log, paths.externalIo, path.dirname(paths.data)].map((f) =>
        mkdir(f, { recursive: true }),
      ),
    );
    const started = Date.now();
    let initialized = readiness.kind !== 'init';
    const ready = async () => {
      if (!initialized) {
        initialized = await tryInit();
        if (!initialized) return false;
      }
      if (await isLive()) return true;
      return readiness.kind === 'settle' && Date.now() - started >= readiness.ms;
    };
    lastProbe = 'none yet';
    try {
      await startProcess(processSpec(nodes), {
        timeoutMs: o.timeoutMs,
        successFilter: o.successFilter,
        failFilter: o.failFilter,
        ready,
        signal: deps.signal,
        onWait: (ms) =>
          progress(`${op}: waiting for cockroach on ${address} (${Math.round(ms / 1000)} s)`),
      });
    } catch (err) {
      if (err instanceof ClusterGuardError && /did not become ready/.test(err.message)) {
        // A member of a multi-node cluster is live only once a majority of its members runs.
        const reason = ` Last readiness check (cockroach node status): ${lastProbe}.`;
        const message = err.message.includes(' Log tail (')
          ? err.message.replace(' Log tail (', `${reason} Log tail (`)
          : `${err.message}${reason}`;
        throw new ClusterGuardError('MiddlewareFailure', message, { cause: err });
      }
      throw err;
    }
    return checkServer();
  }

  async function stopServer({ force }: { force?: boolean } = {}): Promise<void> {
    const { wasRunning } = await stopProcess(processSpec([address]), {
      graceMs: opts('stopServer').timeoutMs,
      force,
    });
    if (wasRunning) logger.info('cockroach stopped', { address, force: !!force });
  }

  function requireMember(cluster: ClusterView, op: string): void {
    if (!cluster.nodes.includes(address)) {
      throw new ClusterGuardError(
        'InvalidInput',
        `${op}: ${address} is not a member of ${cluster.nodes.join(', ')}`,
      );
    }
  }

  async function ensureCa(): Promise<string> {
    const caKey = path.join(paths.ca, 'ca.key');
    const caCrt = path.join(paths.ca, 'ca.crt');
    const exists = (f: string) =>
      readFile(f).then(
        () => true,
        () => false,
      );
    const [hasKey, hasCrt] = await Promise.all([exists(caKey), exists(caCrt)]);
    if (hasKey && hasCrt) return caKey;
    await mkdir(paths.ca, { recursive: true, mode: 0o700 });
    await checked('cockroach cert create-ca', [
      'cert',
      'create-ca',
      `--certs-dir=${paths.ca}`,
      `--ca-key=${caKey}`,
      ...(hasKey ? ['--allow-ca-key-reuse'] : []),
      ...(hasCrt ? ['--overwrite'] : []),
    ]);
    logger.info('cockroach: created the cluster CA', { address, folder: paths.ca });
    return caKey;
  }

  async function generateClusterConfig(cluster: ClusterView): Promise<void> {
    requireMember(cluster, 'generateClusterConfig');
    if (options.insecure) {
      for (const node of cluster.nodes)
        await wipeFolder(layout.clusterConfigFor(node, 'cockroach'));
      return;
    }
    const caKey = await ensureCa();
    for (const node of cluster.nodes) {
      const dir = layout.clusterConfigFor(node, 'cockroach');
      await wipeFolder(dir);
      await copyFile(path.join(paths.ca, 'ca.crt'), path.join(dir, 'ca.crt'));
      const signing = [`--certs-dir=${dir}`, `--ca-key=${caKey}`];
      await checked('cockroach cert create-node', [
        'cert',
        'create-node',
        node,
        'localhost',
        ...signing,
      ]);
      // The agent on every node runs `node status`, `sql`, `init` as root.
      await checked('cockroach cert create-client', ['cert', 'create-client', 'root', ...signing]);
    }
    logger.info('cockroach: certificates generated', { nodes: cluster.nodes });
  }

  async function applyClusterConfig(cluster: ClusterView): Promise<void> {
    requireMember(cluster, 'applyClusterConfig');
    const from = layout.clusterConfigFor(address, 'cockroach');
    if (options.insecure) {
      await wipeFolder(paths.certs);
    } else {
      const files = await readdir(from).catch(() => [] as string[]);
      const missing = [
        'ca.crt',
        'node.crt',
        'node.key',
        'client.root.crt',
        'client.root.key',
      ].filter((f) => !files.includes(f));
      if (missing.length) {
        throw new ClusterGuardError(
          'InvalidInput',
          `no complete CockroachDB certificates for ${address} in ${from} (missing ${missing.join(', ')}): ` +
            "generate them on the master (createCluster) and download this node's configuration first",
        );
      }
      await replaceFolder(from, paths.certs);
      // CockroachDB refuses key files that others can read, and archives do not keep modes.
      await chmod(paths.certs, 0o700);
      for (const f of await readdir(paths.certs)) {
        if (f.endsWith('.key')) await chmod(path.join(paths.certs, f), 0o600);
      }
    }
    await writeMembership(cluster.nodes);
  }

  async function sql(what: string, script: string, timeoutMs?: number): Promise<string> {
    return checked(what, ['sql', '--format=csv', ...connection()], { input: script, timeoutMs });
  }

  async function firstColumn(statement: string): Promise<Set<string>> {
    const rows = parseCsv(await sql(statement, statement));
    return new Set(rows.slice(1).map((r) => r[0] ?? ''));
  }

  /** `all`: create and (re)set every password. `missing`: only what does not exist yet. */
  async function provision(mode: 'all' | 'missing'): Promise<void> {
    let databases = options.databases;
    if (databases.length === 0) return;
    if (mode === 'missing') {
      const [dbs, users] = await Promise.all([
        firstColumn('SHOW DATABASES;'),
        firstColumn('SHOW USERS;'),
      ]);
      databases = databases.filter((d) => !dbs.has(d.name) || !users.has(d.username));
      if (databases.length === 0) return;
    }
    let attempt = 0;
    for (;;) {
      try {
        await sql('provisioning CockroachDB databases', provisioningSql(databases));
        break;
      } catch (err) {
        // Concurrent joins may provision at the same time; schema changes then retry.
        if (
          ++attempt >= 3 ||
          !(err instanceof ClusterGuardError) ||
          err.type !== 'MiddlewareFailure'
        )
          throw err;
        await new Promise((r) => setTimeout(r, 1_000 * attempt));
      }
    }
    logger.info('cockroach: databases provisioned', {
      address,
      databases: databases.map((d) => d.name),
      users: databases.map((d) => d.username),
    });
  }

  async function provisionIfLive(op: string): Promise<void> {
    if (await isLive()) {
      await provision(op === 'createCluster' ? 'all' : 'missing');
    } else {
      logger.warn(
        `cockroach: ${op} left ${address} started but not live yet (it waits for a majority of its members); ` +
          'the configured databases are ensured when the members rejoin',
        { address },
      );
    }
  }

  async function createCluster(cluster: ClusterView): Promise<void> {
    requireMember(cluster, 'createCluster');
    logger.info('cockroach: creating the cluster', { address, nodes: cluster.nodes });
    await generateClusterConfig(cluster);
    await applyClusterConfig(cluster);
    // Seed 001 §3: the master keeps its data. An empty store means a cluster that never existed.
    const fresh = await isEmptyFolder(paths.data);
    const readiness: Readiness = fresh
      ? { kind: 'init' }
      : cluster.nodes.length > 1
        ? { kind: 'settle', ms: SETTLE_MS }
        : { kind: 'live' };
    await launch('createCluster', cluster.nodes, readiness);
    await provisionIfLive('createCluster');
  }

  async function joinCluster(cluster: ClusterView): Promise<void> {
    requireMember(cluster, 'joinCluster');
    logger.info('cockroach: joining the cluster with an empty store', {
      address,
      nodes: cluster.nodes,
    });
    await applyClusterConfig(cluster);
    // The store is about to be wiped: never under a running server.
    await stopServer();
    await wipeFolder(paths.data);
    await launch('joinCluster', cluster.nodes, { kind: 'live' });
    await provisionIfLive('joinCluster');
  }

  async function rejoinCluster(cluster: ClusterView): Promise<void> {
    requireMember(cluster, 'rejoinCluster');
    logger.info('cockroach: rejoining the cluster with its data', {
      address,
      nodes: cluster.nodes,
    });
    await applyClusterConfig(cluster);
    await stopServer();
    try {
      await launch('rejoinCluster', cluster.nodes, { kind: 'live' });
    } catch (err) {
      if (
        err instanceof ClusterGuardError &&
        /permanently removed from the cluster/.test(err.message)
      ) {
        throw new ClusterGuardError(
          'InvalidInput',
          `${address} was decommissioned, and CockroachDB never lets a decommissioned node back with its data: ` +
            `bring it back with joinCluster, which wipes its store and gives it a new node id. ${err.message}`,
          { cause: err },
        );
      }
      throw err;
    }
    await provisionIfLive('rejoinCluster');
  }

  async function decommissionCluster(cluster: ClusterView, leaving: string[]): Promise<void> {
    if (leaving.length === 0) return;
    if (leaving.includes(address)) {
      throw new ClusterGuardError(
        'InvalidInput',
        `decommission runs on a surviving member; ${address} is itself leaving`,
      );
    }
    const both = leaving.filter((l) => cluster.nodes.includes(l));
    if (both.length) {
      throw new ClusterGuardError('InvalidInput', `${both.join(', ')} cannot both stay and leave`);
    }
    const rows = await nodeStatus({ decommission: true });
    const isLeaving = (r: CockroachNodeStatus) => r.host !== undefined && leaving.includes(r.host);
    // An address may have several ids: a node wiped and joined again leaves its old id behind.
    const targets = rows.filter((r) => isLeaving(r) && r.membership !== 'decommissioned');
    const unknown = leaving.filter((l) => !rows.some((r) => r.host === l));
    if (unknown.length) {
      logger.info('cockroach: not cluster members, nothing to decommission', { nodes: unknown });
    }
    if (targets.length === 0) {
      deps.onProgress?.(`cockroach: nothing to decommission among ${leaving.join(', ')}`);
      return;
    }
    const hostsById = new Map(rows.flatMap((r) => (r.host ? [[r.id, r.host] as const] : [])));
    const names = targets.map((t) => `n${t.id} (${t.host})`).join(', ');
    const ids = targets.map((t) => String(t.id));
    const survivors = rows.filter(
      (r) => !isLeaving(r) && r.isLive && (r.membership ?? 'active') === 'active',
    );
    if (survivors.length < REPLICATION_FACTOR) {
      // Ask CockroachDB too: its own words tell the operator which ranges are stuck.
      const dry = await run(
        ['node', 'decommission', ...ids, '--dry-run', '--checks=enabled', ...connection()],
        {
          timeoutMs: opts('checkServer').timeoutMs,
        },
      );
      const refusal = parseDecommissionRefusal(`${String(dry.stdout)}\n${String(dry.stderr)}`);
      throw new ClusterGuardError(
        'UnsafeMembershipChange',
        `refusing to decommission ${names}: only ${survivors.length} live node(s) would remain` +
          `${survivors.length ? ` (${survivors.map((s) => s.host ?? `n${s.id}`).join(', ')})` : ''}, and ` +
          `replication factor ${REPLICATION_FACTOR} needs at least ${REPLICATION_FACTOR} to take over their replicas. ` +
          (refusal ? `${describeDecommissionRefusal(refusal, hostsById)}. ` : '') +
          'Add the new members first, then decommission (seed 001 §1.5).',
      );
    }
    logger.info('cockroach: decommissioning', { nodes: names, survivors: survivors.length });
    deps.onProgress?.(`cockroach: decommissioning ${names}`);
    const subprocess = execa(
      bin,
      ['node', 'decommission', ...ids, '--wait=all', '--checks=enabled', ...connection()],
      {
        stdin: 'ignore',
        timeout: opts('decommissionCluster').timeoutMs,
        cancelSignal: deps.signal,
        reject: false,
        env,
      },
    );
    let stdout = '';
    let reported = '';
    subprocess.stdout?.on('data', (chunk: Buffer | string) => {
      stdout += String(chunk);
      const rowsNow = parseDecommissionProgress(stdout);
      const line = rowsNow
        .map(
          (p) =>
            `n${p.nodeId} (${hostsById.get(p.nodeId) ?? '?'}): ${p.membership}, ${p.replicas} replicas left`,
        )
        .join('; ');
      if (line && line !== reported) {
        reported = line;
        deps.onProgress?.(`cockroach: ${line}`);
      }
    });
    const result = await subprocess;
    if (result.failed) {
      if (result.code === 'ENOENT') {
        throw new ClusterGuardError('MissingBinary', `the CockroachDB binary ${bin} is missing`);
      }
      if (result.isCanceled) deps.signal?.throwIfAborted();
      const refusal = parseDecommissionRefusal(
        `${String(result.stdout)}\n${String(result.stderr)}`,
      );
      if (refusal) {
        throw new ClusterGuardError(
          'UnsafeMembershipChange',
          `refusing to decommission ${names}: ${describeDecommissionRefusal(refusal, hostsById)}. ` +
            'Add members first, then decommission (seed 001 §1.5).',
        );
      }
      throw failure('cockroach node decommission', result);
    }
    const after = await nodeStatus({ decommission: true });
    const pending = after.filter(
      (r) => ids.includes(String(r.id)) && r.membership !== 'decommissioned',
    );
    if (pending.length) {
      throw new ClusterGuardError(
        'MiddlewareFailure',
        `cockroach node decommission returned, but ${pending.map((p) => `n${p.id} is ${p.membership ?? 'unknown'}`).join(', ')}`,
      );
    }
    logger.info('cockroach: decommissioned', { nodes: names });
    deps.onProgress?.(`cockroach: decommissioned ${names}; stop their servers now`);
  }

  const stagingName = (op: string) =>
    `${op}-${archiveTimestamp(new Date())}-${randomBytes(3).toString('hex')}`;

  /** Cluster-wide `BACKUP INTO` this node's external-io-dir, then into `<op>-data/cockroach`. */
  async function backupInto(op: 'backup' | 'export'): Promise<DataResult> {
    const work = layout.workingFolder(op, 'cockroach');
    const id = await localNodeId();
    const name = stagingName(op);
    const staging = path.join(paths.externalIo, name);
    logger.info(`cockroach: ${op} started`, { address, node: id });
    try {
      await sql(
        `cockroach ${op}`,
        `BACKUP INTO ${quoteLiteral(nodelocalUri(id, name))};`,
        opts(`${op}Data`).timeoutMs,
      );
      await moveFolder(staging, work);
    } finally {
      await rm(staging, { recursive: true, force: true });
    }
    const result = await listData(work);
    logger.info(`cockroach: ${op} done`, { address, files: result.files.length });
    return result;
  }

  /**
   * Full-cluster `RESTORE FROM LATEST IN` the working folder, moved into the external-io-dir for
   * the statement and back afterwards. CockroachDB restores a full cluster only into one without
   * user databases, so those are dropped first — after `SHOW BACKUP` proved the backup readable.
   */
  async function restoreFrom(op: 'restore' | 'import'): Promise<DataResult> {
    const work = layout.workingFolder(op, 'cockroach');
    if (await isEmptyFolder(work)) {
      throw new ClusterGuardError(
        'InvalidInput',
        `nothing to ${op}: ${work} is empty; unpack a CockroachDB backup there first`,
      );
    }
    const id = await localNodeId();
    const name = stagingName(op);
    const staging = path.join(paths.externalIo, name);
    const uri = quoteLiteral(nodelocalUri(id, name));
    const timeoutMs = opts(`${op}Data`).timeoutMs;
    await moveFolder(work, staging);
    try {
      await sql(
        `cockroach ${op}: reading the backup`,
        `SHOW BACKUP FROM LATEST IN ${uri};`,
        timeoutMs,
      );
      const databases = [...(await firstColumn('SHOW DATABASES;'))].filter(
        (d) => d !== 'system' && d !== 'defaultdb' && d !== 'postgres',
      );
      if (databases.length) {
        logger.warn(`cockroach: ${op} replaces the current databases`, { address, databases });
        await sql(
          `cockroach ${op}: dropping the current databases`,
          databases.map((d) => `DROP DATABASE IF EXISTS ${quoteIdent(d)} CASCADE;`).join('\n'),
          timeoutMs,
        );
      }
      try {
        await sql(`cockroach ${op}`, `RESTORE FROM LATEST IN ${uri};`, timeoutMs);
      } catch (err) {
        if (!databases.length || !(err instanceof ClusterGuardError)) throw err;
        throw new ClusterGuardError(
          err.type,
          `${err.message}\nThe databases ${databases.join(', ')} were dropped before the restore; ` +
            `their data is in the backup in ${work}: fix the cause and run ${op} again.`,
          { cause: err },
        );
      }
    } finally {
      await moveFolder(staging, work);
    }
    // Databases configured since the backup was taken.
    await provision('missing');
    const result = await listData(work);
    logger.info(`cockroach: ${op} done`, { address, files: result.files.length });
    return result;
  }

  return withOperations<Omit<CockroachAdapter, 'operations'>>({
    name: 'cockroach',
    startServer: async (cluster?: ClusterView) => {
      if (cluster) await writeMembership(cluster.nodes);
      const nodes = cluster?.nodes ?? (await readMembership()) ?? [address];
      return launch('startServer', nodes, { kind: 'live' });
    },
    stopServer,
    checkServer,
    createCluster,
    // Certificates for every member, signed by the CA the master keeps; the server is untouched.
    prepareClusterConfig: generateClusterConfig,
    async inspect() {
      const rows = await nodeStatus({ decommission: true });
      return {
        liveMembers: rows
          .filter((r) => r.isLive && (r.membership ?? 'active') === 'active' && r.host)
          .map((r) => r.host ?? ''),
      };
    },
    joinCluster,
    rejoinCluster,
    decommissionCluster,
    backupData: () => backupInto('backup'),
    restoreData: () => restoreFrom('restore'),
    exportData: () => backupInto('export'),
    importData: () => restoreFrom('import'),
    nodeStatus,
    generateClusterConfig,
    applyClusterConfig,
    provisionDatabases: () => provision('all'),
  });
}
