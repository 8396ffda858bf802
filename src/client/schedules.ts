import { startMetadata } from './start-metadata.js';
import {
  ScheduleAlreadyRunning,
  ScheduleOverlapPolicy,
  type Client,
  type ScheduleDescription,
} from '@temporalio/client';
import { z } from 'zod';
import { orchestratorTaskQueue } from '../contracts/addresses.js';
import { clusterIdSchema } from '../contracts/ping.js';
import {
  backupScheduleId,
  backupSchedulePrefix,
  intervalSchema,
  scheduleNameSchema,
  scheduledBackupInputSchema,
  scheduledBackupWorkflowId,
  type ScheduledBackupInput,
} from '../contracts/schedules.js';
import { clusterIdKey, runbookKey } from '../contracts/search-attributes.js';
import { InvalidInputError } from './errors.js';
import { checked } from '../contracts/validation.js';

/**
 * Backup schedules: Temporal Schedules that start `scheduledBackup` (which runs `backupCluster`
 * as `cg/<cluster>/data`), with overlap policy SKIP, so a backup that is still running or parked
 * is never joined by a second one. Visible in the Web UI's Schedules page.
 */

export const createBackupScheduleSchema = z
  .object({
    /** Part of the schedule id `cg/<cluster>/backup-schedule/<name>`. */
    name: scheduleNameSchema.default('default'),
    /** Cron expressions (UTC), e.g. `0 2 * * *`; or `every`. */
    cron: z.array(z.string().min(1)).min(1).optional(),
    every: intervalSchema.optional(),
    /** The backupCluster input of every fire. */
    input: scheduledBackupInputSchema,
    /** Create it paused (unpause to start). */
    paused: z.boolean().default(false),
    note: z.string().max(500).optional(),
  })
  .strict()
  .refine((o) => (o.cron ? 1 : 0) + (o.every ? 1 : 0) === 1, {
    message: 'give exactly one of cron and every',
    path: ['cron'],
  });
export type CreateBackupScheduleOptions = z.input<typeof createBackupScheduleSchema>;

/** What `list` and `describe` answer, in plain JSON. */
export interface BackupScheduleInfo {
  scheduleId: string;
  clusterId: string;
  name: string;
  cron?: string[];
  every?: string;
  paused: boolean;
  note?: string;
  input?: ScheduledBackupInput;
  nextRuns: string[];
  recent: { scheduledAt: string; takenAt: string; workflowId: string; runId: string }[];
  running: { workflowId: string; runId: string }[];
  actionsTaken?: number;
  skippedOverlap?: number;
}

/** What the schedule's memo keeps: the operator's own spec (the server stores calendars). */
interface ScheduleMemo {
  cron?: string[];
  every?: string;
}

function scheduleId(clusterId: string, name: string): string {
  checked(clusterIdSchema, clusterId, 'cluster id');
  checked(scheduleNameSchema, name, 'schedule name');
  return backupScheduleId(clusterId, name);
}

export async function createBackupSchedule(
  client: Client,
  options: CreateBackupScheduleOptions,
  connection: { taskQueue?: string } = {},
): Promise<BackupScheduleInfo> {
  const o = checked(createBackupScheduleSchema, options, 'backup schedule');
  const { clusterId } = o.input;
  const id = backupScheduleId(clusterId, o.name);
  const memo: ScheduleMemo = o.cron ? { cron: o.cron } : { every: o.every };
  try {
    await client.schedule.create({
      scheduleId: id,
      spec: o.cron ? { cronExpressions: o.cron } : { intervals: [{ every: o.every as string }] },
      action: {
        type: 'startWorkflow',
        workflowType: 'scheduledBackup',
        workflowId: scheduledBackupWorkflowId(clusterId, o.name),
        // The input as given: defaults are applied by the runbook of each fire.
        args: [options.input],
        taskQueue: connection.taskQueue ?? orchestratorTaskQueue,
        ...startMetadata('scheduledBackup', { clusterId }, undefined, options.input),
        typedSearchAttributes: [
          { key: clusterIdKey, value: clusterId },
          { key: runbookKey, value: 'scheduledBackup' },
        ],
      },
      policies: { overlap: ScheduleOverlapPolicy.SKIP },
      state: { paused: o.paused, ...(o.note ? { note: o.note } : {}) },
      memo: { clusterguard: memo },
    });
  } catch (err) {
    if (err instanceof ScheduleAlreadyRunning) {
      throw new InvalidInputError(
        `backup schedule ${o.name} of cluster ${clusterId} exists already (${id}): delete it ` +
          'first or give another --name',
        { cause: err },
      );
    }
    throw err;
  }
  return describeBackupSchedule(client, clusterId, o.name);
}

function infoOf(d: ScheduleDescription, clusterId: string): BackupScheduleInfo {
  const memo = (d.memo?.clusterguard ?? {}) as ScheduleMemo;
  return {
    scheduleId: d.scheduleId,
    clusterId,
    name: d.scheduleId.slice(backupSchedulePrefix(clusterId).length),
    ...(memo.cron ? { cron: memo.cron } : {}),
    ...(memo.every ? { every: memo.every } : {}),
    paused: d.state.paused,
    ...(d.state.note ? { note: d.state.note } : {}),
    input: d.action.args?.[0] as ScheduledBackupInput | undefined,
    nextRuns: d.info.nextActionTimes.map((t) => t.toISOString()),
    recent: d.info.recentActions.map((a) => ({
      scheduledAt: a.scheduledAt.toISOString(),
      takenAt: a.takenAt.toISOString(),
      workflowId: a.action.workflow.workflowId,
      runId: a.action.workflow.firstExecutionRunId,
    })),
    running: d.info.runningActions.map((a) => ({
      workflowId: a.workflow.workflowId,
      runId: a.workflow.firstExecutionRunId,
    })),
    actionsTaken: d.info.numActionsTaken,
    skippedOverlap: d.info.numActionsSkippedOverlap,
  };
}

/** Throws `ScheduleNotFoundError` when there is none. */
export async function describeBackupSchedule(
  client: Client,
  clusterId: string,
  name: string,
): Promise<BackupScheduleInfo> {
  const d = await client.schedule.getHandle(scheduleId(clusterId, name)).describe();
  return infoOf(d, clusterId);
}

/**
 * The backup schedules of a cluster. The server's list is eventually consistent (a schedule
 * just created may be missing for a second); each one found is described afresh.
 */
export async function listBackupSchedules(
  client: Client,
  clusterId: string,
): Promise<BackupScheduleInfo[]> {
  checked(clusterIdSchema, clusterId, 'cluster id');
  const prefix = backupSchedulePrefix(clusterId);
  const found: BackupScheduleInfo[] = [];
  for await (const s of client.schedule.list()) {
    if (!s.scheduleId.startsWith(prefix)) continue;
    try {
      found.push(infoOf(await client.schedule.getHandle(s.scheduleId).describe(), clusterId));
    } catch {
      // deleted since the list was read
    }
  }
  return found.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

export async function pauseBackupSchedule(
  client: Client,
  clusterId: string,
  name: string,
  note = 'paused with clusterguard',
): Promise<void> {
  await client.schedule.getHandle(scheduleId(clusterId, name)).pause(note);
}

export async function unpauseBackupSchedule(
  client: Client,
  clusterId: string,
  name: string,
  note = 'unpaused with clusterguard',
): Promise<void> {
  await client.schedule.getHandle(scheduleId(clusterId, name)).unpause(note);
}

/** Fires now; skipped, like a timed fire, while the schedule's last backup still runs. */
export async function triggerBackupSchedule(
  client: Client,
  clusterId: string,
  name: string,
): Promise<void> {
  await client.schedule.getHandle(scheduleId(clusterId, name)).trigger(ScheduleOverlapPolicy.SKIP);
}

/** Deletes the schedule; a backup it started goes on. */
export async function deleteBackupSchedule(
  client: Client,
  clusterId: string,
  name: string,
): Promise<void> {
  await client.schedule.getHandle(scheduleId(clusterId, name)).delete();
}
