import type { Client } from '@temporalio/client';
import type { Command } from 'commander';
import { dataComponents } from '../../contracts/components.js';
import {
  allOpts,
  collect,
  defined,
  done,
  example,
  exitCodes,
  extraInput,
  middlewareOption,
  whole,
  print,
  required,
} from '../common.js';
import { clientApi, renderApi, withClient } from '../lazy.js';

/** `backup schedule …`: Temporal Schedules that start backupCluster. */
export function scheduleCommands(backup: Command): void {
  const schedule = backup
    .command('schedule')
    .description('Temporal Schedules that start backupCluster (overlap policy: skip)');
  example(
    schedule
      .command('create')
      .description('create a backup schedule (cg/<cluster>/backup-schedule/<name>)')
      .option('--cluster <id>', 'cluster id')
      .option('--master <address>', 'a member, normally the master (default: the record)')
      .option('--name <name>', 'schedule name', 'default')
      .option('--cron <expr>', 'cron expression, UTC (repeatable)', collect)
      .option('--every <interval>', 'or an interval: 30s, 15m, 6h, 1d')
      .addOption(middlewareOption(dataComponents))
      .option('--label <label>', 'each backup id becomes <timestamp>-<label>')
      .option('--keep <n>', 'retention: keep the newest n backups per node', whole('backups', 1))
      .option('--paused', 'create it paused')
      .option('--note <text>', 'a note shown with the schedule')
      .option('--input <json>', 'more backupCluster input fields as a JSON object'),
    'clusterguard backup schedule create --cluster dev --master 127.0.0.11 --cron "0 2 * * *" --keep 7',
    'clusterguard backup schedule create --cluster dev --master 127.0.0.11 --name hourly --every 1h',
  ).action(async function (this: Command) {
    const o = allOpts(this);
    required(this, o, ['cluster']);
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
    const { checked, createBackupSchedule, createBackupScheduleSchema } = await clientApi();
    const { scheduleTable } = await renderApi();
    checked(createBackupScheduleSchema, options, 'backup schedule');
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
      .option('--cluster <id>', 'cluster id'),
    'clusterguard backup schedule list --cluster dev --json',
  ).action(async function (this: Command) {
    const o = allOpts(this);
    required(this, o, ['cluster']);
    done(
      await withClient(this, async (client) => {
        const { listBackupSchedules } = await clientApi();
        const { scheduleTable } = await renderApi();
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
      .option('--cluster <id>', 'cluster id')
      .option('--name <name>', 'schedule name', 'default');
    if (withNote) cmd.option('--note <text>', 'why (shown with the schedule)');
    example(cmd, `clusterguard backup schedule ${name} --cluster dev --name default`).action(
      async function (this: Command) {
        const o = allOpts(this);
        required(this, o, ['cluster']);
        done(
          await withClient(this, async (client) => {
            const { describeBackupSchedule } = await clientApi();
            const { scheduleTable } = await renderApi();
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
    async (c, cl, n, note) => (await clientApi()).pauseBackupSchedule(c, cl, n, note),
    'paused',
    true,
  );
  scheduleAction(
    'unpause',
    'unpause a backup schedule',
    async (c, cl, n, note) => (await clientApi()).unpauseBackupSchedule(c, cl, n, note),
    'unpaused',
    true,
  );
  scheduleAction(
    'trigger',
    'fire a backup schedule now (skipped while its last backup runs)',
    async (c, cl, n) => (await clientApi()).triggerBackupSchedule(c, cl, n),
    'triggered',
  );
  scheduleAction(
    'delete',
    'delete a backup schedule (a backup it started goes on)',
    async (c, cl, n) => (await clientApi()).deleteBackupSchedule(c, cl, n),
    'deleted',
  );
}
