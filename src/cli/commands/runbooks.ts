import type { Command } from 'commander';
import { dataComponents, membershipMiddleware } from '../../contracts/components.js';
import {
  done,
  example,
  list,
  middlewareOption,
  agentTimeout,
  decimal,
  whole,
  required,
  startFlags,
  stepFlags,
} from '../common.js';
import { startCommand } from '../lazy.js';

/** The commands that start a runbook now: ping, the membership and the data runbooks. */
export function runbookCommands(program: Command): { backup: Command } {
  example(
    startFlags(
      program
        .command('ping')
        .description('start pingCluster: ask every node agent who it is and what it runs')
        .option('--cluster <id>', 'cluster id')
        .requiredOption('--nodes <a,b,…>', 'node addresses; the first is the master', list)
        .option(
          '--hold-seconds <n>',
          'keep each probe busy this long (0–3600)',
          whole('seconds', 0, 3600),
        )
        .option(
          '--agent-timeout <seconds>',
          'when a silent node shows as unreachable',
          agentTimeout,
        )
        .option('--workflow-id <id>', 'default cg/<cluster>/ping/<random>'),
    ),
    'clusterguard ping --cluster dev --nodes 127.0.0.11,127.0.0.12,127.0.0.13 --wait',
  ).action(async function (this: Command) {
    const o = this.opts();
    const wid = o.workflowId as string | undefined;
    done(
      await startCommand(
        this,
        'pingCluster',
        {
          clusterId: o.cluster,
          nodes: o.nodes,
          holdSeconds: o.holdSeconds,
          agentTimeoutSeconds: o.agentTimeout,
        },
        wid ? { workflowId: wid } : {},
      ),
    );
  });

  const membershipCommand = (name: string, description: string) =>
    stepFlags(
      startFlags(
        program
          .command(name)
          .description(description)
          .option('--cluster <id>', 'cluster id')
          .addOption(middlewareOption(membershipMiddleware))
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
      await startCommand(this, 'bootstrapCluster', {
        ...membershipFields(o),
        nodes: o.nodes,
        decommissionNodes: o.decommissionNodes,
      }),
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
      await startCommand(this, 'joinNode', {
        ...membershipFields(o),
        node: o.node,
        master: o.master,
      }),
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
      await startCommand(this, 'rejoinNode', {
        ...membershipFields(o),
        node: o.node,
        master: o.master,
      }),
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
      await startCommand(this, 'decommissionNodes', {
        ...membershipFields(o),
        nodes: o.nodes,
        add: o.add,
        master: o.master,
        newMaster: o.newMaster,
      }),
    );
  });

  const dataFields = (o: Record<string, unknown>) => ({
    clusterId: o.cluster,
    master: o.master,
    stepAttempts: o.stepAttempts,
    agentTimeoutSeconds: o.agentTimeout,
  });
  const dataCommand = (cmd: Command) =>
    stepFlags(
      startFlags(
        cmd
          .option('--cluster <id>', 'cluster id')
          .option('--master <address>', 'a member, normally the master (default: the record)'),
      ),
    );

  const backup = example(
    dataCommand(
      program
        .command('backup')
        .description('start backupCluster now (as cg/<cluster>/data); or manage schedules')
        .addOption(middlewareOption(dataComponents))
        .option('--label <label>', 'the backup id becomes <timestamp>-<label>')
        .option('--keep <n>', 'retention: keep the newest n backups per node', whole('backups', 1))
        .option(
          '--max-age-days <days>',
          'retention: delete backups older than this',
          decimal('days'),
        )
        .option('--dry-run', 'return the plan; change nothing'),
    ),
    'clusterguard backup --cluster dev --master 127.0.0.11 --keep 7 --watch',
    'clusterguard backup schedule create --cluster dev --master 127.0.0.11 --cron "0 2 * * *" --keep 7',
  ).action(async function (this: Command) {
    const o = this.opts();
    required(this, o, ['cluster']);
    done(
      await startCommand(this, 'backupCluster', {
        ...dataFields(o),
        middleware: o.middleware,
        label: o.label,
        keep: o.keep,
        maxAgeDays: o.maxAgeDays,
        dryRun: o.dryRun,
      }),
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
      await startCommand(this, 'verifyBackup', {
        ...dataFields(o),
        backupId: o.backupId,
        restoreTest: o.restoreTest,
      }),
    );
  });

  example(
    dataCommand(
      program
        .command('restore')
        .description('start restoreCluster: check the whole backup, then restore it')
        .requiredOption('--backup-id <id>', 'e.g. 20261122T074512Z')
        .addOption(middlewareOption(dataComponents))
        .option('--no-keep-current-data', 'do not back up the data the restore replaces first')
        .option('--dry-run', 'check and return the plan; change nothing'),
    ),
    'clusterguard restore --cluster dev --master 127.0.0.11 --backup-id 20261122T074512Z --watch',
  ).action(async function (this: Command) {
    const o = this.opts();
    done(
      await startCommand(this, 'restoreCluster', {
        ...dataFields(o),
        backupId: o.backupId,
        middleware: o.middleware,
        keepCurrentData: o.keepCurrentData === false ? false : undefined,
        dryRun: o.dryRun,
      }),
    );
  });

  example(
    dataCommand(
      program
        .command('export')
        .description("start exportData: the cluster's data as an archive for another cluster")
        .addOption(middlewareOption(dataComponents))
        .option('--label <label>', 'the export id becomes <timestamp>-<label>')
        .option('--dry-run', 'return the plan; change nothing'),
    ),
    'clusterguard export --cluster dev --master 127.0.0.11 --label move --wait',
  ).action(async function (this: Command) {
    const o = this.opts();
    done(
      await startCommand(this, 'exportData', {
        ...dataFields(o),
        middleware: o.middleware,
        label: o.label,
        dryRun: o.dryRun,
      }),
    );
  });

  example(
    dataCommand(
      program
        .command('import')
        .description("start importData: load an archive from a node's import-data-archive folder")
        .requiredOption('--archive <id>', 'the archive id, e.g. 20261122T074512Z-move')
        .option('--node <address>', 'the member that holds it (default the master)')
        .addOption(middlewareOption(dataComponents))
        .option('--no-keep-current-data', 'do not back up the data the import changes first')
        .option('--dry-run', 'check and return the plan; change nothing'),
    ),
    'clusterguard import --cluster dev --master 127.0.0.11 --archive 20261122T074512Z-move --watch',
  ).action(async function (this: Command) {
    const o = this.opts();
    done(
      await startCommand(this, 'importData', {
        ...dataFields(o),
        archive: o.archive,
        node: o.node,
        middleware: o.middleware,
        keepCurrentData: o.keepCurrentData === false ? false : undefined,
        dryRun: o.dryRun,
      }),
    );
  });

  return { backup };
}
