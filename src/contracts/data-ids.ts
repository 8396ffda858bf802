import { z } from 'zod';
import { dataComponents as components } from './components.js';

/**
 * The names the data runbooks share: what they back up, the kinds of archive, the workflow id
 * of a cluster's data runbooks, backup ids and retention. Workflow-safe: no Node built-ins.
 */

/**
 * What a data runbook backs up, in the order it runs on a node. The replicated middleware
 * holds cluster-wide data, so it is taken once, on the master; so is the application's bundle
 * set (docs/design.md, "The application's bundles in a backup"); the controller's folders are
 * per node.
 */
export const dataComponents = components;
export type DataComponentName = (typeof dataComponents)[number];
export const replicatedComponents = ['cockroach', 'zookeeper', 'kafka'] as const;
export type ReplicatedComponent = (typeof replicatedComponents)[number];

export function isReplicated(component: DataComponentName): component is ReplicatedComponent {
  return (replicatedComponents as readonly string[]).includes(component);
}

/**
 * Data of the whole cluster, not of one node: the replicated middleware and the bundle set. It
 * is taken once, on the master, and its archive gets a second copy on another member.
 */
export function isClusterWide(component: DataComponentName): boolean {
  return isReplicated(component) || component === 'bundles';
}

/** The folders `<kind>-data-archive/` a node keeps archives in (docs/design.md). */
export const archiveKinds = ['import', 'export', 'backup', 'restore'] as const;
export type ArchiveKind = (typeof archiveKinds)[number];

/** The workflow id every data runbook of a cluster shares, so that one runs at a time. */
export function dataWorkflowId(clusterId: string): string {
  return `cg/${clusterId}/data`;
}

/**
 * `20261122T074512Z`: sortable and safe in any file name. The same as `archiveTimestamp` in
 * src/config/layout.ts, which workflows may not import.
 */
export function archiveTimestamp(date: Date): string {
  return date
    .toISOString()
    .replace(/\.\d{3}Z$/, 'Z')
    .replace(/[-:]/g, '');
}

/** Letters, digits, `_` and `-`, starting with a letter or digit: never a path. */
export const labelPattern = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;
/** `<timestamp>` or `<timestamp>-<label>`; the archive is `<backupId>.zip`. */
export const backupIdPattern = /^(\d{8}T\d{6}Z)(?:-([A-Za-z0-9][A-Za-z0-9_-]{0,63}))?$/;

/** The instant a backup id names, or undefined when it names none (e.g. month 13). */
export function backupIdTime(id: string): Date | undefined {
  const m = backupIdPattern.exec(id);
  const stamp = m?.[1];
  if (!stamp) return undefined;
  const iso = `${stamp.slice(0, 4)}-${stamp.slice(4, 6)}-${stamp.slice(6, 8)}T${stamp.slice(9, 11)}:${stamp.slice(11, 13)}:${stamp.slice(13, 15)}Z`;
  const date = new Date(iso);
  // A rolled-over date (Feb 30 → Mar 2) names a day that does not exist.
  return Number.isNaN(date.getTime()) || archiveTimestamp(date) !== stamp ? undefined : date;
}

export function isBackupId(id: string): boolean {
  return backupIdTime(id) !== undefined;
}

export function backupIdOf(at: Date, label?: string): string {
  return label ? `${archiveTimestamp(at)}-${label}` : archiveTimestamp(at);
}

export const labelSchema = z
  .string()
  .regex(
    labelPattern,
    'expected 1–64 letters, digits, "_" or "-", starting with a letter or digit',
  );

export const backupIdSchema = z
  .string()
  .refine(
    isBackupId,
    'expected a backup id: the archive timestamp (e.g. 20261122T074512Z), optionally followed by -<label>',
  );

/** Newest first: by the instant, then by the whole id (labels of the same second). */
export function compareBackupIds(a: string, b: string): number {
  const ta = backupIdTime(a)?.getTime() ?? 0;
  const tb = backupIdTime(b)?.getTime() ?? 0;
  if (ta !== tb) return tb - ta;
  return a < b ? 1 : a > b ? -1 : 0;
}

/**
 * Retention: the newest `keep` backups stay, and so does every protected one (the runbook
 * protects the backup it has just verified, so the newest verified backup is never deleted).
 * Ids that are not backup ids are never touched.
 */
export function planRetention(
  ids: readonly string[],
  keep: number | undefined,
  protect: readonly string[] = [],
  age?: { maxAgeDays: number; now: Date },
): { keep: string[]; remove: string[] } {
  if (keep !== undefined && (!Number.isInteger(keep) || keep < 1)) {
    throw new Error('keep must be an integer ≥ 1');
  }
  if (age && !(age.maxAgeDays > 0)) throw new Error('maxAgeDays must be a positive number');
  const sorted = ids.filter(isBackupId).sort(compareBackupIds);
  const oldest = age ? age.now.getTime() - age.maxAgeDays * 86_400_000 : undefined;
  const kept: string[] = [];
  const remove: string[] = [];
  sorted.forEach((id, i) => {
    const tooMany = keep !== undefined && i >= keep;
    const tooOld = oldest !== undefined && (backupIdTime(id)?.getTime() ?? 0) < oldest;
    // The newest backup always stays, so that retention alone never leaves none.
    const stays = i === 0 || protect.includes(id) || (!tooMany && !tooOld);
    (stays ? kept : remove).push(id);
  });
  return { keep: kept, remove };
}
