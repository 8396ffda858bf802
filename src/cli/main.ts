/**
 * `clusterguard`: the operators' CLI over src/client.ts. Every command validates its input
 * before connecting, prints text or (`--json`) JSON on stdout, and exits with a code from
 * `exitCodes` (docs/cli.md).
 */
import { readFile } from 'node:fs/promises';
import {
  NamespaceNotFoundError,
  QueryNotRegisteredError,
  ScheduleNotFoundError,
  WorkflowExecutionAlreadyStartedError,
  WorkflowNotFoundError,
  WorkflowUpdateFailedError,
  type Client,
} from '@temporalio/client';
import { dataConverterFor } from '../temporal/connection.js';
import { Command, CommanderError, Option } from 'commander';
import YAML from 'yaml';
import type { z } from 'zod';
import { approveArgSchema, rolloutBundleInputSchema } from '../contracts/bundles.js';
import { loadClientTls } from '../agent/tls.js';
import { pushBundle } from '../bundles/client.js';
import { addBundleList } from './bundle-list.js';
import {
  abortRunbook,
  backupCluster,
  bootstrapCluster,
  connect,
  decommissionNodes,
  exportData,
  followRunbook,
  getProgress,
  importData,
  joinNode,
  listRunbooks,
  pauseRunbook,
  pingCluster,
  rejoinNode,
  restoreCluster,
  resumeRunbook,
  retryStep,
  runbookOutcome,
  skipNode,
  verifyBackup,
  type RunbookOutcome,
  type Started,
  type StartOptions,
} from '../client.js';
import {
  backupClusterInputSchema,
  exportDataInputSchema,
  importDataInputSchema,
  restoreClusterInputSchema,
  verifyBackupInputSchema,
} from '../contracts/data-runbooks.js';
import { ClusterGuardError } from '../contracts/errors.js';
import { clusterGuardianInputSchema, setMembershipSchema } from '../contracts/guardian.js';
import {
  bootstrapClusterInputSchema,
  decommissionNodesInputSchema,
  joinNodeInputSchema,
  rejoinNodeInputSchema,
} from '../contracts/membership-runbooks.js';
import { pingClusterInputSchema } from '../contracts/ping.js';
import type { Progress } from '../contracts/progress.js';
import { describeZodError } from '../contracts/validation.js';
import { queryRollout, startRolloutBundle } from '../temporal/bundles.js';
import {
  guardianState,
  pauseGuardian,
  resumeGuardian,
  setGuardianMembership,
  startGuardian,
} from '../temporal/guardian.js';
import {
  createBackupSchedule,
  createBackupScheduleSchema,
  deleteBackupSchedule,
  describeBackupSchedule,
  listBackupSchedules,
  pauseBackupSchedule,
  triggerBackupSchedule,
  unpauseBackupSchedule,
} from '../temporal/schedules.js';
import { outcomeLine, ProgressBars, progressTable, runbookTable, scheduleTable } from './render.js';
import { resolveConnection, type ConnectionFlags, type ResolvedConnection } from './settings.js';

export const exitCodes = {
  /** Done; for --wait and watch: the runbook completed. */
  ok: 0,
  /** The runbook failed, was aborted, terminated, cancelled or timed out. */
  runbookFailed: 1,
  /** Bad input, flags or configuration: nothing was sent. */
  usage: 2,
  /** Temporal cannot be reached (address, TLS, API key). */
  cannotConnect: 3,
  /** No such workflow, schedule or namespace (or it does not answer `progress`). */
  notFound: 4,
  /** Refused: an update was rejected, or another runbook holds the cluster's workflow id. */
  refused: 5,
  /** Anything else: a bug; the message says what. */
  internal: 70,
} as const;

class CliExit extends Error {
  constructor(
    readonly code: number,
    message: string,
    readonly type?: string,
  ) {
    super(message);
  }
}

interface Globals extends ConnectionFlags {
  json?: boolean;
}

let jsonMode = false;

function print(data: unknown, text: () => string): void {
  console.log(jsonMode ? JSON.stringify(data, null, 2) : text());
}

const list = (v: string) =>
  v
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
const num = (v: string) => Number(v);
const collect = (v: string, prev: string[] = []) => [...prev, v];

/** The options given, without the ones left out (so schema defaults apply). */
function defined(o: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
}

/**
 * A command's options merged with its ancestors' (its own win). `backup schedule create
 * --cluster dev --keep 7` hands `--cluster` and `--keep` to `backup`, which declares them too.
 */
function allOpts(cmd: Command): Record<string, unknown> {
  const chain: Command[] = [];
  for (let c: Command | null = cmd; c; c = c.parent) chain.unshift(c);
  return Object.assign({}, ...chain.map((c) => defined(c.opts()))) as Record<string, unknown>;
}

/** Commander checks an ancestor's required options for subcommands too; so these check here. */
function required(cmd: Command, o: Record<string, unknown>, flags: string[]): void {
  for (const flag of flags) {
    const key = flag.replace(/-([a-z])/g, (_, ch: string) => ch.toUpperCase());
    if (o[key] === undefined) cmd.error(`error: required option '--${flag}' not specified`);
  }
}

function extraInput(json: string | undefined): Record<string, unknown> {
  if (json === undefined) return {};
  let v: unknown;
  try {
    v = JSON.parse(json);
  } catch (err) {
    throw new ClusterGuardError('InvalidInput', `--input is not JSON: ${(err as Error).message}`);
  }
  if (!v || typeof v !== 'object' || Array.isArray(v)) {
    throw new ClusterGuardError('InvalidInput', '--input must be a JSON object');
  }
  return v as Record<string, unknown>;
}

function validate(schema: z.ZodType, input: unknown, runbook: string): void {
  const parsed = schema.safeParse(input);
  if (!parsed.success) {
    throw new ClusterGuardError(
      'InvalidInput',
      `invalid ${runbook} input: ${describeZodError(parsed.error)}`,
    );
  }
}

async function withClient<T>(
  cmd: Command,
  fn: (client: Client, conn: ResolvedConnection) => Promise<T>,
): Promise<T> {
  const conn = resolveConnection(cmd.optsWithGlobals<Globals>());
  let client: Client;
  try {
    const dataConverter = await dataConverterFor(conn.codec);
    client = await connect(conn.connect, dataConverter ? { dataConverter } : {});
  } catch (err) {
    if (err instanceof ClusterGuardError) throw err;
    const from = conn.profile ? `, profile "${conn.profile.name}" of ${conn.profile.file}` : '';
    throw new CliExit(
      exitCodes.cannotConnect,
      `cannot connect to Temporal at ${conn.connect.address} (namespace ` +
        `${conn.connect.namespace ?? 'default'}${from}): ${innermostMessage(err)}. Check ` +
        `--address or TEMPORAL_ADDRESS${conn.profile ? ', the profile' : ''}, TLS and API key ` +
        'settings, and that the server runs.',
    );
  }
  try {
    return await fn(client, conn);
  } finally {
    await client.connection.close().catch(() => undefined);
  }
}

function innermostMessage(err: unknown): string {
  let e: unknown = err;
  while (e instanceof Error && e.cause instanceof Error) e = e.cause;
  return e instanceof Error ? e.message : String(e);
}

function grpcCode(err: unknown): number | undefined {
  for (let e: unknown = err; e instanceof Error; e = e.cause) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'number') return code;
  }
  return undefined;
}

/** The exit code, error type and message an error ends the CLI with. */
export function classify(err: unknown): { code: number; type: string; message: string } {
  const message = innermostMessage(err);
  if (err instanceof CliExit) return { code: err.code, type: err.type ?? 'Error', message };
  if (err instanceof CommanderError) return { code: exitCodes.usage, type: 'Usage', message };
  if (err instanceof ClusterGuardError) {
    // startMembershipRunbook reports a running membership runbook as InvalidInput.
    if (err.cause instanceof WorkflowExecutionAlreadyStartedError) {
      return { code: exitCodes.refused, type: 'ClusterBusy', message: err.message };
    }
    const code =
      err.type === 'InvalidInput' || err.type === 'InvalidConfig'
        ? exitCodes.usage
        : err.type === 'ClusterBusy'
          ? exitCodes.refused
          : exitCodes.runbookFailed;
    return { code, type: err.type, message: err.message };
  }
  if (
    err instanceof WorkflowNotFoundError ||
    err instanceof ScheduleNotFoundError ||
    err instanceof NamespaceNotFoundError ||
    err instanceof QueryNotRegisteredError
  ) {
    return { code: exitCodes.notFound, type: err.name, message: err.message };
  }
  if (err instanceof WorkflowUpdateFailedError) {
    return { code: exitCodes.refused, type: 'UpdateRejected', message };
  }
  if (err instanceof WorkflowExecutionAlreadyStartedError) {
    return { code: exitCodes.refused, type: 'ClusterBusy', message };
  }
  // gRPC status codes: UNAVAILABLE, DEADLINE_EXCEEDED; NOT_FOUND; INVALID_ARGUMENT; FAILED_PRECONDITION.
  switch (grpcCode(err)) {
    case 14:
    case 4:
      return { code: exitCodes.cannotConnect, type: 'Unavailable', message };
    case 5:
      return { code: exitCodes.notFound, type: 'NotFound', message };
    case 3:
      return { code: exitCodes.usage, type: 'InvalidArgument', message };
    case 9:
      return { code: exitCodes.refused, type: 'FailedPrecondition', message };
  }
  return {
    code: exitCodes.internal,
    type: 'Error',
    message: err instanceof Error ? (err.stack ?? message) : message,
  };
}

function outcomeCode(o: RunbookOutcome): number {
  return o.status === 'COMPLETED' ? exitCodes.ok : exitCodes.runbookFailed;
}

/** Follows a run with live bars on stderr (or NDJSON on stdout); the outcome decides the code. */
async function watchRun(client: Client, workflowId: string, intervalMs: number): Promise<number> {
  const bars = jsonMode ? undefined : new ProgressBars(process.stderr);
  // Ctrl-C leaves the runbook running; only the terminal (cursor, bars) is put right.
  const interrupted = () => {
    bars?.stop();
    console.error(`stopped watching; ${workflowId} goes on (clusterguard status ${workflowId})`);
    process.exit(130);
  };
  process.once('SIGINT', interrupted);
  let last: Progress | undefined;
  let outcome: RunbookOutcome;
  try {
    outcome = await followRunbook(
      client,
      workflowId,
      (p) => {
        last = p;
        if (bars) bars.update(p);
        else console.log(JSON.stringify({ progress: p }));
      },
      { intervalMs },
    );
  } finally {
    process.off('SIGINT', interrupted);
    bars?.stop();
  }
  if (jsonMode) console.log(JSON.stringify({ outcome }));
  else {
    if (last) console.log(progressTable(last));
    console.log(outcomeLine(outcome));
  }
  return outcomeCode(outcome);
}

type Starter = (client: Client, input: never, options: StartOptions) => Promise<Started>;

interface StartFlags {
  input?: string;
  wait?: boolean;
  watch?: boolean;
}

/** Validates, starts, and reports (or waits for / watches) one runbook. */
async function startRunbook(
  cmd: Command,
  runbook: string,
  schema: z.ZodType,
  fields: Record<string, unknown>,
  start: Starter,
): Promise<number> {
  const flags = cmd.opts<StartFlags>();
  const input = { ...extraInput(flags.input), ...defined(fields) };
  validate(schema, input, runbook);
  return withClient(cmd, async (client, conn) => {
    const s = await start(client, input as never, { taskQueue: conn.taskQueue });
    if (flags.watch) return watchRun(client, s.workflowId, 1000);
    if (flags.wait) {
      const outcome = await followRunbook(client, s.workflowId, () => undefined);
      print(outcome, () =>
        [
          outcomeLine(outcome),
          ...(outcome.result === undefined ? [] : [JSON.stringify(outcome.result, null, 2)]),
        ].join('\n'),
      );
      return outcomeCode(outcome);
    }
    print({ runbook, workflowId: s.workflowId, runId: s.runId, taskQueue: conn.taskQueue }, () =>
      [
        `started ${runbook} as ${s.workflowId} (run ${s.runId})`,
        `follow it: clusterguard watch ${s.workflowId}`,
      ].join('\n'),
    );
    return exitCodes.ok;
  });
}

function example(cmd: Command, ...lines: string[]): Command {
  return cmd.addHelpText('after', `\nExample:\n${lines.map((l) => `  $ ${l}`).join('\n')}\n`);
}

function startFlags(cmd: Command): Command {
  return cmd
    .option('--input <json>', 'more input fields as a JSON object (the flags win)')
    .option('--wait', 'wait for the runbook to end; print its result; exit code by outcome')
    .option('--watch', 'show live progress until the runbook ends; exit code by outcome');
}

function stepFlags(cmd: Command): Command {
  return cmd
    .option('--step-attempts <n>', 'attempts of a step before it parks (1–100)', num)
    .option('--agent-timeout <seconds>', 'when a silent node shows as unreachable', num);
}

let exitCode: number = exitCodes.ok;
const done = (code: number) => {
  exitCode = code;
};

export function buildProgram(): Command {
  const program = new Command('clusterguard');
  program
    .description('Start, follow and steer clusterguard runbooks on a Temporal server.')
    .exitOverride()
    .showHelpAfterError('(add --help for usage)')
    .option('--json', 'machine-readable JSON on stdout (errors too)')
    .option(
      '--address <host:port>',
      'Temporal frontend [env TEMPORAL_ADDRESS, default 127.0.0.1:7233]',
    )
    .option('--namespace <name>', 'Temporal namespace [env TEMPORAL_NAMESPACE, default default]')
    .option(
      '--task-queue <name>',
      "the orchestrator's task queue [env CLUSTERGUARD_TASK_QUEUE, default clusterguard]",
    )
    .option(
      '--config <file>',
      'YAML config file [env CLUSTERGUARD_CONFIG, default ~/.config/clusterguard/cli.yaml]',
    )
    .option(
      '--profile <name>',
      "a profile of the temporal CLI's config file, under flags and env [env TEMPORAL_PROFILE]",
    )
    .option(
      '--config-file <file>',
      "the temporal CLI's TOML config file; alone, its default profile [env " +
        'TEMPORAL_CONFIG_FILE; with --profile, default ~/.config/temporalio/temporal.toml]',
    )
    .addOption(new Option('--tls', 'use TLS [env TEMPORAL_TLS]'))
    .addOption(new Option('--no-tls', 'do not use TLS even when other TLS settings are given'))
    .option('--tls-cert <file>', 'client certificate [env TEMPORAL_TLS_CERT]')
    .option('--tls-key <file>', 'client key [env TEMPORAL_TLS_KEY]')
    .option('--tls-ca <file>', 'server CA certificate [env TEMPORAL_TLS_CA]')
    .option('--tls-server-name <name>', 'server name to verify [env TEMPORAL_TLS_SERVER_NAME]')
    .option('--api-key <key>', 'API key, implies TLS [env TEMPORAL_API_KEY]')
    .option('--connect-timeout <seconds>', 'give up connecting after this long (default 10)', num)
    .hook('preAction', (_this, action) => {
      jsonMode = Boolean(action.optsWithGlobals<Globals>().json);
    })
    .addHelpText(
      'after',
      `
Exit codes: 0 ok · 1 runbook failed/aborted · 2 bad input or usage (nothing sent) ·
3 cannot connect · 4 not found · 5 refused (update rejected, cluster busy) · 70 internal error.

Example:
  $ clusterguard --address temporal.example:7233 ping --cluster dev --nodes 10.0.0.1,10.0.0.2 --wait
`,
    );

  // --- runbooks -----------------------------------------------------------------------------
  example(
    startFlags(
      program
        .command('ping')
        .description('start pingCluster: ask every node agent who it is and what it runs')
        .requiredOption('--cluster <id>', 'cluster id')
        .requiredOption('--nodes <a,b,…>', 'node addresses; the first is the master', list)
        .option('--hold-seconds <n>', 'keep each probe busy this long (0–3600)', num)
        .option('--agent-timeout <seconds>', 'when a silent node shows as unreachable', num)
        .option('--workflow-id <id>', 'default cg/<cluster>/ping/<random>'),
    ),
    'clusterguard ping --cluster dev --nodes 127.0.0.11,127.0.0.12,127.0.0.13 --wait',
  ).action(async function (this: Command) {
    const o = this.opts();
    const wid = o.workflowId as string | undefined;
    done(
      await startRunbook(
        this,
        'pingCluster',
        pingClusterInputSchema,
        {
          clusterId: o.cluster,
          nodes: o.nodes,
          holdSeconds: o.holdSeconds,
          agentTimeoutSeconds: o.agentTimeout,
        },
        (client, input, opts) =>
          pingCluster(client, input, { ...opts, ...(wid ? { workflowId: wid } : {}) }),
      ),
    );
  });

  const membershipCommand = (name: string, description: string) =>
    stepFlags(
      startFlags(
        program
          .command(name)
          .description(description)
          .requiredOption('--cluster <id>', 'cluster id')
          .option('--middleware <list>', 'some of cockroach,zookeeper,kafka', list)
          .option('--dry-run', 'return the plan; change nothing'),
      ),
    );
  const membershipFields = (o: Record<string, unknown>) => ({
    clusterId: o.cluster,
    middleware: o.middleware,
    dryRun: o.dryRun,
    stepAttempts: o.stepAttempts,
    agentTimeoutSeconds: o.agentTimeout,
  });

  example(
    membershipCommand('bootstrap', 'start bootstrapCluster (as cg/<cluster>/membership)')
      .requiredOption('--nodes <a,b,…>', 'the members; the first is the master', list)
      .option('--decommission-nodes <a,b,…>', 'former members to decommission', list),
    'clusterguard bootstrap --cluster dev --nodes 127.0.0.11,127.0.0.12,127.0.0.13 --dry-run --wait',
  ).action(async function (this: Command) {
    const o = this.opts();
    done(
      await startRunbook(
        this,
        'bootstrapCluster',
        bootstrapClusterInputSchema,
        { ...membershipFields(o), nodes: o.nodes, decommissionNodes: o.decommissionNodes },
        bootstrapCluster,
      ),
    );
  });

  example(
    membershipCommand('join', 'start joinNode: a new node joins the cluster')
      .requiredOption('--node <address>', 'the node that joins')
      .option('--master <address>', "the master (default: from the node's cluster.json)"),
    'clusterguard join --cluster dev --node 127.0.0.14 --master 127.0.0.11 --watch',
  ).action(async function (this: Command) {
    const o = this.opts();
    done(
      await startRunbook(
        this,
        'joinNode',
        joinNodeInputSchema,
        { ...membershipFields(o), node: o.node, master: o.master },
        joinNode,
      ),
    );
  });

  example(
    membershipCommand('rejoin', 'start rejoinNode: a member joins again, keeping what it may')
      .requiredOption('--node <address>', 'the member that rejoins')
      .option('--master <address>', "the master (default: from the node's cluster.json)"),
    'clusterguard rejoin --cluster dev --node 127.0.0.13',
  ).action(async function (this: Command) {
    const o = this.opts();
    done(
      await startRunbook(
        this,
        'rejoinNode',
        rejoinNodeInputSchema,
        { ...membershipFields(o), node: o.node, master: o.master },
        rejoinNode,
      ),
    );
  });

  example(
    membershipCommand(
      'decommission',
      'start decommissionNodes: members leave (replacements join first)',
    )
      .requiredOption('--nodes <a,b,…>', 'members that leave', list)
      .option('--add <a,b,…>', 'replacements that join first', list)
      .option('--master <address>', 'the current master')
      .option('--new-master <address>', 'required when the master leaves'),
    'clusterguard decommission --cluster dev --nodes 127.0.0.13 --dry-run --wait --json',
  ).action(async function (this: Command) {
    const o = this.opts();
    done(
      await startRunbook(
        this,
        'decommissionNodes',
        decommissionNodesInputSchema,
        {
          ...membershipFields(o),
          nodes: o.nodes,
          add: o.add,
          master: o.master,
          newMaster: o.newMaster,
        },
        decommissionNodes,
      ),
    );
  });

  const dataFields = (o: Record<string, unknown>) => ({
    clusterId: o.cluster,
    master: o.master,
    stepAttempts: o.stepAttempts,
    agentTimeoutSeconds: o.agentTimeout,
  });
  // `backup` has subcommands, and commander checks an ancestor's required options for them
  // too: there, the two are checked in the action instead.
  const dataCommand = (cmd: Command, required = true) =>
    stepFlags(
      startFlags(
        required
          ? cmd
              .requiredOption('--cluster <id>', 'cluster id')
              .requiredOption('--master <address>', 'a member, normally the master')
          : cmd
              .option('--cluster <id>', 'cluster id (required)')
              .option('--master <address>', 'a member, normally the master (required)'),
      ),
    );

  const backup = example(
    dataCommand(
      program
        .command('backup')
        .description('start backupCluster now (as cg/<cluster>/data); or manage schedules')
        .option('--middleware <list>', 'some of cockroach,zookeeper,kafka,controller', list)
        .option('--label <label>', 'the backup id becomes <timestamp>-<label>')
        .option('--keep <n>', 'retention: keep the newest n backups per node', num)
        .option('--max-age-days <days>', 'retention: delete backups older than this', num)
        .option('--dry-run', 'return the plan; change nothing'),
      false,
    ),
    'clusterguard backup --cluster dev --master 127.0.0.11 --keep 7 --watch',
    'clusterguard backup schedule create --cluster dev --master 127.0.0.11 --cron "0 2 * * *" --keep 7',
  ).action(async function (this: Command) {
    const o = this.opts();
    required(this, o, ['cluster', 'master']);
    done(
      await startRunbook(
        this,
        'backupCluster',
        backupClusterInputSchema,
        {
          ...dataFields(o),
          middleware: o.middleware,
          label: o.label,
          keep: o.keep,
          maxAgeDays: o.maxAgeDays,
          dryRun: o.dryRun,
        },
        backupCluster,
      ),
    );
  });

  example(
    dataCommand(
      program
        .command('verify-backup')
        .description('start verifyBackup: re-read every archive of a backup, check the manifest')
        .requiredOption('--backup-id <id>', 'e.g. 20261122T074512Z or 20261122T074512Z-label')
        .option('--restore-test', 'also read every dump back in a scratch folder'),
    ),
    'clusterguard verify-backup --cluster dev --master 127.0.0.11 --backup-id 20261122T074512Z --wait',
  ).action(async function (this: Command) {
    const o = this.opts();
    done(
      await startRunbook(
        this,
        'verifyBackup',
        verifyBackupInputSchema,
        { ...dataFields(o), backupId: o.backupId, restoreTest: o.restoreTest },
        verifyBackup,
      ),
    );
  });

  example(
    dataCommand(
      program
        .command('restore')
        .description('start restoreCluster: check the whole backup, then restore it')
        .requiredOption('--backup-id <id>', 'e.g. 20261122T074512Z')
        .option('--middleware <list>', 'some of cockroach,zookeeper,kafka,controller', list)
        .option('--no-keep-current-data', 'do not back up the data the restore replaces first')
        .option('--dry-run', 'check and return the plan; change nothing'),
    ),
    'clusterguard restore --cluster dev --master 127.0.0.11 --backup-id 20261122T074512Z --watch',
  ).action(async function (this: Command) {
    const o = this.opts();
    done(
      await startRunbook(
        this,
        'restoreCluster',
        restoreClusterInputSchema,
        {
          ...dataFields(o),
          backupId: o.backupId,
          middleware: o.middleware,
          keepCurrentData: o.keepCurrentData === false ? false : undefined,
          dryRun: o.dryRun,
        },
        restoreCluster,
      ),
    );
  });

  example(
    dataCommand(
      program
        .command('export')
        .description("start exportData: the cluster's data as an archive for another cluster")
        .option('--middleware <list>', 'some of cockroach,zookeeper,kafka,controller', list)
        .option('--label <label>', 'the export id becomes <timestamp>-<label>')
        .option('--dry-run', 'return the plan; change nothing'),
    ),
    'clusterguard export --cluster dev --master 127.0.0.11 --label move --wait',
  ).action(async function (this: Command) {
    const o = this.opts();
    done(
      await startRunbook(
        this,
        'exportData',
        exportDataInputSchema,
        { ...dataFields(o), middleware: o.middleware, label: o.label, dryRun: o.dryRun },
        exportData,
      ),
    );
  });

  example(
    dataCommand(
      program
        .command('import')
        .description("start importData: load an archive from a node's import-data-archive folder")
        .requiredOption('--archive <id>', 'the archive id, e.g. 20261122T074512Z-move')
        .option('--node <address>', 'the member that holds it (default the master)')
        .option('--middleware <list>', 'some of cockroach,zookeeper,kafka,controller', list)
        .option('--no-keep-current-data', 'do not back up the data the import changes first')
        .option('--dry-run', 'check and return the plan; change nothing'),
    ),
    'clusterguard import --cluster dev --master 127.0.0.11 --archive 20261122T074512Z-move --watch',
  ).action(async function (this: Command) {
    const o = this.opts();
    done(
      await startRunbook(
        this,
        'importData',
        importDataInputSchema,
        {
          ...dataFields(o),
          archive: o.archive,
          node: o.node,
          middleware: o.middleware,
          keepCurrentData: o.keepCurrentData === false ? false : undefined,
          dryRun: o.dryRun,
        },
        importData,
      ),
    );
  });

  // --- backup schedules -----------------------------------------------------------------------
  const schedule = backup
    .command('schedule')
    .description('Temporal Schedules that start backupCluster (overlap policy: skip)');
  example(
    schedule
      .command('create')
      .description('create a backup schedule (cg/<cluster>/backup-schedule/<name>)')
      .option('--cluster <id>', 'cluster id (required)')
      .option('--master <address>', 'a member, normally the master (required)')
      .option('--name <name>', 'schedule name', 'default')
      .option('--cron <expr>', 'cron expression, UTC (repeatable)', collect)
      .option('--every <interval>', 'or an interval: 30s, 15m, 6h, 1d')
      .option('--middleware <list>', 'some of cockroach,zookeeper,kafka,controller', list)
      .option('--label <label>', 'each backup id becomes <timestamp>-<label>')
      .option('--keep <n>', 'retention: keep the newest n backups per node', num)
      .option('--paused', 'create it paused')
      .option('--note <text>', 'a note shown with the schedule')
      .option('--input <json>', 'more backupCluster input fields as a JSON object'),
    'clusterguard backup schedule create --cluster dev --master 127.0.0.11 --cron "0 2 * * *" --keep 7',
    'clusterguard backup schedule create --cluster dev --master 127.0.0.11 --name hourly --every 1h',
  ).action(async function (this: Command) {
    const o = allOpts(this);
    required(this, o, ['cluster', 'master']);
    const options = defined({
      name: o.name,
      cron: o.cron,
      every: o.every,
      paused: o.paused,
      note: o.note,
      input: {
        ...extraInput(o.input as string | undefined),
        ...defined({
          clusterId: o.cluster,
          master: o.master,
          middleware: o.middleware,
          label: o.label,
          keep: o.keep,
        }),
      },
    });
    validate(createBackupScheduleSchema, options, 'backup schedule');
    done(
      await withClient(this, async (client, conn) => {
        const info = await createBackupSchedule(client, options as never, {
          taskQueue: conn.taskQueue,
        });
        print(info, () => `created backup schedule ${info.name}\n${scheduleTable([info])}`);
        return exitCodes.ok;
      }),
    );
  });

  example(
    schedule
      .command('list')
      .description("list a cluster's backup schedules")
      .option('--cluster <id>', 'cluster id (required)'),
    'clusterguard backup schedule list --cluster dev --json',
  ).action(async function (this: Command) {
    const o = allOpts(this);
    required(this, o, ['cluster']);
    done(
      await withClient(this, async (client) => {
        const rows = await listBackupSchedules(client, o.cluster as string);
        print(rows, () =>
          rows.length ? scheduleTable(rows) : `no backup schedules of ${String(o.cluster)}`,
        );
        return exitCodes.ok;
      }),
    );
  });

  const scheduleAction = (
    name: string,
    description: string,
    run: (client: Client, cluster: string, schedule: string, note?: string) => Promise<unknown>,
    past: string,
    withNote = false,
  ) => {
    const cmd = schedule
      .command(name)
      .description(description)
      .option('--cluster <id>', 'cluster id (required)')
      .option('--name <name>', 'schedule name', 'default');
    if (withNote) cmd.option('--note <text>', 'why (shown with the schedule)');
    example(cmd, `clusterguard backup schedule ${name} --cluster dev --name default`).action(
      async function (this: Command) {
        const o = allOpts(this);
        required(this, o, ['cluster']);
        done(
          await withClient(this, async (client) => {
            const cluster = o.cluster as string;
            const scheduleName = o.name as string;
            await run(client, cluster, scheduleName, o.note as string | undefined);
            const info =
              name === 'delete'
                ? undefined
                : await describeBackupSchedule(client, cluster, scheduleName);
            print(
              info ?? { clusterId: cluster, name: scheduleName, deleted: true },
              () =>
                `backup schedule ${scheduleName} of ${cluster} ${past}` +
                (info ? `\n${scheduleTable([info])}` : ''),
            );
            return exitCodes.ok;
          }),
        );
      },
    );
  };
  scheduleAction(
    'describe',
    'show one backup schedule: spec, state, next and recent runs',
    () => Promise.resolve(),
    'as it stands',
  );
  scheduleAction(
    'pause',
    'pause a backup schedule',
    (c, cl, n, note) => pauseBackupSchedule(c, cl, n, note),
    'paused',
    true,
  );
  scheduleAction(
    'unpause',
    'unpause a backup schedule',
    (c, cl, n, note) => unpauseBackupSchedule(c, cl, n, note),
    'unpaused',
    true,
  );
  scheduleAction(
    'trigger',
    'fire a backup schedule now (skipped while its last backup runs)',
    triggerBackupSchedule,
    'triggered',
  );
  scheduleAction(
    'delete',
    'delete a backup schedule (a backup it started goes on)',
    deleteBackupSchedule,
    'deleted',
  );

  // --- following and steering --------------------------------------------------------------
  example(
    program
      .command('status')
      .description('show a runbook: its state and the `progress` query as a table')
      .argument('<workflow-id>'),
    'clusterguard status cg/dev/membership',
  ).action(async function (this: Command, workflowId: string) {
    done(
      await withClient(this, async (client) => {
        const outcome = await runbookOutcome(client, workflowId);
        let progress: Progress | undefined;
        let noProgress: string | undefined;
        try {
          progress = await getProgress(client, workflowId, outcome.runId);
        } catch (err) {
          noProgress = innermostMessage(err);
        }
        print({ ...outcome, progress: progress ?? null }, () =>
          [
            ...(progress ? [progressTable(progress)] : [`(no progress: ${noProgress ?? '?'})`]),
            outcomeLine(outcome),
          ].join('\n'),
        );
        return exitCodes.ok;
      }),
    );
  });

  example(
    program
      .command('watch')
      .description('live progress bars (one per node) until the runbook ends; exit code by outcome')
      .argument('<workflow-id>')
      .option('--interval <seconds>', 'how often to ask (default 1)', num),
    'clusterguard watch cg/dev/membership',
  ).action(async function (this: Command, workflowId: string) {
    const o = this.opts();
    const interval = (o.interval as number | undefined) ?? 1;
    if (!(interval > 0)) throw new ClusterGuardError('InvalidInput', '--interval must be > 0');
    done(await withClient(this, (client) => watchRun(client, workflowId, interval * 1000)));
  });

  example(
    program
      .command('pause')
      .description('signal pause: the runbook holds before its next step')
      .argument('<workflow-id>')
      .option('--reason <text>', 'shown in progress'),
    'clusterguard pause cg/dev/membership --reason "change window"',
  ).action(async function (this: Command, workflowId: string) {
    const o = this.opts();
    done(
      await withClient(this, async (client) => {
        await pauseRunbook(client, workflowId, o.reason as string | undefined);
        print({ workflowId, signal: 'pause' }, () => `pause sent to ${workflowId}`);
        return exitCodes.ok;
      }),
    );
  });

  example(
    program.command('resume').description('signal resume').argument('<workflow-id>'),
    'clusterguard resume cg/dev/membership',
  ).action(async function (this: Command, workflowId: string) {
    done(
      await withClient(this, async (client) => {
        await resumeRunbook(client, workflowId);
        print({ workflowId, signal: 'resume' }, () => `resume sent to ${workflowId}`);
        return exitCodes.ok;
      }),
    );
  });

  const update = (
    cmd: Command,
    name: string,
    run: (client: Client, workflowId: string, o: Record<string, unknown>) => Promise<string>,
  ) =>
    cmd.action(async function (this: Command, workflowId: string) {
      const o = this.opts();
      done(
        await withClient(this, async (client) => {
          const answer = await run(client, workflowId, o);
          print({ workflowId, update: name, answer }, () => answer);
          return exitCodes.ok;
        }),
      );
    });

  update(
    example(
      program
        .command('retry-step')
        .description('update retryStep: a parked step runs again')
        .argument('<workflow-id>')
        .option('--step <id>', 'the step, when several are parked'),
      'clusterguard retry-step cg/dev/membership --step join:127.0.0.13',
    ),
    'retryStep',
    (client, wid, o) => retryStep(client, wid, defined({ step: o.step })),
  );
  update(
    example(
      program
        .command('skip-node')
        .description("update skipNode: skip a node's parked steps, where safe")
        .argument('<workflow-id>')
        .requiredOption('--node <address>', 'the node')
        .requiredOption('--reason <text>', 'kept in the result'),
      'clusterguard skip-node cg/dev/membership --node 127.0.0.13 --reason "disk replaced"',
    ),
    'skipNode',
    (client, wid, o) =>
      skipNode(client, wid, { node: o.node as string, reason: o.reason as string }),
  );
  update(
    example(
      program
        .command('abort')
        .description('update abort: a parked or paused runbook fails, saying what it left')
        .argument('<workflow-id>')
        .requiredOption('--reason <text>', 'kept in the failure'),
      'clusterguard abort cg/dev/membership --reason postponed',
    ),
    'abort',
    (client, wid, o) => abortRunbook(client, wid, { reason: o.reason as string }),
  );

  example(
    program
      .command('list')
      .description("list a cluster's runbooks (search attributes ClusterId, Runbook), newest first")
      .requiredOption('--cluster <id>', 'cluster id')
      .option('--runbook <type>', 'only this workflow type, e.g. backupCluster')
      .option('--running', 'only running ones')
      .option('--limit <n>', 'at most n (default 50)', num),
    'clusterguard list --cluster dev --running',
  ).action(async function (this: Command) {
    const o = this.opts();
    done(
      await withClient(this, async (client) => {
        const rows = await listRunbooks(
          client,
          defined({
            clusterId: o.cluster,
            runbook: o.runbook,
            running: o.running,
            limit: o.limit,
          }) as never,
        );
        print(rows, () => (rows.length ? runbookTable(rows) : `no runbooks of ${o.cluster}`));
        return exitCodes.ok;
      }),
    );
  });

  // --- the guardian, bundle rollouts (their runbooks and starters are their own modules) -------
  const guardian = program
    .command('guardian')
    .description('the cluster guardian (clusterGuardian, cg/<cluster>/guardian)');
  example(
    startFlags(
      guardian
        .command('start')
        .description('start the guardian of a cluster')
        .requiredOption('--cluster <id>', 'cluster id')
        .requiredOption('--master <address>', 'a member, normally the master')
        .option('--desired <a,b,…>', 'the desired members (or set them later)', list)
        .option('--controller-url <url>', "poll the appliance controller's cluster endpoint")
        .option('--interval <seconds>', 'how often to compare (default 60)', num)
        .option('--dry-run', 'children run as dry runs'),
    ),
    'clusterguard guardian start --cluster dev --master 127.0.0.11 --desired 127.0.0.11,127.0.0.12,127.0.0.13',
  ).action(async function (this: Command) {
    const o = this.opts();
    done(
      await startRunbook(
        this,
        'clusterGuardian',
        clusterGuardianInputSchema,
        {
          clusterId: o.cluster,
          master: o.master,
          desired: o.desired,
          source: o.controllerUrl ? { controllerUrl: o.controllerUrl as string } : undefined,
          intervalSeconds: o.interval,
          dryRun: o.dryRun,
        },
        async (client, input, opts) => {
          const h = await startGuardian(client, input, opts);
          return { workflowId: h.workflowId, runId: h.firstExecutionRunId, handle: h };
        },
      ),
    );
  });

  const guardianCommand = (name: string, description: string, line: string) =>
    example(
      guardian
        .command(name)
        .description(description)
        .requiredOption('--cluster <id>', 'cluster id'),
      line,
    );
  guardianCommand(
    'status',
    'the query state: desired and actual membership, last check, running child',
    'clusterguard guardian status --cluster dev',
  ).action(async function (this: Command) {
    const o = this.opts();
    done(
      await withClient(this, async (client) => {
        const state = await guardianState(client, o.cluster as string);
        print(state, () => YAML.stringify(state).trimEnd());
        return exitCodes.ok;
      }),
    );
  });
  guardianCommand(
    'pause',
    'signal pause',
    'clusterguard guardian pause --cluster dev --reason maintenance',
  )
    .option('--reason <text>', 'shown in its state')
    .action(async function (this: Command) {
      const o = this.opts();
      done(
        await withClient(this, async (client) => {
          await pauseGuardian(client, o.cluster as string, o.reason as string | undefined);
          print(
            { clusterId: o.cluster as string, signal: 'pause' },
            () => `pause sent to the guardian`,
          );
          return exitCodes.ok;
        }),
      );
    });
  guardianCommand('resume', 'signal resume', 'clusterguard guardian resume --cluster dev').action(
    async function (this: Command) {
      const o = this.opts();
      done(
        await withClient(this, async (client) => {
          await resumeGuardian(client, o.cluster as string);
          print(
            { clusterId: o.cluster as string, signal: 'resume' },
            () => `resume sent to the guardian`,
          );
          return exitCodes.ok;
        }),
      );
    },
  );
  guardianCommand(
    'set-membership',
    'update setMembership: the desired members',
    'clusterguard guardian set-membership --cluster dev --nodes 127.0.0.11,127.0.0.12,127.0.0.14',
  )
    .requiredOption('--nodes <a,b,…>', 'the desired members', list)
    .option('--master <address>', 'which of them is the master (default the first)')
    .option('--reason <text>', 'why, for its state and history')
    .action(async function (this: Command) {
      const o = this.opts();
      const arg = defined({ nodes: o.nodes, master: o.master, reason: o.reason });
      validate(setMembershipSchema, arg, 'setMembership');
      done(
        await withClient(this, async (client) => {
          const answer = await setGuardianMembership(client, o.cluster as string, arg as never);
          print({ clusterId: o.cluster as string, update: 'setMembership', answer }, () => answer);
          return exitCodes.ok;
        }),
      );
    });

  update(
    example(
      program
        .command('approve')
        .description('update approve: a bundle rollout waiting after its canary goes on')
        .argument('<workflow-id>')
        .option('--by <who>', 'who approved')
        .option('--reject <why>', 'refuse instead: the rollout rolls back'),
      'clusterguard approve cg/dev/bundle/com.example.app --by alice',
    ),
    'approve',
    async (client, wid, o) => {
      const arg = defined({ by: o.by, reject: o.reject });
      validate(approveArgSchema, arg, 'approve');
      return client.workflow.getHandle(wid).executeUpdate<string, [typeof arg]>('approve', {
        args: [arg],
      });
    },
  );

  const bundle = program.command('bundle').description('bundle rollouts (rolloutBundle)');
  addBundleList(bundle, print, done);
  example(
    bundle
      .command('status')
      .description("the query bundles of a cluster's rollout: phase and every node")
      .requiredOption('--cluster <id>', 'cluster id')
      .requiredOption('--name <symbolic-name>', "the bundle's symbolic name"),
    'clusterguard bundle status --cluster dev --name com.example.app',
  ).action(async function (this: Command) {
    const o = this.opts();
    done(
      await withClient(this, async (client) => {
        const view = await queryRollout(client, o.cluster as string, o.name as string);
        print(view, () => YAML.stringify(view).trimEnd());
        return exitCodes.ok;
      }),
    );
  });

  example(
    bundle
      .command('push')
      .description(
        "POST /v1/bundles: upload a jar to a node's agent; prints its symbolic name, version, sha256",
      )
      .argument('<file>', 'the OSGi bundle (a jar with Bundle-SymbolicName and Bundle-Version)')
      .requiredOption('--agent <url>', "the agent's base URL, e.g. http://127.0.0.11:7700")
      .option(
        '--token-file <path>',
        'the cluster token (default $CLUSTERGUARD_TOKEN_FILE, else $CLUSTERGUARD_TOKEN)',
      )
      .option('--agent-ca <file>', "for https: the agents' CA [env CLUSTERGUARD_AGENT_CA]")
      .option(
        '--agent-cert <file>',
        'for mutual TLS: a client certificate [env CLUSTERGUARD_AGENT_CERT]',
      )
      .option('--agent-key <file>', 'for mutual TLS: its key [env CLUSTERGUARD_AGENT_KEY]'),
    'clusterguard bundle push app-1.2.0.jar --agent http://127.0.0.11:7700 --token-file .data/cluster-token',
  ).action(async function (this: Command, file: string) {
    const o = this.opts();
    const tokenFile = (o.tokenFile as string | undefined) ?? process.env.CLUSTERGUARD_TOKEN_FILE;
    const token = tokenFile
      ? (
          await readFile(tokenFile, 'utf8').catch((err: unknown) => {
            throw new CliExit(
              exitCodes.usage,
              `cannot read ${tokenFile}: ${(err as Error).message}`,
            );
          })
        ).trim()
      : process.env.CLUSTERGUARD_TOKEN;
    if (!token) {
      throw new CliExit(
        exitCodes.usage,
        'no cluster token: pass --token-file, or set CLUSTERGUARD_TOKEN_FILE or CLUSTERGUARD_TOKEN',
      );
    }
    const tls = await loadClientTls({
      caFile: (o.agentCa as string | undefined) ?? process.env.CLUSTERGUARD_AGENT_CA,
      certFile: (o.agentCert as string | undefined) ?? process.env.CLUSTERGUARD_AGENT_CERT,
      keyFile: (o.agentKey as string | undefined) ?? process.env.CLUSTERGUARD_AGENT_KEY,
    });
    const url = (o.agent as string).replace(/\/$/, '');
    const pushed = await pushBundle({ url, token, ...(tls ? { tls } : {}) }, file);
    print(
      pushed,
      () =>
        `${pushed.symbolicName} ${pushed.version} sha256 ${pushed.sha256} (${pushed.bytes} bytes, ${pushed.stored})\n` +
        `roll it out: clusterguard bundle rollout --cluster <id> --name ${pushed.symbolicName} --sha256 ${pushed.sha256} --master <node>`,
    );
    done(exitCodes.ok);
  });

  example(
    startFlags(
      stepFlags(
        bundle
          .command('rollout')
          .description('start rolloutBundle (cg/<cluster>/bundle/<name>): install node by node')
          .requiredOption('--cluster <id>', 'cluster id')
          .requiredOption('--name <symbolic-name>', "the bundle's symbolic name (from push)")
          .requiredOption('--sha256 <hex>', 'the artifact (from push)')
          .option('--nodes <a,b,…>', 'the nodes, in order (default: the members)', list)
          .option('--master <address>', 'a member whose cluster.json lists the members')
          .option('--source <address>', 'the agent the bundle was pushed to')
          .option('--batch-size <n>', 'nodes at once after the canary (default 1)', num)
          .option('--canary <n>', 'nodes of a first batch; then wait for approve', num)
          .option('--max-failures <n>', 'failed nodes tolerated before rolling back', num)
          .option('--health-check <name>', "one of the agents' configured health checks")
          .option('--allow-downgrade', "install over a higher version a node's framework runs")
          .option('--dry-run', 'plan only'),
      ),
    ),
    'clusterguard bundle rollout --cluster dev --name com.example.app --sha256 <hex> --master 127.0.0.11 --canary 1 --watch',
  ).action(async function (this: Command) {
    const o = this.opts();
    done(
      await startRunbook(
        this,
        'rolloutBundle',
        rolloutBundleInputSchema,
        {
          clusterId: o.cluster,
          sha256: o.sha256,
          nodes: o.nodes,
          master: o.master,
          source: o.source,
          batchSize: o.batchSize,
          canary: o.canary,
          maxFailures: o.maxFailures,
          healthCheck: o.healthCheck,
          allowDowngrade: o.allowDowngrade,
          dryRun: o.dryRun,
          stepAttempts: o.stepAttempts,
          agentTimeoutSeconds: o.agentTimeout,
        },
        async (client, input, opts) => {
          const h = await startRolloutBundle(client, input, {
            symbolicName: o.name as string,
            ...opts,
          });
          return { workflowId: h.workflowId, runId: h.firstExecutionRunId, handle: h };
        },
      ),
    );
  });

  return program;
}

export async function main(argv: string[] = process.argv): Promise<number> {
  jsonMode = argv.includes('--json');
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return exitCode;
  } catch (err) {
    if (
      err instanceof CommanderError &&
      (err.code === 'commander.helpDisplayed' ||
        err.code === 'commander.help' ||
        err.code === 'commander.version')
    ) {
      return exitCodes.ok;
    }
    const c = classify(err);
    // Commander printed its own usage message already.
    if (jsonMode) {
      console.log(
        JSON.stringify({ error: { type: c.type, message: c.message, exitCode: c.code } }, null, 2),
      );
    } else if (!(err instanceof CommanderError)) {
      console.error(`clusterguard: ${c.message}`);
    }
    return c.code;
  }
}
