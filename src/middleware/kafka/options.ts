import { randomBytes } from 'node:crypto';
import { type MiddlewareOperation, type OperationOptions } from '../kit/index.js';

export interface KafkaTopic {
  name: string;
  /** Default 3. */
  partitions?: number;
}

export interface KafkaOptions {
  brokerPort: number;
  controllerPort: number;
  /** JVM heap of the server. Node-local: read from the agent's own options at start. */
  heapMb: number;
  /** The old guard service (docs/design.md): topics to initialise, created with the cluster's replication factor. */
  topics: KafkaTopic[];
  /**
   * Upper bound of the replication factor of configured and internal topics; the factor used is
   * min(this, members). Default 3.
   */
  replicationFactor: number;
  /** Extra server.properties; they override generated keys. */
  serverProperties?: Record<string, string>;
}

export const defaultKafkaOptions: KafkaOptions = {
  brokerPort: 9092,
  controllerPort: 9093,
  heapMb: 256,
  topics: [],
  replicationFactor: 3,
};

export const defaultPartitions = 3;

// Lines of Kafka 3.9's own log (the KafkaRaftServer logger reaches the supervised stdout):
//   [..] INFO [KafkaRaftServer nodeId=1] Kafka Server started (kafka.server.KafkaRaftServer)
//   [..] ERROR Exiting Kafka due to fatal exception (kafka.Kafka$)               (bad config, no meta.properties)
//   [..] ERROR Exiting Kafka due to fatal exception during startup. (kafka.Kafka$)
//   [..] ERROR [BrokerServer id=1] Fatal error during broker startup. Prepare to shutdown (kafka.server.BrokerServer)
export const startFilters = {
  successFilter: String.raw`\[KafkaRaftServer nodeId=\d+\] Kafka Server started`,
  failFilter: String.raw`Exiting Kafka due to fatal exception|Fatal error during (?:broker|controller) startup`,
};

/** The old guard service (docs/design.md) operationOptions defaults; the membership operations start the server with theirs. */
export const kafkaOperationDefaults: Partial<Record<MiddlewareOperation, OperationOptions>> = {
  startServer: { timeoutMs: 90_000, ...startFilters },
  // Graceful stop budget: a broker whose controller quorum is gone waits minutes for a controlled
  // shutdown that cannot happen, so it is killed after this.
  stopServer: { timeoutMs: 30_000 },
  checkServer: { timeoutMs: 10_000 },
  createCluster: { timeoutMs: 180_000, ...startFilters },
  joinCluster: { timeoutMs: 300_000, ...startFilters },
  rejoinCluster: { timeoutMs: 300_000, ...startFilters },
  decommissionCluster: { timeoutMs: 1_800_000 },
  exportData: { timeoutMs: 1_800_000 },
  importData: { timeoutMs: 1_800_000 },
  backupData: { timeoutMs: 1_800_000 },
  restoreData: { timeoutMs: 1_800_000 },
  // One wait of a membership runbook's in-sync step; the step asks again and shows what lags.
  checkInSync: { timeoutMs: 30_000 },
};

/**
 * Kafka's Uuid text form: 16 bytes in unpadded base64url. Kafka never hands out ids that start
 * with '-' (they read as command-line options) nor the reserved all-zero / ...0001 ids.
 */
export function isKafkaClusterId(id: string): boolean {
  if (!/^[A-Za-z0-9_-]{21}[AQgw]$/.test(id) || id.startsWith('-')) return false;
  const bytes = Buffer.from(id, 'base64url');
  if (bytes.length !== 16) return false;
  const zero = bytes.every((b) => b === 0);
  const one = bytes.subarray(0, 15).every((b) => b === 0) && bytes[15] === 1;
  return !zero && !one;
}

/** A new cluster id, as `kafka-storage random-uuid` would make. */
export function newKafkaClusterId(): string {
  for (;;) {
    const id = randomBytes(16).toString('base64url');
    if (isKafkaClusterId(id)) return id;
  }
}
