import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { DataOperation } from '../../config/layout.js';
import { ClusterGuardError } from '../../contracts/errors.js';
import { listData, wipeFolder, type DataResult } from '../kit/index.js';
import {
  clearTree,
  dumpSchema,
  dumpTree,
  DUMP_FILE,
  DUMP_FORMAT,
  loadTree,
  withZooKeeperClient,
  type Dump,
  type ZkClient,
} from './dump.js';
import type { ZooKeeperServer } from './server.js';
import { servingModes } from './wire.js';

/* The data operations: the znode tree to and from `<op>-data/zookeeper/` through a session. */

async function dataOperation(
  zk: ZooKeeperServer,
  op: DataOperation,
  work: (client: ZkClient, folder: string) => Promise<void>,
): Promise<DataResult> {
  const { address, layout, who, options, opts, srvrOf } = zk;
  const name = `${op}Data` as const;
  const folder = layout.workingFolder(op, 'zookeeper');
  const srvr = await srvrOf(address);
  if (!srvr?.mode || !servingModes.has(srvr.mode)) {
    throw new ClusterGuardError(
      'MiddlewareFailure',
      `${who} (${name}): the server is not serving (${srvr ? 'no quorum' : 'no answer'}); start it (startServer) and make sure a majority of the ensemble runs, then retry`,
    );
  }
  try {
    await withZooKeeperClient(`${address}:${options.clientPort}`, opts(name).timeoutMs, (client) =>
      work(client, folder),
    );
  } catch (err) {
    if (err instanceof ClusterGuardError) throw err;
    throw new ClusterGuardError(
      'MiddlewareFailure',
      `${who} (${name}) failed: ${(err as Error).message}. Next: check that the server serves (checkServer), then retry`,
      { cause: err },
    );
  }
  return listData(folder);
}

export async function writeDump(zk: ZooKeeperServer, op: DataOperation): Promise<DataResult> {
  const { address, logger, who } = zk;
  return dataOperation(zk, op, async (client, folder) => {
    const znodes = await dumpTree(client);
    const dump: Dump = {
      format: DUMP_FORMAT,
      createdAt: new Date().toISOString(),
      source: address,
      znodes,
    };
    await wipeFolder(folder);
    await writeFile(path.join(folder, DUMP_FILE), `${JSON.stringify(dump, null, 1)}\n`);
    logger.info(`${who}: ${op} wrote ${znodes.length} znodes`, { folder });
  });
}

export async function readDump(
  zk: ZooKeeperServer,
  op: DataOperation,
  replace: boolean,
): Promise<DataResult> {
  const { layout, logger, who } = zk;
  const file = path.join(layout.workingFolder(op, 'zookeeper'), DUMP_FILE);
  let dump: Dump;
  try {
    dump = dumpSchema.parse(JSON.parse(await readFile(file, 'utf8')));
  } catch (err) {
    throw new ClusterGuardError(
      'InvalidInput',
      `${who} (${op}Data): ${file} is missing or not a ZooKeeper dump (${(err as Error).message.split('\n')[0]}); ` +
        'unpack an export or backup archive of clusterguard into that folder first',
    );
  }
  return dataOperation(zk, op, async (client) => {
    if (replace) await clearTree(client);
    await loadTree(client, dump.znodes);
    logger.info(`${who}: ${op} loaded ${dump.znodes.length} znodes from ${dump.source}`, {
      replace,
    });
  });
}
