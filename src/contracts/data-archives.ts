import { z } from 'zod';
import { nodeAddressSchema } from './addresses.js';
import {
  backupIdSchema,
  dataComponents,
  isClusterWide,
  type ReplicatedComponent,
} from './data-ids.js';
import { clusterIdSchema } from './ping.js';

/**
 * The manifest inside every data archive, and the plans and checks built on it: which node
 * archives what, whether the members' archives make up a whole backup. Workflow-safe.
 */

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
    return `is not inside a component folder (${dataComponents.map((c) => `${c}/`).join(', ')})`;
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
 * cluster-wide; CockroachDB's BACKUP is cluster-wide too), the bundle set on the master too
 * when `bundles`, the controller on each node listed. Nodes with nothing to back up are left
 * out; the master comes first.
 */
export function planBackup(
  master: string,
  members: readonly string[],
  replicated: readonly ReplicatedComponent[],
  controllerNodes: readonly string[],
  bundles = false,
): ArchivePlan {
  const ordered = [master, ...members.filter((m) => m !== master)];
  return ordered.flatMap((node) => {
    const components = dataComponents.filter((c) =>
      c === 'controller'
        ? controllerNodes.includes(node)
        : c === 'bundles'
          ? bundles && node === master
          : node === master && (replicated as readonly string[]).includes(c),
    );
    return components.length ? [{ node, components }] : [];
  });
}

/** A second copy of one node's archive on another member. */
export interface BackupCopy {
  from: string;
  to: string;
}

/**
 * Where the archives holding cluster-wide data get their second copy (docs/design.md, "A backup
 * outlives its node"): on the first member, in member order, that holds no archive of the backup
 * itself, so that no archive is ever put in the place of another. None when every member holds
 * one of its own (or the cluster has one member).
 */
export function planBackupCopies(members: readonly string[], plan: ArchivePlan): BackupCopy[] {
  const to = members.find((m) => !plan.some((p) => p.node === m));
  if (!to) return [];
  return plan.filter((p) => p.components.some(isClusterWide)).map((p) => ({ from: p.node, to }));
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
 * verified, all from the same run, every node of the backup's plan answering with its archive,
 * or, when that archive is missing, another member with a verified copy of it (planBackupCopies).
 * Returns the problems (empty when the backup is whole), the plan found in the manifests and,
 * for each node of the plan whose own archive is missing, the member whose copy stands in.
 */
export function evaluateBackup(
  clusterId: string,
  backupId: string,
  checks: readonly ArchiveCheck[],
): { problems: string[]; manifest?: ManifestSummary; copies: Record<string, string> } {
  const problems: string[] = [];
  const copies: Record<string, string> = {};
  for (const c of checks) if (c.present && c.problem) problems.push(`${c.node}: ${c.problem}`);
  const good = checks.flatMap((c) => (c.archive ? [c.archive] : []));
  const first = good[0];
  if (!first) {
    if (!checks.some((c) => c.present)) {
      problems.push(
        `no member has backup ${backupId} (asked ${checks.map((c) => c.node).join(', ')})`,
      );
    }
    return { problems, copies };
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
  const planned = (node: string) => manifest.archives.find((a) => a.node === node);
  // A copy holds another node's archive of the plan, all of it cluster-wide data.
  const isCopy = (g: DataArchive & { manifest: ManifestSummary }) =>
    g.manifest.node !== g.node &&
    !planned(g.node) &&
    (planned(g.manifest.node)?.components.every(isClusterWide) ?? false);
  for (const g of good) {
    if (g.manifest.node !== g.node && !isCopy(g)) {
      problems.push(`${g.node}: its archive was written on ${g.manifest.node}`);
    }
  }
  for (const { node } of manifest.archives) {
    const c = checks.find((x) => x.node === node);
    const copy = good.find((g) => g.manifest.node === node && isCopy(g));
    if (c?.present) continue;
    if (copy) copies[node] = copy.node;
    else if (!c) problems.push(`${node} holds part of the backup but is not a member now`);
    else problems.push(`${node}: its archive of backup ${backupId} is missing`);
  }
  for (const c of checks) {
    const copy = c.archive && isCopy(c.archive);
    if (c.present && !copy && !planned(c.node)) {
      problems.push(`${c.node}: holds an archive ${backupId} that the backup's plan does not list`);
    }
  }
  return { problems, manifest, copies };
}

export interface DataArchive {
  node: string;
  /** Absolute path on that node. */
  file: string;
  bytes: number;
  sha256: string;
  /** Files in the zip, the manifest included. */
  entries: number;
}
