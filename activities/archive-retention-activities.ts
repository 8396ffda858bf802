import { readdir, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import {
  planRetention,
  type ArchiveKind,
  type PrunedArchive,
} from '../src/contracts/data-runbooks.js';
import { ClusterGuardError } from '../src/contracts/errors.js';
import {
  defaultStaleAfterMs,
  type ArchiveContext,
  type ListedArchive,
  type PruneArchivesInput,
  type PruneArchivesResult,
} from './data-archives.js';

/** Listing and retention of `<op>-data-archive/`. */
export function createArchiveRetentionActivities(archives: ArchiveContext) {
  const { deps, self, layout, logger, checkKind, activity, listArchivesIn } = archives;
  return {
    /** The archives of `<op>-data-archive/`, newest first. */
    async listArchives(input: {
      op: ArchiveKind;
    }): Promise<{ node: string; archives: ListedArchive[] }> {
      return activity(`listArchives of ${input.op} on node ${self}`, async () => ({
        node: self,
        archives: await listArchivesIn(checkKind(input.op)),
      }));
    },

    /**
     * Retention: deletes all but the newest `keep` archives of `<op>-data-archive/`, never a
     * protected one; also sweeps temp archives and scratch folders that an interrupted run
     * left (older than a few hours, so never one in use).
     */
    async pruneArchives(input: PruneArchivesInput): Promise<PruneArchivesResult> {
      return activity(`pruneArchives of ${input.op} on node ${self}`, async () => {
        const op = checkKind(input.op);
        const { keep, maxAgeDays } = input;
        if (keep !== undefined && (!Number.isInteger(keep) || keep < 1)) {
          throw new ClusterGuardError('InvalidInput', `keep must be an integer ≥ 1, not ${keep}`);
        }
        if (maxAgeDays !== undefined && !(maxAgeDays > 0)) {
          throw new ClusterGuardError(
            'InvalidInput',
            `maxAgeDays must be a positive number, not ${maxAgeDays}`,
          );
        }
        const now = input.now ? new Date(input.now) : new Date();
        if (Number.isNaN(now.getTime())) {
          throw new ClusterGuardError(
            'InvalidInput',
            `now must be an ISO-8601 time, not ${input.now}`,
          );
        }
        const listed = await listArchivesIn(op);
        const plan = planRetention(
          listed.map((a) => a.backupId),
          keep,
          input.protect,
          maxAgeDays === undefined ? undefined : { maxAgeDays, now },
        );
        const deleted: PrunedArchive[] = [];
        for (const a of listed.filter((x) => plan.remove.includes(x.backupId))) {
          await rm(a.file, { force: true });
          deleted.push({ node: self, backupId: a.backupId, file: a.file, bytes: a.bytes });
        }
        const swept: string[] = [];
        const folder = layout.archiveFolder(op);
        const staleBefore = Date.now() - (deps.staleAfterMs ?? defaultStaleAfterMs);
        for (const name of await readdir(folder).catch(() => [] as string[])) {
          if (!name.startsWith('.')) continue;
          const full = path.join(folder, name);
          const info = await stat(full).catch(() => undefined);
          if (info && info.mtimeMs < staleBefore) {
            await rm(full, { recursive: true, force: true });
            swept.push(full);
          }
        }
        if (deleted.length || swept.length) {
          logger.info(`${op} archives pruned`, {
            deleted: deleted.map((d) => d.backupId),
            swept,
          });
        }
        return { node: self, deleted, kept: plan.keep, swept };
      });
    },
  };
}
