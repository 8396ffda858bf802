import { setTimeout as sleep } from 'node:timers/promises';
import type { ClusterFile } from '../contracts/cluster-file.js';
import type { Logger } from '../logger.js';
import type { Supervision } from './supervision.js';

/** The order a node's servers start in (docs/design.md, "Self-healing node"). */
export const startOrder = ['zookeeper', 'kafka', 'cockroach', 'felix'] as const;
export type SupervisedServer = (typeof startOrder)[number];

export interface SupervisorOptions {
  /** Pause between two looks at the servers. */
  intervalMs: number;
  /** Failed starts in a row after which a server is left stopped and reported. */
  maxFailures: number;
  /** Wait after a failed start: `initialMs`, doubling up to `maxMs`. */
  backoff: { initialMs: number; maxMs: number };
  /** A server that dies sooner than this after the supervisor started it counts as a failed start. */
  stableMs: number;
}

export const defaultSupervisorOptions: SupervisorOptions = {
  intervalMs: 2000,
  maxFailures: 5,
  backoff: { initialMs: 1000, maxMs: 30_000 },
  stableMs: 60_000,
};

export type ServerState = 'running' | 'starting' | 'down' | 'held' | 'failed' | 'unsupervised';

export interface ServerHealth {
  server: SupervisedServer;
  state: ServerState;
  /** One line for an operator. */
  detail: string;
  /** Restarts by the supervisor since the agent started. */
  restarts: number;
  /** Failed starts in a row. */
  failures: number;
  /** When it was last seen down (ISO-8601), while it is down. */
  downSince?: string;
  /** How long the last restart took, from seeing it down to it serving again. */
  lastRecoveryMs?: number;
}

/** What the supervisor tells the outside world: an event on Kafka and a log line. */
export interface SupervisorEvent {
  kind: 'started' | 'restarted' | 'gave-up';
  server: SupervisedServer;
  /** `boot` (the agent started the node's servers) or `restart` (one had died). */
  reason: 'boot' | 'restart';
  detail: string;
  failures?: number;
  recoveryMs?: number;
}

export interface SupervisorDeps {
  address: string;
  /** The servers this node runs (`middleware.enabled`), in any order. */
  enabled: readonly string[];
  supervision: Supervision;
  loadClusterFile: () => Promise<ClusterFile>;
  /** Whether the server's process runs (its pid file names a live process). */
  isRunning: (server: SupervisedServer) => Promise<boolean>;
  /**
   * Why the server is not set up on this node (no configuration, or no data of its own), or
   * undefined when it is. The supervisor restarts what ran before; it never creates a server:
   * a Kafka formatted anew under a member's node id, or a ZooKeeper started empty in an
   * ensemble, can be elected leader of data it does not have and truncate the others (docs/design.md, "Data safety").
   */
  notSetUp?: (server: SupervisedServer) => Promise<string | undefined>;
  /** Starts the server and waits until it serves; rejects with why it did not. */
  start: (server: SupervisedServer, signal: AbortSignal) => Promise<void>;
  logger: Logger;
  publish?: (event: SupervisorEvent) => Promise<void>;
  options?: Partial<SupervisorOptions>;
}

export interface NodeSupervisor {
  health(): { member: boolean; servers: ServerHealth[] };
  stop(): Promise<void>;
}

/** Whether this node's cluster.json says it is a configured member whose servers should run. */
export function configuredMember(file: ClusterFile, address: string): boolean {
  const c = file.cluster;
  return (
    c.nodes.includes(address) &&
    !c.decommissionNodes.includes(address) &&
    c.clusterConfigReady &&
    c.nodeConfigReady
  );
}

interface Track extends ServerHealth {
  nextAttemptAt: number;
  startedAt?: number;
  downAt?: number;
}

/**
 * The node agent's supervisor (docs/design.md, "Self-healing node"). On a node whose cluster.json
 * says it is a configured member it starts the servers in order, then watches them: one that
 * died is started again with backoff; after `maxFailures` failed starts in a row it is left
 * stopped and reported. It does nothing to a server a runbook holds or is working on.
 */
export function startNodeSupervisor(deps: SupervisorDeps): NodeSupervisor {
  const o = { ...defaultSupervisorOptions, ...deps.options };
  const servers = startOrder.filter((s) => deps.enabled.includes(s));
  const tracks = new Map<SupervisedServer, Track>(
    servers.map((server) => [
      server,
      {
        server,
        state: 'unsupervised',
        detail: 'not looked at yet',
        restarts: 0,
        failures: 0,
        nextAttemptAt: 0,
      },
    ]),
  );
  let member = false;
  let booted = false;
  const stopping = new AbortController();

  const emit = async (event: SupervisorEvent) => {
    const fields = { ...event };
    if (event.kind === 'gave-up') deps.logger.error(`supervisor: ${event.server} gave-up`, fields);
    else deps.logger.info(`supervisor: ${event.server} ${event.kind}`, fields);
    await deps
      .publish?.(event)
      .catch((err: unknown) =>
        deps.logger.warn('supervisor: event not published', { error: (err as Error).message }),
      );
  };

  async function look(t: Track, reason: 'boot' | 'restart'): Promise<void> {
    const record = await deps.supervision.record(t.server);
    if (deps.supervision.busy(t.server) || record.heldBy) {
      Object.assign(t, {
        state: 'held',
        detail: `a runbook ${record.heldBy ? `stopped it (${record.heldBy.operation})` : 'works on it'}; left alone`,
        failures: 0,
      });
      delete t.downAt;
      return;
    }
    if (record.gaveUp) {
      Object.assign(t, {
        state: 'failed',
        failures: record.gaveUp.failures,
        detail:
          `left stopped after ${record.gaveUp.failures} failed starts in a row (${record.gaveUp.error}); ` +
          'fix the cause, then start it with a runbook (startServer, rejoinNode)',
      });
      return;
    }
    const now = Date.now();
    if (await deps.isRunning(t.server)) {
      if (t.startedAt !== undefined && now - t.startedAt >= o.stableMs) t.failures = 0;
      Object.assign(t, { state: 'running', detail: 'runs' });
      delete t.downAt;
      delete t.downSince;
      return;
    }
    const missing = await deps.notSetUp?.(t.server);
    if (missing) {
      Object.assign(t, {
        state: 'unsupervised',
        detail:
          `not set up on this node (${missing}); the supervisor restarts only what ran before: ` +
          'a runbook (bootstrapCluster, joinNode, rejoinNode) sets it up',
        failures: 0,
      });
      delete t.downAt;
      delete t.downSince;
      return;
    }
    if (t.downAt === undefined) {
      t.downAt = now;
      t.downSince = new Date(now).toISOString();
      // It died soon after the supervisor started it: that start did not hold.
      if (t.startedAt !== undefined && now - t.startedAt < o.stableMs) t.failures += 1;
    }
    if (t.failures >= o.maxFailures) return giveUp(t, t.detail, reason);
    if (now < t.nextAttemptAt) {
      Object.assign(t, {
        state: 'down',
        detail: `down; next start in ${Math.ceil((t.nextAttemptAt - now) / 1000)} s`,
      });
      return;
    }
    Object.assign(t, { state: 'starting', detail: `starting (${reason})` });
    try {
      await deps.supervision.ownStart(t.server, (signal) =>
        deps.start(t.server, AbortSignal.any([signal, stopping.signal])),
      );
    } catch (err) {
      if (stopping.signal.aborted || deps.supervision.busy(t.server)) return;
      t.failures += 1;
      const error = (err as Error).message.split('\n')[0] ?? 'failed';
      t.nextAttemptAt =
        Date.now() + Math.min(o.backoff.maxMs, o.backoff.initialMs * 2 ** (t.failures - 1));
      Object.assign(t, { state: 'down', detail: `start ${t.failures} failed: ${error}` });
      deps.logger.warn(`supervisor: ${t.server} did not start`, { failures: t.failures, error });
      if (t.failures >= o.maxFailures) await giveUp(t, error, reason);
      return;
    }
    const recoveryMs = Date.now() - (t.downAt ?? now);
    t.startedAt = Date.now();
    t.restarts += reason === 'restart' ? 1 : 0;
    t.lastRecoveryMs = recoveryMs;
    Object.assign(t, { state: 'running', detail: 'runs' });
    delete t.downAt;
    delete t.downSince;
    await emit({
      kind: reason === 'boot' ? 'started' : 'restarted',
      server: t.server,
      reason,
      detail: reason === 'boot' ? 'started at agent start' : `serves again after ${recoveryMs} ms`,
      recoveryMs,
    });
  }

  async function giveUp(t: Track, error: string, reason: 'boot' | 'restart'): Promise<void> {
    await deps.supervision.giveUp(t.server, t.failures, error);
    Object.assign(t, {
      state: 'failed',
      detail: `left stopped after ${t.failures} failed starts in a row (${error})`,
    });
    await emit({
      kind: 'gave-up',
      server: t.server,
      reason,
      detail: t.detail,
      failures: t.failures,
    });
  }

  async function round(): Promise<void> {
    try {
      member = configuredMember(await deps.loadClusterFile(), deps.address);
    } catch {
      member = false;
    }
    if (!member) {
      for (const t of tracks.values())
        Object.assign(t, {
          state: 'unsupervised',
          detail: 'this node is not a configured member (cluster.json)',
        });
      return;
    }
    const reason = booted ? 'restart' : 'boot';
    // In order: Kafka is not started before ZooKeeper has been looked at (and started).
    for (const t of tracks.values()) {
      if (stopping.signal.aborted) return;
      await look(t, reason);
    }
    if (!booted) {
      booted = true;
      deps.logger.info('supervisor: servers of this configured member', {
        servers: [...tracks.values()].map((t) => `${t.server}: ${t.state}`),
      });
    }
  }

  const loop = (async () => {
    while (!stopping.signal.aborted) {
      try {
        await round();
      } catch (err) {
        deps.logger.warn('supervisor: round failed', { error: (err as Error).message });
      }
      await sleep(o.intervalMs, undefined, { signal: stopping.signal }).catch(() => undefined);
    }
  })();

  return {
    health: () => ({
      member,
      servers: [...tracks.values()].map(
        ({ nextAttemptAt: _n, startedAt: _s, downAt: _d, ...h }) => h,
      ),
    }),
    async stop() {
      stopping.abort();
      await loop;
    },
  };
}
