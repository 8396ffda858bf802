import { z } from 'zod';
import { nodeAddressSchema } from './addresses.js';
import type { ArchivePlan, DataArchive } from './data-archives.js';
import { backupIdSchema, dataComponents, labelSchema, type DataComponentName } from './data-ids.js';
import type { PlannedStep, SkippedSteps } from './membership-runbooks.js';
import { clusterIdSchema } from './ping.js';
import { lazySchema } from './validation.js';

/**
 * Inputs and results of the data runbooks (backupCluster, verifyBackup, restoreCluster,
 * exportData, importData); the shared names (data-ids.ts) and archive manifests
 * (data-archives.ts) are exported from here too. Workflow-safe: no Node built-ins.
 */
export * from './data-ids.js';
export * from './data-archives.js';

// --- inputs -------------------------------------------------------------------------------------

const componentListSchema = z
  .array(z.enum(dataComponents))
  .min(1, `expected at least one of ${dataComponents.join(', ')}`)
  .transform((list) => dataComponents.filter((c) => list.includes(c)));

const dataRunbookOptions = {
  clusterId: clusterIdSchema,
  /**
   * Optional: a member of the cluster, normally its master: the runbook reads this node's
   * cluster.json and works with the master it names. Default: the master in clusterguard's
   * record of the cluster (docs/design.md, "The cluster record").
   */
  master: nodeAddressSchema.optional(),
  /** Attempts of a step before it parks and waits for an operator (retryStep, abort). */
  stepAttempts: z.number().int().min(1).max(100).default(5),
  /** How long an agent may leave a step unclaimed before `progress` shows its node unreachable. */
  agentTimeoutSeconds: z.number().int().min(1).max(3600).default(30),
  /**
   * When another runbook holds the cluster (docs/design.md "Admission"): queue behind it and
   * start when it ends, instead of failing at once with ClusterBusy.
   */
  waitForCluster: z.boolean().default(false),
};

/** A data runbook's input: the options every one takes, then its own; nothing else. */
function dataRunbookInput<S extends z.ZodRawShape>(own: () => S) {
  return lazySchema(() => z.object({ ...dataRunbookOptions, ...own() }).strict());
}

export const backupClusterInputSchema = dataRunbookInput(() => ({
  /**
   * What to back up. Default: the middleware the master's agent enables, the application's
   * bundle set when the master keeps one (ZooKeeper and Felix or rolled-out bundles), plus the
   * controller on every member whose agent configures controller data folders.
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
}));
export type BackupClusterInput = z.input<typeof backupClusterInputSchema>;
export type BackupClusterParams = z.output<typeof backupClusterInputSchema>;

export const verifyBackupInputSchema = dataRunbookInput(() => ({
  backupId: backupIdSchema,
  /**
   * Besides the checksums, a restore test: the node holding the replicated data unpacks its
   * archive into a scratch folder and reads every dump back the way a restore would (every
   * znode, every Kafka message), without touching live data.
   */
  restoreTest: z.boolean().default(false),
}));
export type VerifyBackupInput = z.input<typeof verifyBackupInputSchema>;

export const restoreClusterInputSchema = dataRunbookInput(() => ({
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
}));
export type RestoreClusterInput = z.input<typeof restoreClusterInputSchema>;
export type RestoreClusterParams = z.output<typeof restoreClusterInputSchema>;

/**
 * An export is a backup's archive meant for another cluster: the replicated middleware, once,
 * on the master (and the master's controller folders when asked for), in
 * `export-data-archive/<exportId>.zip` with the same manifest.
 */
export const exportDataInputSchema = dataRunbookInput(() => ({
  /** What to export; default the middleware the master's agent enables. */
  middleware: componentListSchema.optional(),
  /** Appended to the export id: `20261122T074512Z-<label>`. */
  label: labelSchema.optional(),
  dryRun: z.boolean().default(false),
}));
export type ExportDataInput = z.input<typeof exportDataInputSchema>;

/**
 * Loads an export (of this or another cluster) into the running cluster, merging it with the
 * data there: ZooKeeper znodes are created or overwritten, Kafka messages appended. The archive
 * is named, never given as a path: `import-data-archive/<archive>.zip` on `node`, put there by
 * an upload to the agent (`POST /v1/cluster/data/actions/import`) or by the operator.
 */
export const importDataInputSchema = dataRunbookInput(() => ({
  /** The archive's id, e.g. `20261122T074512Z-move` for `20261122T074512Z-move.zip`. */
  archive: backupIdSchema,
  /** The member whose import-data-archive folder holds it; default the master. */
  node: nodeAddressSchema.optional(),
  /** What to import; default everything the archive holds. */
  middleware: componentListSchema.optional(),
  /** As for a restore: the data an import changes is backed up first as `<ts>-before-import`. */
  keepCurrentData: z.boolean().default(true),
  dryRun: z.boolean().default(false),
}));
export type ImportDataInput = z.input<typeof importDataInputSchema>;

// --- results ----------------------------------------------------------------------------------

/** One node's archive: where it is and its checksum, never its bytes. */
export interface PrunedArchive {
  node: string;
  backupId: string;
  file: string;
  bytes: number;
}

/** What every data runbook's result begins with. */
interface DataRunbookResult {
  clusterId: string;
  /** The master and members from the master's cluster.json. */
  master: string;
  members: string[];
}

/** The result of a data runbook that plans its steps, so that a dry run can show them. */
interface PlannedDataRunbookResult extends DataRunbookResult {
  dryRun: boolean;
  steps: PlannedStep[];
}

/** What a restore or import put back of one component on one node. */
export interface LoadedComponent {
  node: string;
  component: DataComponentName;
  files: number;
  bytes: number;
}

export interface BackupClusterResult extends PlannedDataRunbookResult {
  runbook: 'backupCluster';
  backupId: string;
  plan: ArchivePlan;
  /** Each verified archive (empty on a dry run). */
  archives: DataArchive[];
  /** Second copies of the replicated data's archive on other members, checked by sha256. */
  copies?: (DataArchive & { from: string })[];
  /** Archives deleted by retention (`keep`). */
  pruned: PrunedArchive[];
  skipped: SkippedSteps;
}

export interface ExportDataResult extends PlannedDataRunbookResult {
  runbook: 'exportData';
  exportId: string;
  plan: ArchivePlan;
  /** The verified archive(s) in export-data-archive (empty on a dry run). */
  archives: DataArchive[];
}

export interface ImportDataResult extends PlannedDataRunbookResult {
  runbook: 'importData';
  archive: string;
  /** The cluster the archive came from (its manifest). */
  sourceClusterId: string;
  node: string;
  components: DataComponentName[];
  /** The backup of the data before the import, when kept. */
  keptAs?: string;
  imported: LoadedComponent[];
}

/** What a restore test read back, per component. */
export interface RestoreTestResult {
  node: string;
  components: { component: DataComponentName; items: number; detail: string }[];
}

export interface VerifyBackupResult extends DataRunbookResult {
  runbook: 'verifyBackup';
  backupId: string;
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

export interface RestoreClusterResult extends PlannedDataRunbookResult {
  runbook: 'restoreCluster';
  backupId: string;
  /** Which node restores what (from the archive it holds). */
  plan: ArchivePlan;
  archives: DataArchive[];
  restored: LoadedComponent[];
  /** The backup of the data before the restore (`keepCurrentData`), to go back to. */
  keptAs?: string;
  skipped: SkippedSteps;
}
