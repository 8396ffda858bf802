import { randomUUID } from 'node:crypto';
import { mkdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { agentBaseUrl, type ClientTls } from '../src/agent/tls.js';
import { isNodeAddress } from '../src/contracts/addresses.js';
import { ClusterGuardError } from '../src/contracts/errors.js';
import { isErrno, sha256File } from './archive-files.js';
import type { ArchiveContext } from './data-archives.js';
import { downloadRequestTimeoutMs, fetchToFile } from './distribution-activities.js';

/** How this node reaches the other agents of its cluster (the same as for its configuration). */
export interface PeerAccess {
  token: string;
  agentPort: number;
  agentTls?: ClientTls;
}

export interface CopyArchiveInput {
  op: 'backup';
  backupId: string;
  /** The member that holds the archive. */
  from: string;
  /** The sha256 the archive was verified with there: any other is refused. */
  sha256: string;
}

export interface CopiedArchive {
  node: string;
  from: string;
  file: string;
  bytes: number;
  sha256: string;
}

/**
 * A second copy of a backup on another member (docs/design.md, "A backup outlives its node"):
 * the archive is fetched from the member that wrote it, through its agent's archive route.
 */
export function createArchiveCopyActivities(archives: ArchiveContext, peer?: PeerAccess) {
  const { self, logger, archivePath, named, activity } = archives;
  return {
    /**
     * Fetches `<op>-data-archive/<backupId>.zip` from `from` into the same place on this node,
     * refusing any archive whose sha256 is not `sha256`. Idempotent: an archive already here
     * with that sha256 is kept; another under the same id is never replaced.
     */
    async copyArchive(input: CopyArchiveInput): Promise<CopiedArchive> {
      return activity(
        `copyArchive of ${input.op} ${input.backupId} from ${input.from} to node ${self}`,
        async (beat) => {
          if (!peer) {
            throw new ClusterGuardError(
              'InvalidConfig',
              `node ${self} has no cluster token to fetch archives from other members with`,
            );
          }
          if (input.op !== 'backup' || !isNodeAddress(input.from) || input.from === self) {
            throw new ClusterGuardError(
              'InvalidInput',
              `copyArchive copies a backup from another member; got ${String(input.op)} from ${String(input.from)}`,
            );
          }
          const target = archivePath('backup', input.backupId);
          const expected = input.sha256.toLowerCase();
          try {
            const here = await sha256File(target, beat.signal);
            if (here.sha256 === expected) {
              return { node: self, from: input.from, file: target, ...here };
            }
            throw new ClusterGuardError(
              'InvalidInput',
              `${named(target)} already exists with sha256 ${here.sha256}, not ${expected}: ` +
                'a backup id names one backup, so it is not replaced',
            );
          } catch (err) {
            if (!isErrno(err, 'ENOENT')) throw err;
          }
          await mkdir(path.dirname(target), { recursive: true });
          const temp = path.join(path.dirname(target), `.copy-${randomUUID()}.zip.tmp`);
          const url =
            `${agentBaseUrl(input.from, peer.agentPort, peer.agentTls)}` +
            `/v1/cluster/data/archives/backup/${encodeURIComponent(input.backupId)}.zip`;
          beat.set(`fetching ${url}`);
          const timeout = AbortSignal.any([
            beat.signal,
            AbortSignal.timeout(downloadRequestTimeoutMs * 20),
          ]);
          try {
            const got = await fetchToFile(
              url,
              temp,
              { self, ...peer },
              timeout,
              '/v1/cluster/data/archives/:kind/:name',
            );
            if (!got.ok) {
              throw new ClusterGuardError(
                got.status === 401 || got.status === 403 ? 'Unauthorized' : 'MiddlewareFailure',
                `node ${self} could not fetch backup ${input.backupId} from ${input.from}: ${got.error}`,
              );
            }
            if (got.sha256 !== expected) {
              throw new ClusterGuardError(
                'MiddlewareFailure',
                `${input.from} served backup ${input.backupId} with sha256 ${got.sha256}, not the ` +
                  `verified ${expected}; nothing was kept on ${self}`,
              );
            }
            await rename(temp, target);
            logger.info('backup archive copied', {
              from: input.from,
              file: target,
              bytes: got.bytes,
            });
            return {
              node: self,
              from: input.from,
              file: target,
              bytes: got.bytes,
              sha256: got.sha256,
            };
          } finally {
            await rm(temp, { force: true });
          }
        },
      );
    },
  };
}
