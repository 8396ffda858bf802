import type { Client } from '@temporalio/client';
import type { Command } from 'commander';
import type { Progress } from '../../client/index.js';
import { defined, done, example, exitCodes, print, seconds, whole } from '../common.js';
import { historyRows, historyTable } from '../history.js';
import { clientApi, renderApi, withClient } from '../lazy.js';

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
      .description(
        'show a runbook: its state and the `progress` query; exit 1 failed, 6 parked, else 0',
      )
      .argument('<workflow-id>'),
    'clusterguard status cg/dev/membership',
  ).action(async function (this: Command, workflowId: string) {
    done(
      await withClient(this, async (client) => {
        const { getProgress, runbookOutcome } = await clientApi();
        const { operatorWait, outcomeLine, progressTable } = await renderApi();
        const { innermostMessage, outcomeCode } = await import('../run.js');
        const outcome = await runbookOutcome(client, workflowId);
        let progress: Progress | undefined;
        let noProgress: string | undefined;
        try {
          progress = await getProgress(client, workflowId, outcome.runId);
        } catch (err) {
          noProgress = innermostMessage(err);
        }
        const waiting =
          outcome.status === 'RUNNING' && progress ? operatorWait(progress) : undefined;
        print({ ...outcome, progress: progress ?? null, ...(waiting ? { waiting } : {}) }, () =>
          [
            ...(progress ? [progressTable(progress)] : [`(no progress: ${noProgress ?? '?'})`]),
            outcomeLine(outcome),
            ...(waiting ? [`waiting for an operator: ${waiting}`] : []),
          ].join('\n'),
        );
        if (outcome.status !== 'RUNNING') return outcomeCode(outcome);
        return waiting ? exitCodes.waiting : exitCodes.ok;
      }),
    );
  });

  example(
    program
      .command('watch')
      .description(
        'live progress bars (one per node) until the runbook ends (exit by outcome), parks ' +
          '(exit 6) or --timeout passes (exit 7)',
      )
      .argument('<workflow-id>')
      .option('--interval <seconds>', 'how often to ask (default 1)', seconds)
      .option('--timeout <seconds>', 'stop watching after this long (exit 7)', seconds),
    'clusterguard watch cg/dev/membership --timeout 600',
  ).action(async function (this: Command, workflowId: string) {
    const o = this.opts<{ interval?: number; timeout?: number }>();
    done(
      await withClient(this, async (client) =>
        (await import('../run.js')).waitRun(client, workflowId, {
          intervalMs: (o.interval ?? 1) * 1000,
          bars: true,
          ...(o.timeout ? { timeoutMs: o.timeout * 1000 } : {}),
        }),
      ),
    );
  });

  example(
    program
      .command('result')
      .description(
        "a runbook's result; waits for its end (exit by outcome), unless it parks (exit 6) " +
          'or --timeout passes (exit 7)',
      )
      .argument('<workflow-id>')
      .option('--timeout <seconds>', 'stop waiting after this long (exit 7)', seconds),
    'clusterguard result cg/dev/data -o yaml',
  ).action(async function (this: Command, workflowId: string) {
    const o = this.opts<{ timeout?: number }>();
    done(
      await withClient(this, async (client) =>
        (await import('../run.js')).waitRun(client, workflowId, {
          intervalMs: 1000,
          bars: false,
          ...(o.timeout ? { timeoutMs: o.timeout * 1000 } : {}),
        }),
      ),
    );
  });

  example(
    program
      .command('cancel')
      .description(
        'request cancellation: the runbook stops at its next step boundary (prefer abort ' +
          'for a parked one: it says what it left)',
      )
      .argument('<workflow-id>'),
    'clusterguard cancel cg/dev/ping/1',
  ).action(async function (this: Command, workflowId: string) {
    done(
      await withClient(this, async (client) => {
        const { handleOf } = await clientApi();
        await handleOf(client, workflowId).cancel();
        print(
          { workflowId, cancel: 'requested' },
          () => `cancellation requested for ${workflowId}`,
        );
        return exitCodes.ok;
      }),
    );
  });

  example(
    program
      .command('history')
      .description("a run's event history: id, time, type and the name it concerns")
      .argument('<workflow-id>')
      .option('--limit <n>', 'only the last n events', whole('events', 1)),
    'clusterguard history cg/dev/membership --limit 20',
  ).action(async function (this: Command, workflowId: string) {
    const o = this.opts<{ limit?: number }>();
    done(
      await withClient(this, async (client) => {
        const { handleOf } = await clientApi();
        const history = await handleOf(client, workflowId).fetchHistory();
        const rows = (await historyRows(history)).slice(-(o.limit ?? 0));
        print(rows, () => historyTable(rows));
        return exitCodes.ok;
      }),
    );
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
        const { pauseRunbook } = await clientApi();
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
        const { resumeRunbook } = await clientApi();
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
    async (client, wid, o) => (await clientApi()).retryStep(client, wid, defined({ step: o.step })),
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
    async (client, wid, o) =>
      (await clientApi()).skipNode(client, wid, {
        node: o.node as string,
        reason: o.reason as string,
      }),
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
    async (client, wid, o) =>
      (await clientApi()).abortRunbook(client, wid, { reason: o.reason as string }),
  );

  example(
    program
      .command('list')
      .description("list a cluster's runbooks (search attributes ClusterId, Runbook), newest first")
      .option('--cluster <id>', 'cluster id')
      .option('--runbook <type>', 'only this workflow type, e.g. backupCluster')
      .option('--running', 'only running ones')
      .option('--limit <n>', 'at most n (default 50)', whole('runbooks', 1)),
    'clusterguard list --cluster dev --running',
  ).action(async function (this: Command) {
    const o = this.opts();
    done(
      await withClient(this, async (client) => {
        const { listRunbooks } = await clientApi();
        const { runbookTable } = await renderApi();
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
