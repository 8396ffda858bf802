import { readFile, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { NodeLayout } from '../../config/layout.js';
import { ClusterGuardError } from '../../contracts/errors.js';
import {
  wipeFolder,
  writeFiles,
  type ClusterView,
  type MiddlewareOperation,
  type OperationOptions,
} from '../kit/index.js';

/** The old guard service (docs/design.md) ZookeeperConfiguration.clusterOptions. */
export interface ZooKeeperOptions {
  /** Client port; like every port here, bound to the node's own address only. */
  clientPort: number;
  /** Followers connect to the leader on this port. */
  peerPort: number;
  /** Leader election. */
  electionPort: number;
  tickTime: number;
  initLimit: number;
  syncLimit: number;
  /** Java heap of the server (-Xmx). */
  heapMb: number;
}

export const zooKeeperDefaults: ZooKeeperOptions = {
  clientPort: 2181,
  peerPort: 2888,
  electionPort: 3888,
  tickTime: 2000,
  initLimit: 10,
  syncLimit: 5,
  heapMb: 128,
};

/**
 * Stands for the applying node's `node-data` folder in a generated zoo.cfg. The master generates
 * every member's file but cannot know where another node keeps its data (each node has its own
 * root), so `dataDir` stays symbolic until the node applies the file (`applyZooKeeperConfig`).
 */
export const NODE_DATA_PLACEHOLDER = '{{node-data}}';

/** Seen in a real 3.9 log once the peer listens for leader election, i.e. takes part in a quorum. */
const SUCCESS_FILTER = 'is accepting connections now, my election bind port';
/**
 * 3.9's fatal start-up lines: QuorumPeerMain's `Invalid config, exiting abnormally` (and its
 * siblings), a missing jar (the main thread dies but the JVM may linger), and ports in use.
 */
const FAIL_FILTER =
  'exiting abnormally|Thread\\[main[^\\]]*\\] died|java\\.lang\\.NoClassDefFoundError|Address already in use';

const startDefaults = { successFilter: SUCCESS_FILTER, failFilter: FAIL_FILTER };
export const defaultOperationOptions: Partial<Record<MiddlewareOperation, OperationOptions>> = {
  startServer: { timeoutMs: 60_000, ...startDefaults },
  createCluster: { timeoutMs: 60_000, ...startDefaults },
  // Includes syncing a snapshot from the leader and, when needed, the reconfiguration that adds it.
  joinCluster: { timeoutMs: 120_000, ...startDefaults },
  rejoinCluster: { timeoutMs: 120_000, ...startDefaults },
  /** Grace period of SIGTERM before SIGKILL. */
  stopServer: { timeoutMs: 15_000 },
  /** Per four-letter-word probe. */
  checkServer: { timeoutMs: 2_000 },
  /** One wait of a membership runbook's in-sync step. */
  checkInSync: { timeoutMs: 30_000 },
  decommissionCluster: { timeoutMs: 60_000 },
  exportData: { timeoutMs: 120_000 },
  importData: { timeoutMs: 120_000 },
  backupData: { timeoutMs: 120_000 },
  restoreData: { timeoutMs: 120_000 },
};

const MAX_SERVER_ID = 255;

export function checkedOptions(options: Partial<ZooKeeperOptions> | undefined): ZooKeeperOptions {
  const o = { ...zooKeeperDefaults, ...options };
  for (const key of ['clientPort', 'peerPort', 'electionPort'] as const) {
    if (!Number.isInteger(o[key]) || o[key] < 1 || o[key] > 65535)
      throw new ClusterGuardError('InvalidInput', `ZooKeeper ${key} ${o[key]} is not a TCP port`);
  }
  if (new Set([o.clientPort, o.peerPort, o.electionPort]).size !== 3) {
    throw new ClusterGuardError(
      'InvalidInput',
      `ZooKeeper clientPort, peerPort and electionPort must differ (got ${o.clientPort}, ${o.peerPort}, ${o.electionPort})`,
    );
  }
  for (const key of ['tickTime', 'initLimit', 'syncLimit', 'heapMb'] as const) {
    if (!Number.isInteger(o[key]) || o[key] < 1)
      throw new ClusterGuardError('InvalidInput', `ZooKeeper ${key} must be a positive integer`);
  }
  return o;
}

/** Server ids of the members, in `cluster.nodes` order; refuses missing or clashing ids. */
function serverIds(cluster: ClusterView): { address: string; id: number }[] {
  const seen = new Map<number, string>();
  return cluster.nodes.map((address) => {
    const id = cluster.memberIds[address];
    if (id === undefined || !Number.isInteger(id) || id < 1 || id > MAX_SERVER_ID) {
      throw new ClusterGuardError(
        'InvalidInput',
        `member ${address} has no valid ZooKeeper server id in memberIds (${JSON.stringify(cluster.memberIds)}): ` +
          `ids are integers 1–${MAX_SERVER_ID}; derive them with assignMemberIds`,
      );
    }
    const clash = seen.get(id);
    if (clash !== undefined) {
      throw new ClusterGuardError(
        'InvalidInput',
        `members ${clash} and ${address} share ZooKeeper server id ${id}; derive memberIds with assignMemberIds`,
      );
    }
    seen.set(id, address);
    return { address, id };
  });
}

export const serverLine = (id: number, address: string, o: ZooKeeperOptions) =>
  `server.${id}=${address}:${o.peerPort}:${o.electionPort}:participant;${address}:${o.clientPort}`;

/**
 * Pure: `zoo.cfg` and `myid` of `address` for this membership. Every size, 1 included, is a
 * replicated ensemble (`standaloneEnabled=false`): a single node is then the leader of a
 * one-voter quorum, and grows by dynamic reconfiguration with neither its files nor its data
 * converted from standalone mode. `dataDir` is `{{node-data}}/zookeeper/data`, resolved when the
 * node applies the files.
 */
export function generateZooKeeperConfig(
  cluster: ClusterView,
  address: string,
  options?: Partial<ZooKeeperOptions>,
): Record<string, string> {
  const o = checkedOptions(options);
  const members = serverIds(cluster);
  const self = members.find((m) => m.address === address);
  if (!self) {
    throw new ClusterGuardError(
      'InvalidInput',
      `cannot generate ZooKeeper configuration for ${address}: it is not a member (${cluster.nodes.join(', ')})`,
    );
  }
  const lines = [
    `# ZooKeeper server ${self.id} on ${address}, one of ${members.length}; generated by clusterguard.`,
    "# dataDir becomes this node's own data folder when the node applies this file;",
    '# ZooKeeper rewrites the file after a reconfiguration (dynamicConfigFile).',
    `tickTime=${o.tickTime}`,
    `initLimit=${o.initLimit}`,
    `syncLimit=${o.syncLimit}`,
    `dataDir=${NODE_DATA_PLACEHOLDER}/zookeeper/data`,
    `clientPort=${o.clientPort}`,
    `clientPortAddress=${address}`,
    // Its default port 8080 would clash between nodes sharing a machine and with CockroachDB.
    'admin.enableServer=false',
    '4lw.commands.whitelist=ruok,srvr,mntr,conf',
    'reconfigEnabled=true',
    'standaloneEnabled=false',
    // Reconfiguration is reserved to the super user unless ACLs are skipped; the appliance does
    // not use ZooKeeper ACLs.
    'skipACL=yes',
    // A long-lived appliance would otherwise keep every snapshot and log.
    'autopurge.snapRetainCount=3',
    'autopurge.purgeInterval=24',
    ...members.map((m) => serverLine(m.id, m.address, o)),
  ];
  return { 'zoo.cfg': `${lines.join('\n')}\n`, myid: `${self.id}\n` };
}

/**
 * Which ensemble the data folder belongs to: written beside `myid` whenever a configuration is
 * applied for a known cluster, so that a later join can tell a member's own data from a
 * stranger's (ZooKeeper itself has no cluster id).
 */
export const ensembleMarkerFile = 'clusterguard-ensemble.json';

/**
 * Whether a (re)joining server may keep its data folder: only when the folder holds this
 * ensemble's data as the same server id. A folder from before the marker existed counts as the
 * ensemble's own on a rejoin (the runbook's word that the node was a member) when its myid
 * matches. Anything else is wiped, so that a foreign history never enters the ensemble.
 */
export async function keepsZooKeeperData(
  layout: NodeLayout,
  myid: string,
  clusterUuid: string | undefined,
  rejoin: boolean,
): Promise<boolean> {
  const dataFolder = layout.nodeDataFolder('zookeeper');
  const current = (await readFile(path.join(dataFolder, 'myid'), 'utf8').catch(() => '')).trim();
  if (current !== myid.trim()) return false;
  const marker = await readFile(path.join(dataFolder, ensembleMarkerFile), 'utf8').then(
    (t) => JSON.parse(t) as { clusterUuid?: string },
    () => undefined,
  );
  if (marker) return clusterUuid !== undefined && marker.clusterUuid === clusterUuid;
  return rejoin;
}

/**
 * Installs generated (or downloaded) files as this node's configuration: `dataDir` becomes the
 * node's own data folder, `myid` is copied into it and, with `clusterUuid`, the ensemble marker.
 * `wipeData` empties the data folder first (a server that joins with another ensemble's data or
 * none, see `keepsZooKeeperData`).
 */
export async function applyZooKeeperConfig(
  layout: NodeLayout,
  files: Record<string, string>,
  { wipeData, clusterUuid }: { wipeData: boolean; clusterUuid?: string },
): Promise<void> {
  const cfg = files['zoo.cfg'];
  const myid = files.myid?.trim();
  if (cfg === undefined || !myid || !/^\d+$/.test(myid)) {
    throw new ClusterGuardError(
      'InvalidInput',
      'a ZooKeeper configuration needs zoo.cfg and a numeric myid; regenerate it on the master',
    );
  }
  const dataFolder = layout.nodeDataFolder('zookeeper');
  const resolved = cfg.replace(/^dataDir=.*$/m, `dataDir=${dataFolder}`);
  await writeFiles(layout.nodeConfigFolder('zookeeper'), { ...files, 'zoo.cfg': resolved });
  if (wipeData) await wipeFolder(dataFolder);
  else await layout.ensure(dataFolder);
  await writeFile(path.join(dataFolder, 'myid'), `${myid}\n`);
  if (clusterUuid)
    await writeFile(
      path.join(dataFolder, ensembleMarkerFile),
      `${JSON.stringify({ clusterUuid, myid: Number(myid) })}\n`,
    );
}

export async function readFolderFiles(folder: string): Promise<Record<string, string>> {
  const files: Record<string, string> = {};
  for (const entry of await readdir(folder, { withFileTypes: true })) {
    if (entry.isFile()) files[entry.name] = await readFile(path.join(folder, entry.name), 'utf8');
  }
  return files;
}
