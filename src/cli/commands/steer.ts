import type { Client } from '@temporalio/client';
import type { Command } from 'commander';
import {
  ClusterGuardError,
  abortRunbook,
  getProgress,
  listRunbooks,
  pauseRunbook,
  resumeRunbook,
  retryStep,
  runbookOutcome,
  skipNode,
  type Progress,
} from '../../client/index.js';
import { defined, done, example, exitCodes, num, print } from '../common.js';
import { outcomeLine, progressTable, runbookTable } from '../render.js';
import { innermostMessage, watchRun, withClient } from '../run.js';

/** A command that sends an update to `<workflow-id>` and prints the runbook's answer. */
export const updateCommand = (
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

/** Following and steering any runbook by its workflow id: status, watch, signals, updates, list. */
export function steerCommands(program: Command): void {
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

  updateCommand(
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
  updateCommand(
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
  updateCommand(
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
}
