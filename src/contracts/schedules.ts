import { z } from 'zod';
import { backupClusterInputSchema, type BackupClusterResult } from './data-runbooks.js';

/**
 * Backup schedules (issue 5): a Temporal Schedule per cluster and name that starts
 * `scheduledBackup`, which runs `backupCluster` as a child under the cluster's data workflow id.
 * Workflow-safe: no Node built-ins.
 */

/** Lower-case letters, digits and dashes: part of the schedule id, so never a path. */
export const scheduleNameSchema = z
  .string()
  .regex(
    /^[a-z0-9][a-z0-9-]{0,39}$/,
    'expected 1–40 lower-case letters, digits or "-", starting with a letter or digit',
  );

export function backupSchedulePrefix(clusterId: string): string {
  return `cg/${clusterId}/backup-schedule/`;
}

export function backupScheduleId(clusterId: string, name: string): string {
  return `${backupSchedulePrefix(clusterId)}${name}`;
}

/**
 * The id the schedule gives its `scheduledBackup` runs. Temporal appends `-<nominal time>` to
 * it (server 1.29 ignores the `keepOriginalWorkflowId` policy), which is why the schedule does
 * not start `backupCluster` itself: that runbook must run as `cg/<cluster>/data`.
 */
export function scheduledBackupWorkflowId(clusterId: string, name: string): string {
  return `cg/${clusterId}/scheduled-backup/${name}`;
}

/** `30s`, `15m`, `6h`, `1d`: the interval between two fires. */
export const intervalSchema = z
  .string()
  .regex(/^[1-9]\d{0,5}[smhd]$/, 'expected a number and a unit s, m, h or d, e.g. 6h');

/** The input of `scheduledBackup`: the backupCluster input it hands on. */
export const scheduledBackupInputSchema = backupClusterInputSchema;
export type ScheduledBackupInput = z.input<typeof scheduledBackupInputSchema>;

export interface ScheduledBackupResult {
  runbook: 'scheduledBackup';
  clusterId: string;
  /** Always `cg/<clusterId>/data`. */
  backupWorkflowId: string;
  backupRunId: string;
  backup: BackupClusterResult;
}
