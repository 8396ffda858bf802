import type { Client } from '@temporalio/client';
import type { Progress } from '../contracts/progress.js';
import type { Logger } from '../logger.js';
import { scrapedGauge, type Metrics } from './metrics.js';

interface RunbookCounts {
  byTypeAndState: Map<string, number>;
  parkedByType: Map<string, number>;
}

/** How far back `clusterguard_runbooks` looks, and how many runbooks it reads at most. */
const windowMs = 24 * 3600_000;
const maxRunbooks = 1000;

async function countRunbooks(client: Client): Promise<RunbookCounts> {
  const byTypeAndState = new Map<string, number>();
  const running: { type: string; workflowId: string; runId: string }[] = [];
  const since = new Date(Date.now() - windowMs).toISOString();
  let seen = 0;
  for await (const wf of client.workflow.list({ query: `StartTime > "${since}"` })) {
    const key = `${wf.type}\u0000${wf.status.name.toLowerCase()}`;
    byTypeAndState.set(key, (byTypeAndState.get(key) ?? 0) + 1);
    if (wf.status.name === 'RUNNING')
      running.push({ type: wf.type, workflowId: wf.workflowId, runId: wf.runId });
    if (++seen >= maxRunbooks) break;
  }
  const parkedByType = new Map<string, number>();
  await Promise.all(
    running.map(async (r) => {
      const progress = await client.workflow
        .getHandle(r.workflowId, r.runId)
        .query<Progress>('progress')
        .catch(() => undefined);
      const parked = progress?.steps.some((s) => s.status === 'parked') ?? false;
      if (parked) parkedByType.set(r.type, (parkedByType.get(r.type) ?? 0) + 1);
    }),
  );
  return { byTypeAndState, parkedByType };
}

/**
 * The orchestrator's view of the runbooks (from Temporal's visibility and each running
 * runbook's `progress`), read at scrape time, and its event spool.
 */
export function registerOrchestratorMetrics(
  metrics: Metrics,
  options: { client: () => Promise<Client>; spoolDepth: () => number; logger: Logger },
): void {
  // Both gauges come from one listing per scrape.
  let cached: { at: number; counts: Promise<RunbookCounts> } | undefined;
  const counts = async () => {
    if (!cached || Date.now() - cached.at > 5000) {
      cached = { at: Date.now(), counts: options.client().then(countRunbooks) };
    }
    return cached.counts;
  };
  scrapedGauge(
    metrics,
    'clusterguard_runbooks',
    'Runbooks started in the last 24 h, by workflow type and state (running, completed, failed, …)',
    ['type', 'state'],
    async (set) => {
      for (const [key, n] of (await counts()).byTypeAndState) {
        const [type = '', state = ''] = key.split('\u0000');
        set({ type, state }, n);
      }
    },
    options.logger,
  );
  scrapedGauge(
    metrics,
    'clusterguard_runbooks_parked',
    'Running runbooks with a parked step (waiting for an operator), by workflow type',
    ['type'],
    async (set) => {
      for (const [type, n] of (await counts()).parkedByType) set({ type }, n);
    },
    options.logger,
  );
  scrapedGauge(
    metrics,
    'clusterguard_event_spool_depth',
    'Runbook events in the spool, not yet acknowledged by Kafka',
    [],
    (set) => {
      set({}, options.spoolDepth());
      return Promise.resolve();
    },
    options.logger,
  );
}
