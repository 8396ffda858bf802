import path from 'node:path';
import type { AppConfig } from '../src/config/app-config.js';
import type { ClusterStore } from '../src/config/cluster-store.js';
import type { NodeLayout } from '../src/config/layout.js';
import { createEventPublisher, type EventPublisher } from '../src/events/publisher.js';
import type { Logger } from '../src/logger.js';
import { createMiddlewareAdapter } from '../src/middleware/index.js';
import { notSetUp } from '../src/agent/set-up.js';
import type { Supervision } from '../src/agent/supervision.js';
import {
  startNodeSupervisor,
  type NodeSupervisor,
  type SupervisorEvent,
} from '../src/agent/supervisor.js';

const eventType = {
  started: 'io.clusterguard.server.after-start',
  restarted: 'io.clusterguard.server.restarted',
  'gave-up': 'io.clusterguard.server.gave-up',
} as const;

/**
 * The self-healing node (docs/design.md): the agent's supervisor with this node's adapters, and
 * its events published from the agent's own spool, as the bundle announcements are. Undefined
 * when `agent.supervisor.enabled` is false.
 */
export function startAgentSupervisor(deps: {
  config: AppConfig;
  layout: NodeLayout;
  clusterStore: ClusterStore;
  supervision: Supervision;
  logger: Logger;
}): (NodeSupervisor & { stop(): Promise<void> }) | undefined {
  const { config, layout, logger } = deps;
  const s = config.agent.supervisor;
  if (!s.enabled) return undefined;
  const address = config.node.address;
  const adapter = (server: string, signal?: AbortSignal) =>
    createMiddlewareAdapter(server as 'zookeeper', config, {
      address,
      layout,
      logger,
      ...(signal ? { signal } : {}),
    });
  let publisher: EventPublisher | undefined;
  const publish = async (event: SupervisorEvent) => {
    if (!config.events.enabled) return;
    publisher ??= createEventPublisher({
      brokers: async () =>
        config.events.brokers?.length
          ? config.events.brokers
          : (await deps.clusterStore.load()).cluster.nodes.map(
              (n) => `${n}:${config.events.kafkaPort}`,
            ),
      spoolFile: path.join(layout.confFolder, 'supervisor-events-spool.jsonl'),
      logger,
      clientId: `clusterguard-agent-${address}`,
    });
    const time = new Date().toISOString();
    await publisher.enqueue({
      id: `supervisor/${address}/${event.server}/${event.kind}/${time}`,
      type: eventType[event.kind],
      clusterId: config.clusterId,
      runbook: 'nodeSupervisor',
      workflowId: `agent/${address}`,
      subject: address,
      time,
      data: { node: address, by: 'agent', ...event },
    });
  };
  const supervisor = startNodeSupervisor({
    address,
    enabled: config.middleware.enabled,
    supervision: deps.supervision,
    loadClusterFile: () => deps.clusterStore.load(),
    // The process only: the server's health is the guardian's to read, and asking Kafka or
    // CockroachDB every few seconds on every node costs a busy machine dearly.
    isRunning: async (server) => {
      const a = adapter(server);
      return a.processRunning ? a.processRunning() : (await a.checkServer()).running;
    },
    notSetUp: (server) => notSetUp(layout, server),
    start: async (server, signal) => {
      const status = await adapter(server, signal).startServer();
      if (!status.running) throw new Error(status.detail);
    },
    logger,
    publish,
    options: {
      intervalMs: s.intervalMs,
      maxFailures: s.maxFailures,
      backoff: { initialMs: s.initialBackoffMs, maxMs: s.maxBackoffMs },
      stableMs: s.stableMs,
    },
  });
  return {
    health: () => supervisor.health(),
    async stop() {
      await supervisor.stop();
      if (!publisher) return;
      await publisher.flush(3000).catch(() => undefined);
      await publisher.close();
    },
  };
}
