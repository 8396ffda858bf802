import type { DataOperation, MiddlewareName } from '../../config/layout.js';
import type { MiddlewareOperation } from '../../contracts/middleware.js';

/**
 * What a middleware operation needs to know about the cluster (docs/design.md): the members after
 * the operation, those being decommissioned, and identities that must stay stable across
 * membership changes.
 */
export interface ClusterView {
  /** Members after the operation; `nodes[0]` is the master. */
  nodes: string[];
  /** Members leaving (docs/design.md: decommissionNodes). */
  decommissionNodes: string[];
  /**
   * Stable numeric id per member (ZooKeeper `myid`, Kafka `node.id`): an address keeps its id for
   * as long as it is a member, so survivors never change identity. See `assignMemberIds`.
   */
  memberIds: Record<string, number>;
  /** One id for the whole cluster (Kafka's cluster id, 22 base64url characters). */
  clusterUuid: string;
}

/** The old guard service (docs/design.md) `operationOptions`: per operation, how long and what to look for in the log. */
export interface OperationOptions {
  timeoutMs: number;
  /** A regular expression that the server's log must show before the start counts. */
  successFilter?: string;
  /** A regular expression that, seen in the log, fails the start at once. */
  failFilter?: string;
}

export { middlewareOperations, type MiddlewareOperation } from '../../contracts/middleware.js';

/** What a membership pre-check needs to know from a running middleware (see `inspect`). */
export interface MiddlewareInspection {
  /** The largest replication factor of any topic (Kafka): brokers needed after a removal. */
  maxReplicationFactor?: number;
  /** Members the middleware itself reports as running (brokers, live nodes, serving voters). */
  liveMembers?: string[];
}

export interface ServerStatus {
  running: boolean;
  /** Answers its protocol-level health check (ZooKeeper `ruok`, Kafka metadata, …). */
  healthy: boolean;
  pid?: number;
  /** One line for an operator: role, version, why unhealthy. */
  detail: string;
}

/**
 * Whether every replica of a middleware's data is in sync, as one member sees it: every Kafka
 * partition has a leader and all its replicas in sync, every CockroachDB range has all its
 * replicas and is available, every ZooKeeper voter serves under one leader.
 */
export interface InSyncReport {
  inSync: boolean;
  /** One line for an operator: what was counted, or what is still out of sync. */
  detail: string;
}

/** Files written into a data operation's working folder, relative to it, with their sizes. */
export interface DataResult {
  folder: string;
  files: { path: string; bytes: number }[];
}

/**
 * The old guard service's MiddlewareService (docs/design.md) for one middleware on one node. The membership
 * operations start the server when they are done; the data operations use the working folder of
 * their operation (`<op>-data/<mw>/`, see NodeLayout.workingFolder).
 */
export interface AdapterMethods {
  readonly name: MiddlewareName | 'controller' | 'felix' | 'bundles';
  /** Pure: the configuration files of `address` for this membership (relative path → text). */
  generateConfig?: (cluster: ClusterView, address: string) => Record<string, string>;
  startServer: (cluster?: ClusterView) => Promise<ServerStatus>;
  /** Graceful first, forceful after a bounded wait; stopping a stopped server is not an error. */
  stopServer: (options?: { force?: boolean }) => Promise<void>;
  checkServer: () => Promise<ServerStatus>;
  /**
   * Whether its process runs (pid file and command line), asking the server nothing: cheap
   * enough for the agent's supervisor to look every few seconds.
   */
  processRunning?: () => Promise<boolean>;
  /** On the master: every member's configuration into `cluster-config/<address>/<mw>/`, apply its own, keep data, start. */
  createCluster?: (cluster: ClusterView) => Promise<void>;
  /**
   * On the master, for a membership change of a running cluster: every member's configuration
   * into `cluster-config/<address>/<mw>/`, as createCluster writes it, without touching the
   * running server or its data. Idempotent.
   */
  prepareClusterConfig?: (cluster: ClusterView) => Promise<void>;
  /** Facts for a membership pre-check, read from the running middleware. */
  inspect?: () => Promise<MiddlewareInspection>;
  /** On a new member: apply `cluster-config/<self>/<mw>/`, wipe data, start. */
  joinCluster?: (cluster: ClusterView) => Promise<void>;
  /** On a returning member: as join, but keep data where the middleware allows (docs/design.md). */
  rejoinCluster?: (cluster: ClusterView) => Promise<void>;
  /**
   * Waits (up to its `checkInSync` operation timeout) until every replica is in sync and reports,
   * asked through this node; a report that is not in sync says what lags.
   */
  checkInSync?: () => Promise<InSyncReport>;
  /** Remove `leaving` from the running cluster; refuses (non-retryable) when that would lose quorum or data. */
  decommissionCluster?: (cluster: ClusterView, leaving: string[]) => Promise<void>;
  exportData?: () => Promise<DataResult>;
  importData?: () => Promise<DataResult>;
  backupData?: () => Promise<DataResult>;
  restoreData?: () => Promise<DataResult>;
}

/** What a runbook step passes to an operation (the `middlewareOperation` input, checked). */
export interface OperationRequest {
  /** The step, on this node, for messages: `joinCluster of kafka on node 127.0.0.12`. */
  where: string;
  cluster?: ClusterView;
  leaving?: string[];
  force?: boolean;
}

/** What an operation reports back to its step. */
export interface OperationOutcome {
  status?: ServerStatus;
  data?: DataResult;
  inspection?: MiddlewareInspection;
  inSync?: InSyncReport;
}

export type OperationName = MiddlewareOperation | 'inspect';

/** The operations an adapter supports, by the name a runbook step gives. */
export type Capabilities = Partial<
  Record<OperationName, (request: OperationRequest) => Promise<OperationOutcome>>
>;

/** An adapter with its capabilities: `operations[name]` is what a step of that name runs. */
export interface MiddlewareAdapter extends AdapterMethods {
  readonly operations: Capabilities;
}

/** A clustered middleware's adapter: every membership and data operation is there. */
export type ClusteredAdapter = MiddlewareAdapter &
  Required<
    Pick<
      AdapterMethods,
      | 'createCluster'
      | 'joinCluster'
      | 'rejoinCluster'
      | 'decommissionCluster'
      | 'exportData'
      | 'importData'
      | 'backupData'
      | 'restoreData'
    >
  >;

export type DataOperationName = `${DataOperation}Data`;

// Pure, so that workflows can assign ids too; kept importable from here for the adapters.
export { assignMemberIds } from '../../contracts/membership-runbooks.js';
