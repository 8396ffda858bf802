import { z } from 'zod';
import { nodeAddressSchema } from './addresses.js';
import type { PlannedStep } from './membership-runbooks.js';
import { clusterIdSchema } from './ping.js';

/**
 * Inputs, manifests, plans and results of the data runbooks (backupCluster, verifyBackup,
 * restoreCluster) and the pure rules they share: backup ids, retention, manifest checks.
 * Workflow-safe: no Node built-ins.
 */

/**
 * What a data runbook backs up, in the order it runs on a node. The replicated middleware
 * holds cluster-wide data, so it is taken once, on the master; the controller's folders are
 * per node.
 */
export const dataComponents = ['cockroach', 'zookeeper', 'kafka', 'controller'] as const;
export type DataComponentName = (typeof dataComponents)[number];
export const replicatedComponents = ['cockroach', 'zookeeper', 'kafka'] as const;
export type ReplicatedComponent = (typeof replicatedComponents)[number];

export function isReplicated(component: DataComponentName): component is ReplicatedComponent {
  return (replicatedComponents as readonly string[]).includes(component);
}

/** The folders `<kind>-data-archive/` a node keeps archives in (seed 001 §1). */
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

// --- inputs -------------------------------------------------------------------------------------

const componentListSchema = z
  .array(z.enum(dataComponents))
  .min(1, 'expected at least one of cockroach, zookeeper, kafka, controller')
  .transform((list) => dataComponents.filter((c) => list.includes(c)));

const dataRunbookOptions = {
  clusterId: clusterIdSchema,
  /**
   * A member of the cluster, normally its master: the runbook reads this node's cluster.json
   * and works with the master it names (a workflow knows no node addresses of its own).
   */
  master: nodeAddressSchema,
  /** Attempts of a step before it parks and waits for an operator (retryStep, abort). */
  stepAttempts: z.number().int().min(1).max(100).default(5),
  /** How long an agent may leave a step unclaimed before `progress` shows its node unreachable. */
  agentTimeoutSeconds: z.number().int().min(1).max(3600).default(30),
};

export const backupClusterInputSchema = z
  .object({
    ...dataRunbookOptions,
    /**
     * What to back up. Default: the middleware the master's agent enables, plus the controller
     * on every member whose agent configures controller data folders.
     */
    middleware: componentListSchema.optional(),
    /** Appended to the backup id: `20261122T074512Z-<label>`. */
    label: labelSchema.optional(),
    /** Retention: keep the newest N backups on each node that took part (the new one included). */
    keep: z.number().int().min(1).max(10_000).optional(),
    /**
     * Retention: delete backups older than this many days on each node that took part. With
     * `keep`, a backup goes when either rule says so; the one just taken always stays.
     */
    maxAgeDays: z.number().positive().max(36_500).optional(),
    /** Return the plan; change nothing. */
    dryRun: z.boolean().default(false),
  })
  .strict();
export type BackupClusterInput = z.input<typeof backupClusterInputSchema>;
export type BackupClusterParams = z.output<typeof backupClusterInputSchema>;

export const verifyBackupInputSchema = z
  .object({
    ...dataRunbookOptions,
    backupId: backupIdSchema,
    /**
     * Besides the checksums, a restore test: the node holding the replicated data unpacks its
     * archive into a scratch folder and reads every dump back the way a restore would (every
     * znode, every Kafka message), without touching live data.
     */
    restoreTest: z.boolean().default(false),
  })
  .strict();
export type VerifyBackupInput = z.input<typeof verifyBackupInputSchema>;

export const restoreClusterInputSchema = z
  .object({
    ...dataRunbookOptions,
    backupId: backupIdSchema,
    /** What to restore; default everything the backup holds. */
    middleware: componentListSchema.optional(),
    /**
     * Before any data is replaced, back up what the restore replaces as
     * `<timestamp>-before-restore`, verified; a failed restore can go back to it.
     */
    keepCurrentData: z.boolean().default(true),
    /** Validate the backup and return the plan; change nothing. */
    dryRun: z.boolean().default(false),
  })
  .strict();
export type RestoreClusterInput = z.input<typeof restoreClusterInputSchema>;
export type RestoreClusterParams = z.output<typeof restoreClusterInputSchema>;

/**
 * An export is a backup's archive meant for another cluster: the replicated middleware, once,
 * on the master (and the master's controller folders when asked for), in
 * `export-data-archive/<exportId>.zip` with the same manifest.
 */
export const exportDataInputSchema = z
  .object({
    ...dataRunbookOptions,
    /** What to export; default the middleware the master's agent enables. */
    middleware: componentListSchema.optional(),
    /** Appended to the export id: `20261122T074512Z-<label>`. */
    label: labelSchema.optional(),
    dryRun: z.boolean().default(false),
  })
  .strict();
export type ExportDataInput = z.input<typeof exportDataInputSchema>;

/**
 * Loads an export (of this or another cluster) into the running cluster, merging it with the
 * data there: ZooKeeper znodes are created or overwritten, Kafka messages appended. The archive
 * is named, never given as a path: `import-data-archive/<archive>.zip` on `node`, put there by
 * an upload to the agent (`POST /v1/cluster/data/actions/import`) or by the operator.
 */
export const importDataInputSchema = z
  .object({
    ...dataRunbookOptions,
    /** The archive's id, e.g. `20261122T074512Z-move` for `20261122T074512Z-move.zip`. */
    archive: backupIdSchema,
    /** The member whose import-data-archive folder holds it; default the master. */
    node: nodeAddressSchema.optional(),
    /** What to import; default everything the archive holds. */
    middleware: componentListSchema.optional(),
    /** As for a restore: the data an import changes is backed up first as `<ts>-before-import`. */
    keepCurrentData: z.boolean().default(true),
    dryRun: z.boolean().default(false),
  })
  .strict();
export type ImportDataInput = z.input<typeof importDataInputSchema>;

// --- the manifest inside every archive ----------------------------------------------------------

export const archiveManifestFile = 'manifest.json';
export const archiveManifestFormat = 'clusterguard-data-archive/1';

/** Why `rel` may not name a file of an archive, or undefined when it is `<component>/<…>`. */
export function unsafeManifestPath(rel: string): string | undefined {
  if (rel.includes('\\') || rel.includes('\0')) return 'has a backslash or NUL in it';
  const parts = rel.split('/');
  if (parts.some((p) => p === '' || p === '.' || p === '..')) {
    return 'is not a plain relative path (empty, "." or ".." segment)';
  }
  if (parts.length < 2 || !(dataComponents as readonly string[]).includes(parts[0] ?? '')) {
    return 'is not inside a component folder (cockroach/, zookeeper/, kafka/, controller/)';
  }
  return undefined;
}

export const manifestFileSchema = z.object({
  path: z.string().superRefine((p, ctx) => {
    const bad = unsafeManifestPath(p);
    if (bad) ctx.addIssue({ code: 'custom', message: `${JSON.stringify(p)} ${bad}` });
  }),
  bytes: z.number().int().nonnegative(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/, 'expected a lower-case hex sha256'),
});
export type ManifestFile = z.infer<typeof manifestFileSchema>;

/** Which node holds which components of a backup. */
export const archivePlanSchema = z.array(
  z.object({ node: nodeAddressSchema, components: z.array(z.enum(dataComponents)).min(1) }),
);
export type ArchivePlan = z.infer<typeof archivePlanSchema>;

/** Fields every archive of one backup shares; the runbook hands them to each node. */
export const manifestCommonSchema = z.object({
  clusterId: clusterIdSchema,
  /** The cluster's members when the backup was taken; master first. */
  members: z.array(nodeAddressSchema).min(1),
  workflowId: z.string().min(1),
  runId: z.string().min(1),
  /** The workflow's clock when the backup started (ISO-8601). */
  createdAt: z.string().min(1),
  /** The Kafka cluster id the cluster ran with, when it had one. */
  clusterUuid: z.string().optional(),
  /** Every node that holds an archive of this backup, and what it holds. */
  archives: archivePlanSchema,
  /** Middleware versions, by component (probed on the node when its agent can). */
  versions: z.record(z.string(), z.string()).optional(),
});
export type ManifestCommon = z.infer<typeof manifestCommonSchema>;

export const archiveManifestSchema = manifestCommonSchema.extend({
  format: z.literal(archiveManifestFormat),
  op: z.enum(['backup', 'export']),
  backupId: backupIdSchema,
  /** The node this archive was written on. */
  node: nodeAddressSchema,
  components: z.array(z.enum(dataComponents)).min(1),
  /** Every file of the archive except the manifest itself, in code-unit order. */
  files: z.array(manifestFileSchema),
  /** Files of the working folders that were not archived (links, sockets): never followed. */
  skipped: z.array(z.string()).default([]),
});
export type ArchiveManifest = z.infer<typeof archiveManifestSchema>;
/** A manifest without its file list: what results and comparisons carry. */
export type ManifestSummary = Omit<ArchiveManifest, 'files'>;

function byCodeUnit(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * Every difference between the files an archive holds and those its manifest lists: missing,
 * extra, other size, other sha256. Empty when they agree.
 */
export function compareManifest(
  expected: readonly ManifestFile[],
  actual: readonly ManifestFile[],
): string[] {
  const problems: string[] = [];
  const want = new Map(expected.map((f) => [f.path, f]));
  const have = new Map(actual.map((f) => [f.path, f]));
  for (const p of [...new Set([...want.keys(), ...have.keys()])].sort(byCodeUnit)) {
    const w = want.get(p);
    const h = have.get(p);
    if (!h) problems.push(`${p} is missing (the manifest lists it)`);
    else if (!w) problems.push(`${p} is not in the manifest`);
    else if (w.bytes !== h.bytes)
      problems.push(`${p} has ${h.bytes} bytes, the manifest says ${w.bytes}`);
    else if (w.sha256 !== h.sha256)
      problems.push(`${p} has sha256 ${h.sha256}, the manifest says ${w.sha256}`);
  }
  return problems;
}

// --- plans ----------------------------------------------------------------------------------------

/**
 * Which node backs up what: the replicated middleware once on the master (its data is
 * cluster-wide; CockroachDB's BACKUP is cluster-wide too), the controller on each node listed.
 * Nodes with nothing to back up are left out; the master comes first.
 */
export function planBackup(
  master: string,
  members: readonly string[],
  replicated: readonly ReplicatedComponent[],
  controllerNodes: readonly string[],
): ArchivePlan {
  const ordered = [master, ...members.filter((m) => m !== master)];
  return ordered.flatMap((node) => {
    const components = dataComponents.filter((c) =>
      c === 'controller'
        ? controllerNodes.includes(node)
        : node === master && (replicated as readonly string[]).includes(c),
    );
    return components.length ? [{ node, components }] : [];
  });
}

/** What differs between the backup's members and the cluster's, or undefined when none. */
export function membersDifference(
  backup: readonly string[],
  current: readonly string[],
): string | undefined {
  const gone = backup.filter((n) => !current.includes(n));
  const added = current.filter((n) => !backup.includes(n));
  if (!gone.length && !added.length) return undefined;
  return (
    `the backup was taken of [${backup.join(', ')}], the cluster is now [${current.join(', ')}]` +
    (gone.length ? `; no longer members: ${gone.join(', ')}` : '') +
    (added.length ? `; new members: ${added.join(', ')}` : '')
  );
}

/** One member's answer when asked for its archive of a backup. */
export interface ArchiveCheck {
  node: string;
  present: boolean;
  /** Set when the archive was found and verified. */
  archive?: DataArchive & { files: number; dataBytes: number; manifest: ManifestSummary };
  /** Why the archive that was found failed verification. */
  problem?: string;
}

/**
 * Whether the archives the members hold make up backup `backupId` of `clusterId`: each one
 * verified, all from the same run, every node of the backup's plan answering with its archive.
 * Returns the problems (empty when the backup is whole) and the plan found in the manifests.
 */
export function evaluateBackup(
  clusterId: string,
  backupId: string,
  checks: readonly ArchiveCheck[],
): { problems: string[]; manifest?: ManifestSummary } {
  const problems: string[] = [];
  for (const c of checks) if (c.present && c.problem) problems.push(`${c.node}: ${c.problem}`);
  const good = checks.flatMap((c) => (c.archive ? [c.archive] : []));
  const first = good[0];
  if (!first) {
    if (!checks.some((c) => c.present)) {
      problems.push(
        `no member has backup ${backupId} (asked ${checks.map((c) => c.node).join(', ')})`,
      );
    }
    return { problems };
  }
  const manifest = first.manifest;
  if (manifest.clusterId !== clusterId) {
    problems.push(
      `backup ${backupId} is of cluster ${manifest.clusterId}, not ${clusterId} (an import, not a restore)`,
    );
  }
  for (const g of good.slice(1)) {
    if (g.manifest.workflowId !== manifest.workflowId || g.manifest.runId !== manifest.runId) {
      problems.push(
        `${g.node}: its archive was written by ${g.manifest.workflowId} run ${g.manifest.runId}, ` +
          `${first.node}'s by ${manifest.workflowId} run ${manifest.runId}: not one backup`,
      );
    }
  }
  for (const g of good) {
    if (g.manifest.node !== g.node) {
      problems.push(`${g.node}: its archive was written on ${g.manifest.node}`);
    }
  }
  for (const { node } of manifest.archives) {
    const c = checks.find((x) => x.node === node);
    if (!c) problems.push(`${node} holds part of the backup but is not a member now`);
    else if (!c.present) problems.push(`${node}: its archive of backup ${backupId} is missing`);
  }
  for (const c of checks) {
    if (c.present && !manifest.archives.some((a) => a.node === c.node)) {
      problems.push(`${c.node}: holds an archive ${backupId} that the backup's plan does not list`);
    }
  }
  return { problems, manifest };
}

// --- results ----------------------------------------------------------------------------------

/** One node's archive: where it is and its checksum, never its bytes. */
export interface DataArchive {
  node: string;
  /** Absolute path on that node. */
  file: string;
  bytes: number;
  sha256: string;
  /** Files in the zip, the manifest included. */
  entries: number;
}

export interface PrunedArchive {
  node: string;
  backupId: string;
  file: string;
  bytes: number;
}

export interface BackupClusterResult {
  runbook: 'backupCluster';
  clusterId: string;
  backupId: string;
  dryRun: boolean;
  master: string;
  members: string[];
  plan: ArchivePlan;
  steps: PlannedStep[];
  /** Each verified archive (empty on a dry run). */
  archives: DataArchive[];
  /** Archives deleted by retention (`keep`). */
  pruned: PrunedArchive[];
  skipped: { step: string; node?: string; reason: string }[];
}

export interface ExportDataResult {
  runbook: 'exportData';
  clusterId: string;
  exportId: string;
  dryRun: boolean;
  master: string;
  members: string[];
  plan: ArchivePlan;
  steps: PlannedStep[];
  /** The verified archive(s) in export-data-archive (empty on a dry run). */
  archives: DataArchive[];
}

export interface ImportDataResult {
  runbook: 'importData';
  clusterId: string;
  archive: string;
  /** The cluster the archive came from (its manifest). */
  sourceClusterId: string;
  dryRun: boolean;
  master: string;
  members: string[];
  node: string;
  components: DataComponentName[];
  steps: PlannedStep[];
  /** The backup of the data before the import, when kept. */
  keptAs?: string;
  imported: { node: string; component: DataComponentName; files: number; bytes: number }[];
}

/** What a restore test read back, per component. */
export interface RestoreTestResult {
  node: string;
  components: { component: DataComponentName; items: number; detail: string }[];
}

export interface VerifyBackupResult {
  runbook: 'verifyBackup';
  clusterId: string;
  backupId: string;
  master: string;
  members: string[];
  /** The backup's members and plan, from its manifests. */
  backup: { members: string[]; createdAt: string; workflowId: string; plan: ArchivePlan };
  /** Per member: whether it holds an archive of the backup, and what was verified. */
  nodes: {
    node: string;
    present: boolean;
    archive?: DataArchive & { files: number; dataBytes: number };
  }[];
  /** Set when `restoreTest` was asked for. */
  restoreTest?: RestoreTestResult;
}

export interface RestoreClusterResult {
  runbook: 'restoreCluster';
  clusterId: string;
  backupId: string;
  dryRun: boolean;
  master: string;
  members: string[];
  /** Which node restores what (from the archive it holds). */
  plan: ArchivePlan;
  steps: PlannedStep[];
  archives: DataArchive[];
  restored: { node: string; component: DataComponentName; files: number; bytes: number }[];
  /** The backup of the data before the restore (`keepCurrentData`), to go back to. */
  keptAs?: string;
  skipped: { step: string; node?: string; reason: string }[];
}
