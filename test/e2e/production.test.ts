import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { WorkflowHandle } from '@temporalio/client';
import type { ClusterFile } from '../../src/contracts/cluster-file.js';
import type { MembershipRunbookResult } from '../../src/contracts/membership-runbooks.js';
import { startProductionStack, type ProductionStack } from '../../src/production/stack.js';
import { startMembershipRunbook } from '../../src/temporal/runbooks.js';
import { stepStatus, waitForProgress } from '../helpers/stack.js';

/**
 * The production shape (src/production/stack.ts) on this test's own loopback addresses: its
 * PostgreSQL and Temporal server on 127.0.0.151, agents with HTTPS on .152–.155, two
 * orchestrators. The membership runbooks run through the high-availability events an operator
 * meets: the orchestrator running the runbook is SIGKILLed and the other one finishes it; the
 * Temporal server is SIGKILLed and restarted. The nodes run ZooKeeper only, to keep the file
 * short; the membership e2e file covers Kafka.
 */
const host = '127.0.0.151';
const [n1, n2, n3, n4] = ['127.0.0.152', '127.0.0.153', '127.0.0.154', '127.0.0.155'] as const;
const clusterId = 'prod';
const log = (msg: string) => console.error(`[production] ${msg}`);
type Handle = WorkflowHandle<(input: unknown) => Promise<MembershipRunbookResult>>;

/** The pid in the worker identity (`<pid>@<host>`) that last took a workflow task of `handle`. */
async function workflowWorkerPid(handle: Handle): Promise<number | undefined> {
  const history = await handle.fetchHistory();
  const identities = (history.events ?? [])
    .map((e) => e.workflowTaskStartedEventAttributes?.identity)
    .filter((i): i is string => !!i);
  const last = identities.at(-1);
  return last ? Number(last.split('@')[0]) : undefined;
}

async function identitiesAfter(handle: Handle, eventId: number): Promise<Set<number>> {
  const history = await handle.fetchHistory();
  return new Set(
    (history.events ?? [])
      .filter((e) => Number(e.eventId) > eventId)
      .map((e) => e.workflowTaskStartedEventAttributes?.identity)
      .filter((i): i is string => !!i)
      .map((i) => Number(i.split('@')[0])),
  );
}

describe('the production stack: PostgreSQL, Temporal with mutual TLS, two orchestrators', () => {
  let stack: ProductionStack;
  let dir: string;
  const lines = new Map<string, string[]>();
  const clusterFile = async (n: string) =>
    JSON.parse(await readFile(stack.layout(n).clusterFile, 'utf8')) as ClusterFile;

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'cg-production-'));
    const started = Date.now();
    stack = await startProductionStack({
      dataDir: dir,
      nodes: [n1, n2, n3, n4],
      host,
      postgresPort: 5432,
      agentPort: 7700,
      clusterId,
      middleware: ['zookeeper'],
      metricsPorts: { orchestrators: [9464, 9465], agent: 9464 },
      say: log,
      onLine: (label, line) => {
        const l = lines.get(label) ?? [];
        lines.set(label, l);
        l.push(line);
      },
    });
    log(`ready in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  });
  after(async () => {
    await stack?.close();
    if (!process.env.CG_KEEP_TEST_DIR) await rm(dir, { recursive: true, force: true });
  });

  test(
    'bootstrap: the orchestrator running it is SIGKILLed, the other one carries it to the end',
    { timeout: 240_000 },
    async () => {
      const handle: Handle = await startMembershipRunbook(stack.client, 'bootstrapCluster', {
        clusterId,
        nodes: [n1, n2, n3],
      });
      // Mid-runbook: a step is done, the runbook goes on.
      await waitForProgress(
        handle,
        (p) => p.status === 'running' && p.steps.some((s) => s.status === 'completed'),
      );
      const pid = await workflowWorkerPid(handle);
      const pids = stack.orchestrators.map((o) => o?.process.pid);
      const victim = pids.indexOf(pid);
      assert.ok(
        victim >= 0,
        `the runbook's worker ${pid} is one of the orchestrators ${pids.join(', ')}`,
      );
      const survivor = pids[1 - victim];
      const lastEvent = Number((await handle.fetchHistory()).events?.at(-1)?.eventId ?? 0);
      log(`SIGKILL orchestrator-${victim + 1} (pid ${pid}), which runs the bootstrap`);
      await stack.killOrchestrator(victim);
      const result = await handle.result();
      assert.deepEqual(result.nodes, [n1, n2, n3]);
      assert.deepEqual([...(await identitiesAfter(handle, lastEvent))], [survivor]);
      for (const n of [n1, n2, n3])
        assert.deepEqual((await clusterFile(n)).cluster.nodes, [n1, n2, n3]);
      await stack.startOrchestrator(victim);
    },
  );

  test(
    'decommission: the Temporal server is SIGKILLed and restarted mid-runbook',
    { timeout: 240_000 },
    async () => {
      const handle: Handle = await startMembershipRunbook(stack.client, 'decommissionNodes', {
        clusterId,
        nodes: [n3],
        master: n1,
      });
      await waitForProgress(
        handle,
        (p) => stepStatus(p, `decommission:${n3}:zookeeper`) === 'running',
      );
      log('SIGKILL the Temporal server and start it again');
      await stack.restartTemporal();
      const result = await handle.result();
      assert.deepEqual(result.nodes, [n1, n2]);
      for (const n of [n1, n2]) assert.deepEqual((await clusterFile(n)).cluster.nodes, [n1, n2]);
    },
  );

  test('join: a fresh node joins over the agents’ HTTPS', { timeout: 240_000 }, async () => {
    const handle: Handle = await startMembershipRunbook(stack.client, 'joinNode', {
      clusterId,
      node: n4,
      master: n1,
    });
    const result = await handle.result();
    assert.deepEqual(result.nodes, [n1, n2, n4]);
    for (const n of [n1, n2, n4])
      assert.deepEqual((await clusterFile(n)).cluster.nodes, [n1, n2, n4]);
  });
});
