import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { WorkflowHandle } from '@temporalio/client';
import type { ClusterFile } from '../../src/contracts/cluster-file.js';
import type { MembershipRunbookResult } from '../../src/contracts/membership-runbooks.js';
import { startProductionStack, type ProductionStack } from '../../src/production/stack.js';
import { startRunbook } from '../../src/client/index.js';
import { waitForProgress } from '../helpers/stack.js';

/**
 * The production shape (src/production/stack.ts) on this test's own loopback addresses: its
 * PostgreSQL and Temporal server on 127.0.0.151, agents with HTTPS on .152–.155, two
 * orchestrators. The membership runbooks run through the high-availability events an operator
 * meets: the orchestrator running the runbook is SIGKILLed and the other one finishes it; the
 * Temporal server is SIGKILLed and restarted. The nodes run ZooKeeper only, to keep the file
 * short; the membership e2e file covers Kafka. The Web UI server serves its page and lists the
 * runbooks, which it reads from the frontend over mutual TLS.
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

/** The pids of the workers that completed workflow tasks of `handle` after event `eventId`. */
async function identitiesAfter(handle: Handle, eventId: number): Promise<Set<number>> {
  const history = await handle.fetchHistory();
  return new Set(
    (history.events ?? [])
      .filter((e) => Number(e.eventId) > eventId)
      // Completed, not started: a task the killed worker had started is written when it times out.
      .map((e) => e.workflowTaskCompletedEventAttributes?.identity)
      .filter((i): i is string => !!i)
      .map((i) => Number(i.split('@')[0])),
  );
}

async function scrape(url: string): Promise<string> {
  const res = await fetch(url);
  assert.equal(res.status, 200, url);
  return res.text();
}

/** The value of the first sample of `series` (a name with a label subset) in Prometheus text. */
function sample(
  text: string,
  name: string,
  labels: Record<string, string> = {},
): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (!Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) continue;
    return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return undefined;
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
      uiPort: 8080,
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
      const handle: Handle = await startRunbook(stack.client, 'bootstrapCluster', {
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
      log(`SIGKILL orchestrator-${victim + 1} (pid ${pid}), which runs the bootstrap`);
      await stack.killOrchestrator(victim);
      try {
        const lastEvent = Number((await handle.fetchHistory()).events?.at(-1)?.eventId ?? 0);
        const result = await handle.result();
        assert.deepEqual(result.nodes, [n1, n2, n3]);
        assert.deepEqual([...(await identitiesAfter(handle, lastEvent))], [survivor]);
        for (const n of [n1, n2, n3])
          assert.deepEqual((await clusterFile(n)).cluster.nodes, [n1, n2, n3]);
      } finally {
        await stack.startOrchestrator(victim);
      }
    },
  );

  test(
    'decommission: the Temporal server is SIGKILLed and restarted mid-runbook',
    { timeout: 240_000 },
    async () => {
      const handle: Handle = await startRunbook(stack.client, 'decommissionNodes', {
        clusterId,
        nodes: [n3],
        master: n1,
      });
      await waitForProgress(
        handle,
        // Mid-runbook: a step is done, the runbook goes on (a single step may be over between
        // two polls).
        (p) => p.status === 'running' && p.steps.some((s) => s.status === 'completed'),
        120_000,
      );
      log('SIGKILL the Temporal server and start it again');
      await stack.restartTemporal();
      const result = await handle.result();
      assert.deepEqual(result.nodes, [n1, n2]);
      for (const n of [n1, n2]) assert.deepEqual((await clusterFile(n)).cluster.nodes, [n1, n2]);
    },
  );

  test('join: a fresh node joins over the agents’ HTTPS', { timeout: 240_000 }, async () => {
    const handle: Handle = await startRunbook(stack.client, 'joinNode', {
      clusterId,
      node: n4,
      master: n1,
    });
    const result = await handle.result();
    assert.deepEqual(result.nodes, [n1, n2, n4]);
    for (const n of [n1, n2, n4])
      assert.deepEqual((await clusterFile(n)).cluster.nodes, [n1, n2, n4]);
  });

  test('Web UI: its page, and the runbooks read through the frontend', async () => {
    assert.equal(stack.uiUrl, `http://${host}:8080`);
    const page = await fetch(`${stack.uiUrl}/`);
    assert.equal(page.status, 200);
    assert.match(await page.text(), /<html/i);
    const query = encodeURIComponent(`WorkflowId = 'cg/${clusterId}/membership'`);
    const res = await fetch(`${stack.uiUrl}/api/v1/namespaces/default/workflows?query=${query}`);
    assert.equal(res.status, 200);
    const body = (await res.json()) as {
      executions?: { execution?: { workflowId?: string }; type?: { name?: string } }[];
    };
    const types = (body.executions ?? []).map((e) => e.type?.name).sort();
    // The bootstrap, the decommission and the join, one workflow id (the membership lane).
    assert.deepEqual(types, ['bootstrapCluster', 'decommissionNodes', 'joinNode']);
  });

  test('metrics: every process serves Prometheus text whose series moved', async () => {
    const orchestrator = await scrape(`http://${host}:9464/metrics`);
    assert.equal(
      sample(orchestrator, 'clusterguard_runbooks', {
        type: 'bootstrapCluster',
        state: 'completed',
      }),
      1,
    );
    // The bootstrap's members join through joinNode children, and so did n4.
    const joins = sample(orchestrator, 'clusterguard_runbooks', {
      type: 'joinNode',
      state: 'completed',
    });
    assert.ok(joins !== undefined && joins >= 1, `joinNode runbooks: ${joins}`);
    assert.equal(sample(orchestrator, 'clusterguard_event_spool_depth'), 0);
    assert.ok(orchestrator.includes('temporal_'), 'the SDK runtime metrics are served too');
    const second = await scrape(`http://${host}:9465/metrics`);
    assert.equal(
      sample(second, 'clusterguard_runbooks', { type: 'bootstrapCluster', state: 'completed' }),
      1,
    );
    for (const n of [n1, n2, n4]) {
      const agent = await scrape(`http://${n}:9464/metrics`);
      assert.equal(
        sample(agent, 'clusterguard_server_up', { node: n, middleware: 'zookeeper' }),
        1,
        n,
      );
      const steps = sample(agent, 'clusterguard_step_duration_seconds_count', {
        node: n,
        outcome: 'completed',
      });
      assert.ok(steps !== undefined && steps > 0, `${n} timed its steps: ${steps}`);
    }
    // n3 left the cluster: its ZooKeeper is down.
    const left = await scrape(`http://${n3}:9464/metrics`);
    assert.equal(sample(left, 'clusterguard_server_up', { node: n3, middleware: 'zookeeper' }), 0);
  });

  test("logs: JSON lines, the runbook's workflow id on the agent's lines", () => {
    const agentLines = lines.get(`agent ${n1}`) ?? [];
    const parsed = agentLines.map((l) => {
      try {
        return JSON.parse(l) as Record<string, unknown>;
      } catch {
        assert.fail(`not a JSON line: ${l}`);
      }
    });
    const nameless = parsed.find((l) => l.node !== n1);
    assert.equal(nameless, undefined, 'every line names the node');
    const ofRunbook = parsed.filter((l) => l.workflowId === `cg/${clusterId}/membership`);
    assert.ok(ofRunbook.length > 0, 'some agent lines carry the runbook workflow id');
    const bare = ofRunbook.find(
      (l) => typeof l.runId !== 'string' || typeof l.activity !== 'string',
    );
    assert.equal(bare, undefined, 'every line of the runbook names its run and activity');
  });
});
