import { randomBytes } from 'node:crypto';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { archiveTimestamp } from '../../config/layout.js';
import { ClusterGuardError } from '../../contracts/errors.js';
import { isEmptyFolder, listData, moveFolder, type DataResult } from '../kit/index.js';
import { nodelocalUri, quoteIdent, quoteLiteral } from './parse.js';
import type { CockroachMembership } from './membership.js';
import type { CockroachServer } from './server.js';

/** BACKUP / RESTORE through the node-local external-io folder, into the working folders. */
export function createCockroachData(
  node: CockroachServer,
  { sql, firstColumn, provision }: CockroachMembership,
) {
  const { address, layout, logger, paths, opts, localNodeId } = node;

  const stagingName = (op: string) =>
    `${op}-${archiveTimestamp(new Date())}-${randomBytes(3).toString('hex')}`;

  /** Cluster-wide `BACKUP INTO` this node's external-io-dir, then into `<op>-data/cockroach`. */
  async function backupInto(op: 'backup' | 'export'): Promise<DataResult> {
    const work = layout.workingFolder(op, 'cockroach');
    const id = await localNodeId();
    const name = stagingName(op);
    const staging = path.join(paths.externalIo, name);
    logger.info(`cockroach: ${op} started`, { address, node: id });
    try {
      await sql(
        `cockroach ${op}`,
        `BACKUP INTO ${quoteLiteral(nodelocalUri(id, name))};`,
        opts(`${op}Data`).timeoutMs,
      );
      await moveFolder(staging, work);
    } finally {
      await rm(staging, { recursive: true, force: true });
    }
    const result = await listData(work);
    logger.info(`cockroach: ${op} done`, { address, files: result.files.length });
    return result;
  }

  /**
   * Full-cluster `RESTORE FROM LATEST IN` the working folder, moved into the external-io-dir for
   * the statement and back afterwards. CockroachDB restores a full cluster only into one without
   * user databases, so those are dropped first — after `SHOW BACKUP` proved the backup readable.
   */
  async function restoreFrom(op: 'restore' | 'import'): Promise<DataResult> {
    const work = layout.workingFolder(op, 'cockroach');
    if (await isEmptyFolder(work)) {
      throw new ClusterGuardError(
        'InvalidInput',
        `nothing to ${op}: ${work} is empty; unpack a CockroachDB backup there first`,
      );
    }
    const id = await localNodeId();
    const name = stagingName(op);
    const staging = path.join(paths.externalIo, name);
    const uri = quoteLiteral(nodelocalUri(id, name));
    const timeoutMs = opts(`${op}Data`).timeoutMs;
    await moveFolder(work, staging);
    try {
      await sql(
        `cockroach ${op}: reading the backup`,
        `SHOW BACKUP FROM LATEST IN ${uri};`,
        timeoutMs,
      );
      const databases = [...(await firstColumn('SHOW DATABASES;'))].filter(
        (d) => d !== 'system' && d !== 'defaultdb' && d !== 'postgres',
      );
      if (databases.length) {
        logger.warn(`cockroach: ${op} replaces the current databases`, { address, databases });
        await sql(
          `cockroach ${op}: dropping the current databases`,
          databases.map((d) => `DROP DATABASE IF EXISTS ${quoteIdent(d)} CASCADE;`).join('\n'),
          timeoutMs,
        );
      }
      try {
        await sql(`cockroach ${op}`, `RESTORE FROM LATEST IN ${uri};`, timeoutMs);
      } catch (err) {
        if (!databases.length || !(err instanceof ClusterGuardError)) throw err;
        throw new ClusterGuardError(
          err.type,
          `${err.message}\nThe databases ${databases.join(', ')} were dropped before the restore; ` +
            `their data is in the backup in ${work}: fix the cause and run ${op} again.`,
          { cause: err },
        );
      }
    } finally {
      await moveFolder(staging, work);
    }
    // Databases configured since the backup was taken.
    await provision('missing');
    const result = await listData(work);
    logger.info(`cockroach: ${op} done`, { address, files: result.files.length });
    return result;
  }

  return { stagingName, backupInto, restoreFrom };
}
