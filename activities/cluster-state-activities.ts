import { mkdir, readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { ClusterStore } from '../src/config/cluster-store.js';
import { middlewareNames, type MiddlewareName, type NodeLayout } from '../src/config/layout.js';
import type { ClusterFile, ClusterState } from '../src/contracts/cluster-file.js';
import { ClusterGuardError } from '../src/contracts/errors.js';
import type { Logger } from '../src/logger.js';
import { describeActivity } from './interceptor.js';

export interface ClusterStateActivityDeps {
  /** This node. */
  address: string;
  layout: NodeLayout;
  clusterStore: ClusterStore;
  logger: Logger;
}

export interface WriteClusterStateInput {
  /** Fields of `cluster` to set; the others are kept. */
  cluster: Partial<ClusterState> & { nodes: string[] };
  reason: string;
  /** `<workflow run id>/<step>`: the write is skipped when cluster.json already carries it. */
  revision: string;
  /** ISO-8601, from the workflow: the same on every node and on every retry. */
  datetime: string;
}

export interface ResetNodeInput {
  middleware: MiddlewareName[];
  reason: string;
  revision: string;
  datetime: string;
}

/** Thrown from a ClusterStore mutator to leave the file unwritten: the step already ran. */
class AlreadyRecorded extends Error {
  constructor(readonly file: ClusterFile) {
    super('already recorded');
  }
}

/**
 * Applies `mutate` unless cluster.json already carries `revision`. The check runs inside the
 * store's per-file queue, so two deliveries of the same step cannot both write.
 */
async function recordOnce(
  store: ClusterStore,
  revision: string,
  reason: string,
  mutate: (current: ClusterFile) => ClusterFile,
): Promise<{ changed: boolean; file: ClusterFile }> {
  try {
    const file = await store.update((current) => {
      if (current.cluster.revision === revision) throw new AlreadyRecorded(current);
      return mutate(current);
    }, reason);
    return { changed: true, file };
  } catch (err) {
    if (err instanceof AlreadyRecorded) return { changed: false, file: err.file };
    throw err;
  }
}

function workflowDate(datetime: string): Date {
  const date = new Date(datetime);
  if (Number.isNaN(date.getTime())) {
    throw new ClusterGuardError('InvalidInput', `datetime "${datetime}" is not a date-time`);
  }
  return date;
}

function requireRevision(revision: string): void {
  if (!revision.trim()) throw new ClusterGuardError('InvalidInput', 'a revision is required');
}

/**
 * Removes what is inside `folder` but keeps the folder: its owner and mode stay as installed,
 * and a folder that is a mount point (data disks often are) cannot be removed anyway.
 */
async function emptyFolder(folder: string): Promise<void> {
  await mkdir(folder, { recursive: true });
  for (const name of await readdir(folder)) {
    await rm(path.join(folder, name), { recursive: true, force: true });
  }
}

/** The activities that read and write this node's cluster.json (and reset a removed node). */
export function createClusterStateActivities(deps: ClusterStateActivityDeps) {
  const self = deps.address;
  return {
    /** Reads this node's cluster.json (creating the standalone default when there is none). */
    async readClusterState(): Promise<ClusterFile> {
      describeActivity(`readClusterState on node ${self}`);
      return deps.clusterStore.load();
    },

    /**
     * Sets the given fields of `cluster` in this node's cluster.json, appending the membership
     * it replaces to history. Records that it ran: a file that already carries `revision` is
     * returned unwritten, so a retried step adds no second history entry. Dates come from the
     * workflow, so every node writes the same datetime for the same step.
     */
    async writeClusterState(
      input: WriteClusterStateInput,
    ): Promise<{ changed: boolean; file: ClusterFile }> {
      describeActivity(`writeClusterState on node ${self}`);
      requireRevision(input.revision);
      const at = workflowDate(input.datetime);
      const store = new ClusterStore({
        file: deps.clusterStore.file,
        now: () => at,
        dateFormat: deps.clusterStore.dateFormat,
      });
      const result = await recordOnce(store, input.revision, input.reason, (current) => ({
        ...current,
        cluster: { ...current.cluster, ...input.cluster, revision: input.revision },
      }));
      deps.logger.info(result.changed ? 'cluster state written' : 'cluster state already written', {
        revision: input.revision,
        nodes: result.file.cluster.nodes,
      });
      return result;
    },

    /**
     * On a node removed from the cluster, once its middleware is stopped: wipes the data and
     * configuration of `input.middleware` and every cluster configuration and archive, then
     * makes cluster.json a standalone node's (the old membership goes to history). Records
     * that it ran: when cluster.json already carries `revision` nothing is wiped again.
     */
    async resetNode(input: ResetNodeInput): Promise<{ changed: boolean; wiped: string[] }> {
      describeActivity(`resetNode on node ${self}`);
      requireRevision(input.revision);
      const at = workflowDate(input.datetime);
      const unknown = input.middleware.filter(
        (mw) => !(middlewareNames as readonly string[]).includes(mw),
      );
      if (unknown.length > 0) {
        throw new ClusterGuardError(
          'InvalidInput',
          `unknown middleware ${unknown.join(', ')}; expected some of ${middlewareNames.join(', ')}`,
        );
      }
      const current = await deps.clusterStore.load();
      if (current.cluster.revision === input.revision) {
        deps.logger.info('node already reset', { revision: input.revision });
        return { changed: false, wiped: [] };
      }

      const wiped: string[] = [];
      const wipe = async (folder: string) => {
        await emptyFolder(folder);
        wiped.push(folder);
      };
      for (const mw of [...new Set(input.middleware)]) {
        await wipe(deps.layout.nodeDataFolder(mw));
        const config = deps.layout.nodeConfigFolder(mw);
        await wipe(path.dirname(config));
        await mkdir(config, { recursive: true });
      }
      // Another node's keys and archives have no business on a node outside the cluster.
      await wipe(deps.layout.clusterConfigFolder);
      await wipe(deps.layout.clusterDistributionFolder);

      // Last, so that a crash before it leaves the revision unset and the retry wipes again.
      const store = new ClusterStore({
        file: deps.clusterStore.file,
        now: () => at,
        dateFormat: deps.clusterStore.dateFormat,
      });
      const { changed } = await recordOnce(store, input.revision, input.reason, (file) => {
        const cluster: ClusterState = {
          ...file.cluster,
          nodes: [self],
          decommissionNodes: [],
          clusterConfigReady: true,
          nodeConfigReady: true,
          nodeIsMaster: true,
          nodeIsRejoin: true,
          revision: input.revision,
        };
        delete cluster.memberIds;
        delete cluster.clusterUuid;
        return { ...file, cluster };
      });
      deps.logger.info('node reset to standalone', { revision: input.revision, wiped });
      return { changed, wiped };
    },
  };
}
