import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { execa, type Result } from 'execa';
import { z } from 'zod';
import type { NodeLayout } from '../../config/layout.js';
import { ClusterGuardError } from '../../contracts/errors.js';
import {
  operationOptions,
  runningPid,
  startProcess,
  stopProcess,
  type AdapterDeps,
  type MiddlewareOperation,
  type OperationOptions,
  type ProcessSpec,
  type ServerStatus,
} from '../kit/index.js';
import { parseCockroachOptions, type CockroachOptions } from './options.js';
import { cockroachStartArgs, parseNodeStatus, redact, type CockroachNodeStatus } from './parse.js';

/** Everything a CockroachDB node keeps on disk, under the node's root (docs/design.md). */
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
  /** One wait of a membership runbook's in-sync step. */
  checkInSync: { timeoutMs: 30_000 },
};

/**
 * How long the master waits for a restarted member of a multi-node cluster before it counts it
 * started: such a node cannot be live until a majority of its previous members is back, and they
 * start only after the master's createCluster returns.
 */
export const SETTLE_MS = 3_000;
/** A readiness probe must not hang on a node that accepts connections but cannot answer. */
const PROBE_TIMEOUT_MS = 5_000;

export type Readiness =
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

/**
 * One node's CockroachDB: its process, its CLI (run with this node's connection flags), its
 * status as the cluster sees it; what membership.ts, decommission.ts and data.ts build on.
 */
export function createCockroachServer(deps: AdapterDeps<CockroachOptions>) {
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
    ranges = false,
    timeoutMs = opts('checkServer').timeoutMs,
  }: { decommission?: boolean; ranges?: boolean; timeoutMs?: number } = {}): Promise<
    CockroachNodeStatus[]
  > {
    const stdout = await checked(
      'cockroach node status',
      [
        'node',
        'status',
        '--format=json',
        ...(decommission ? ['--decommission'] : []),
        ...(ranges ? ['--ranges'] : []),
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

  return {
    // The node: its address, its SQL endpoint, its options and files.
    address,
    self,
    options,
    secrets,
    paths,
    bin,
    // What the adapter was given, and the helpers every operation shares.
    deps,
    layout,
    logger,
    opts,
    progress,
    // Its CLI, run with this node's connection flags.
    env,
    connection,
    run,
    failure,
    checked,
    // Its status as the cluster sees it, and `cockroach init`.
    nodeStatus,
    findSelf,
    isLive,
    localNodeId,
    tryInit,
    // Its process and the members it last started with.
    readMembership,
    writeMembership,
    processSpec,
    checkServer,
    launch,
    stopServer,
  };
}

export type CockroachServer = ReturnType<typeof createCockroachServer>;
