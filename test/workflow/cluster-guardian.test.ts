import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import type { temporal } from '@temporalio/proto';
import type { ClusterFileInput } from '../../src/contracts/cluster-file.js';
import type { GuardianOutcome, GuardianState } from '../../src/contracts/guardian.js';
import type { MembershipRunbookResult } from '../../src/contracts/membership-runbooks.js';
import { agentReadyLine, spawnNodeAgent, type ChildProcess } from '../../src/dev/processes.js';
import { repoRoot } from '../../src/process.js';
import { freePort, startDevServer, type DevServer } from '../../src/temporal/dev-server.js';
import {
  guardianHandle,
  guardianState,
  pauseGuardian,
  resumeGuardian,
  setGuardianMembership,
  startRunbook,
  type RunbookHandle,
  type RunbookInput,
} from '../../src/client/index.js';
import { abortUpdate, progressQuery, setMembershipUpdate } from '../../src/contracts/messages.js';
import { recordHistory } from '../helpers/stack.js';
import { startTestCluster, type TestCluster } from '../helpers/agents.js';
import { startTestOrchestrator, testServer, type TestOrchestrator } from '../helpers/temporal.js';

/**
 * The guardian against the real dev server and real agent processes. The agents run no
 * middleware, so the children run as dry runs (`dryRun: true` guardians): what proves the
 * decision is the child workflow the guardian started (type, id, input) and the plan that
 * child computed from the master's real cluster.json, not a mock.
 */
const [n1, n2, n3, n4, n5] = ['127.0.0.51', '127.0.0.52', '127.0.0.53', '127.0.0.54', '127.0.0.55'];
/** The controller's HTTP API cannot exist here: a stand-in serves its ControllerCluster shape. */
const controllerStandInHost = '127.0.0.59';

/** An update's refusal: the validator's words are the cause of WorkflowUpdateFailedError. */
async function rejectsWith(run: Promise<unknown>, pattern: RegExp): Promise<void> {
  await assert.rejects(run, (err: Error) => {
    assert.match(`${err.message} ${(err.cause as Error | undefined)?.message ?? ''}`, pattern);
    return true;
  });
}

/** With CG_RECORD_HISTORIES=<dir>, histories for test/replay are written there. */
const recorder = { temporalAddress: process.env.CG_TEST_TEMPORAL_ADDRESS ?? '' };

describe('clusterGuardian', () => {
  let orchestrator: TestOrchestrator;
  let cluster: TestCluster;
  let ticking: Ticking;
  let client: Client;
  let run = 0;
  const clusterId = () => `guard-${process.pid}-${++run}`;
  const started: string[] = [];
  const webappLog = () => path.join(cluster.dir, 'webapps-127.0.0.53.log');
  const clusterFilePath = (node: string) =>
    path.join(cluster.dir, 'nodes', node, 'conf', 'cluster.json');

  /** cluster.json as bootstrapCluster leaves it on every member of [n1, n2, n3]. */
  async function writeMembership(node: string, ready = true): Promise<void> {
    const file: ClusterFileInput = {
      cluster: {
        datetime: new Date().toISOString(),
        nodes: [n1, n2, n3],
        decommissionNodes: [],
        clusterConfigReady: true,
        nodeConfigReady: ready,
        nodeIsMaster: node === n1,
        nodeIsRejoin: false,
        memberIds: { [n1]: 1, [n2]: 2, [n3]: 3 },
        lastMemberId: 3,
        clusterUuid: 'q1Sh-9_ISia_zwGINzRvyQ',
      },
      history: [],
    };
    await writeFile(clusterFilePath(node), `${JSON.stringify(file, null, 2)}\n`);
  }

  async function waitForState(
    id: string,
    predicate: (s: GuardianState) => boolean,
    timeoutMs = 30_000,
  ): Promise<GuardianState> {
    const deadline = Date.now() + timeoutMs;
    let last: GuardianState | undefined;
    for (;;) {
      last = await guardianState(client, id).catch(() => last);
      if (last && predicate(last)) return last;
      if (Date.now() > deadline)
        throw new Error(`guardian state never matched: ${JSON.stringify(last)}`);
      await sleep(100);
    }
  }
  const outcome = (o: GuardianOutcome) => (s: GuardianState) => s.lastCheck?.outcome === o;

  async function membershipChild(id: string) {
    const handle = client.workflow.getHandle(`cg/${id}/membership`);
    const description = await handle.describe();
    return { description, result: (await handle.result()) as MembershipRunbookResult };
  }

  async function start(input: RunbookInput<'clusterGuardian'>) {
    const handle = await startRunbook(client, 'clusterGuardian', input, {
      taskQueue: orchestrator.taskQueue,
    });
    started.push(input.clusterId);
    return handle;
  }

  before(async () => {
    [orchestrator, cluster, ticking] = await Promise.all([
      startTestOrchestrator(),
      startTestCluster([n1, n2, n3]),
      startTicking(),
    ]);
    client = orchestrator.client;
    await Promise.all([n1, n2, n3].map((n) => writeMembership(n)));
  });
  after(async () => {
    await Promise.all(
      started.map((id) =>
        guardianHandle(client, id)
          .terminate('test over')
          .catch(() => undefined),
      ),
    );
    await Promise.all([orchestrator?.close(), cluster?.close(), ticking?.close()]);
  });

  test('setMembership: a reorder does nothing, a growth starts joinNode for the new node', async () => {
    const id = clusterId();
    await start({ clusterId: id, master: n1, intervalSeconds: 0.2, dryRun: true });
    await waitForState(id, outcome('no-desired'));

    await assert.rejects(
      setGuardianMembership(client, id, { nodes: [n1, n1] }),
      /duplicate node address/,
    );
    await rejectsWith(
      guardianHandle(client, id).executeUpdate(setMembershipUpdate, {
        args: [{ nodes: [n1, n2], master: n3 }],
      }),
      /must be a member/,
    );

    const answer = await setGuardianMembership(client, id, { nodes: [n3, n1, n2], master: n2 });
    assert.match(answer, new RegExp(`\\[${n2}, ${n3}, ${n1}\\]`));
    let state = await waitForState(id, outcome('reordered'));
    assert.deepEqual(state.actual?.nodes, [n1, n2, n3]);
    assert.equal(state.lastChild, undefined);
    await assert.rejects(
      client.workflow.getHandle(`cg/${id}/membership`).describe(),
      WorkflowNotFoundError,
    );

    await setGuardianMembership(client, id, { nodes: [n1, n2, n3, n4], reason: 'grow' });
    state = await waitForState(id, outcome('planned'));
    assert.equal(state.lastChild?.runbook, 'joinNode');
    assert.equal(state.lastChild?.workflowId, `cg/${id}/membership`);
    assert.deepEqual(state.lastChild?.input, {
      clusterId: id,
      dryRun: true,
      node: n4,
      master: n1,
      stepAttempts: 5,
      agentTimeoutSeconds: 30,
    });
    const child = await membershipChild(id);
    assert.equal(child.description.type, 'joinNode');
    assert.equal(child.result.plan.membership.kind, 'grow');
    assert.deepEqual(child.result.plan.membership.desired, [n1, n2, n3, n4]);
    // A planned change is not planned again at every tick: the same child run stays the last.
    const ticks = state.ticks;
    await waitForState(id, (s) => s.ticks >= ticks + 3);
    assert.equal((await guardianState(client, id)).lastChild?.runId, state.lastChild?.runId);
    assert.equal(child.description.runId, state.lastChild?.runId);

    // Paused: no check acts; resumed: it goes on.
    await pauseGuardian(client, id, 'maintenance window');
    state = await waitForState(id, (s) => s.paused?.reason === 'maintenance window');
    await resumeGuardian(client, id);
    await waitForState(id, (s) => !s.paused);
  });

  test('the controller API (a local stand-in) leads to decommissionNodes with `add` for a replacement', async () => {
    const id = clusterId();
    let list = [n1, n2, n3];
    const standIn: Server = createServer((req, res) => {
      res.setHeader('content-type', 'application/json');
      res.end(
        JSON.stringify({
          code: 0,
          output: {
            clusterIpList: list.map((ip, i) => ({
              keyUuid: `key-${i}`,
              clusterName: 'campus',
              isOnline: true,
              controllerIp: ip,
              clusterIndex: i,
            })),
          },
        }),
      );
    });
    const port = await freePort(controllerStandInHost);
    await new Promise<void>((resolve) => standIn.listen(port, controllerStandInHost, resolve));
    try {
      await start({
        clusterId: id,
        master: n1,
        intervalSeconds: 0.2,
        dryRun: true,
        middleware: ['zookeeper'],
        source: {
          controllerUrl: `http://${controllerStandInHost}:${port}/cluster`,
          timeoutSeconds: 5,
        },
      });
      let state = await waitForState(id, outcome('in-sync'));
      assert.equal(state.desired?.from, 'controller');
      await rejectsWith(
        setGuardianMembership(client, id, { nodes: [n1] }),
        /comes from the controller/,
      );

      list = [n1, n2, n5];
      state = await waitForState(id, (s) => s.lastChild?.finishedAt !== undefined);
      assert.equal(state.lastChild?.runbook, 'decommissionNodes');
      assert.deepEqual(
        {
          nodes: state.lastChild?.input.nodes,
          add: state.lastChild?.input.add,
          master: state.lastChild?.input.master,
        },
        { nodes: [n3], add: [n5], master: n1 },
      );
      const child = await membershipChild(id);
      assert.equal(child.description.type, 'decommissionNodes');
      assert.equal(child.result.plan.membership.kind, 'replace');
      // The agents here run no ZooKeeper: the child's live pre-check refuses, and the guardian
      // treats its refusal as an unsafe change.
      assert.match(child.result.refusal ?? '', /zookeeper/);
      state = await waitForState(id, outcome('unsafe'));
      assert.match(state.unsafe?.reason ?? '', /zookeeper/);
    } finally {
      await new Promise((resolve) => standIn.close(resolve));
    }
  });

  test('an unsafe shrink raises guardian.unsafe-membership, shows the guide and changes nothing', async () => {
    const id = clusterId();
    const files = await Promise.all([n1, n2, n3].map((n) => readFile(clusterFilePath(n), 'utf8')));
    const handle = await start({ clusterId: id, master: n1, intervalSeconds: 0.2, desired: [n1] });
    const state = await waitForState(id, outcome('unsafe'));
    assert.match(state.unsafe?.reason ?? '', /majority/);
    assert.match(state.unsafe?.guide ?? '', /changed nothing/);
    const ticks = state.ticks;
    await waitForState(id, (s) => s.ticks >= ticks + 3);

    await assert.rejects(
      client.workflow.getHandle(`cg/${id}/membership`).describe(),
      WorkflowNotFoundError,
    );
    assert.deepEqual(
      await Promise.all([n1, n2, n3].map((n) => readFile(clusterFilePath(n), 'utf8'))),
      files,
    );
    // Raised once (not at every tick), through the publishEvent activity.
    const events: { type?: string; data?: { desired?: string[] } }[] = [];
    for (const e of (await handle.fetchHistory()).events ?? []) {
      const a = e.activityTaskScheduledEventAttributes;
      if (a?.activityType?.name !== 'publishEvent') continue;
      const data = a.input?.payloads?.[0]?.data;
      if (data) events.push(JSON.parse(Buffer.from(data).toString('utf8')) as (typeof events)[0]);
    }
    assert.deepEqual(
      events.map((e) => [e.type, e.data?.desired]),
      [['io.clusterguard.guardian.unsafe-membership', [n1]]],
    );
    const metadata = await handle.query<{ currentDetails?: string }>(
      '__temporal_workflow_metadata',
    );
    assert.match(metadata.currentDetails ?? '', /Unsafe membership change refused/);
    assert.match(metadata.currentDetails ?? '', /restoreCluster/);
  });

  test('an agent restarted on a cluster.json that is not ready gets rejoinNode', async () => {
    const id = clusterId();
    await start({
      clusterId: id,
      master: n1,
      intervalSeconds: 0.2,
      dryRun: true,
      desired: [n1, n2, n3],
    });
    await waitForState(id, outcome('in-sync'));
    await cluster.agents.get(n3)?.stop();
    await writeMembership(n3, false);
    const lines: string[] = [];
    const { address, namespace } = testServer();
    const agent: ChildProcess = spawnNodeAgent({
      address: n3,
      root: path.join(cluster.dir, 'nodes', n3),
      temporalAddress: address,
      namespace,
      tokenFile: cluster.tokenFile,
      port: cluster.port,
      binDir: path.join(cluster.dir, 'bin'),
      env: {
        CG_CLUSTER_ID: id,
        CG_AGENT__SUPERVISOR__ENABLED: 'false',
        // Used by the next test: this node's webapps are a command that leaves a trace.
        CG_WEBAPPS__STOP_COMMAND: JSON.stringify(['/bin/sh', '-c', `echo stop >> ${webappLog()}`]),
        CG_WEBAPPS__START_COMMAND: JSON.stringify([
          '/bin/sh',
          '-c',
          `echo start >> ${webappLog()}`,
        ]),
      },
      onLine: (line) => lines.push(line),
    });
    cluster.agents.set(n3, agent);
    await agent.waitForLine(agentReadyLine, 180_000);
    const deadline = Date.now() + 30_000;
    while (!lines.some((l) => /asked cg\/.*\/guardian to reconcile/.test(l))) {
      if (Date.now() > deadline) throw new Error(`the agent never asked:\n${lines.join('\n')}`);
      await sleep(100);
    }
    const state = await waitForState(
      id,
      (s) => s.lastChild?.runbook === 'rejoinNode' && !!s.lastChild.finishedAt,
    );
    assert.equal(state.lastChild?.input.node, n3);
    assert.equal(state.lastChild?.input.master, n1);
    assert.equal((await membershipChild(id)).description.type, 'rejoinNode');
  });

  test('webapps are stopped before a real change and started again when it fails', async () => {
    const id = clusterId();
    await start({
      clusterId: id,
      master: n1,
      intervalSeconds: 0.2,
      desired: [n1, n2, n3],
      middleware: ['zookeeper'],
      stepAttempts: 1,
      agentTimeoutSeconds: 1,
    });
    await waitForState(id, outcome('in-sync'));
    await setGuardianMembership(client, id, { nodes: [n1, n2, n3, n4] });
    // n4 has no agent: the real joinNode waits for it, parked as unreachable, until aborted.
    await waitForState(id, (s) => s.runningChild?.dryRun === false);
    const child = client.workflow.getHandle(`cg/${id}/membership`);
    const deadline = Date.now() + 60_000;
    while (!(await child.query(progressQuery)).parked?.length) {
      if (Date.now() > deadline) throw new Error('the joinNode never parked');
      await sleep(200);
    }
    assert.equal(await readFile(webappLog(), 'utf8'), 'stop\n');
    await child.executeUpdate(abortUpdate, { args: [{ reason: 'test: n4 does not exist' }] });
    const state = await waitForState(id, outcome('failed'));
    assert.match(state.lastCheck?.message ?? '', /joinNode failed: .*aborted/);
    assert.equal(await readFile(webappLog(), 'utf8'), 'stop\nstart\n');
    const history = state.history.map((h) => h.what);
    const at = (re: RegExp) => history.findIndex((h) => re.test(h));
    assert.ok(at(/webapps stop on 127\.0\.0\.53: done/) >= 0, history.join('\n'));
    assert.ok(at(/webapps stop on 127\.0\.0\.51: skipped/) >= 0, history.join('\n'));
    assert.ok(at(/webapps stop on 127\.0\.0\.54: agent not answering/) >= 0, history.join('\n'));
    assert.ok(at(/webapps stop on 127\.0\.0\.53/) < at(/started joinNode as/));
    assert.ok(at(/joinNode failed/) < at(/webapps start on 127\.0\.0\.53: done/));
    await recordHistory(recorder, `cg/${id}/guardian`, 'cluster-guardian-failed-change');
    // A failed change is not repeated at every tick.
    const ticks = state.ticks;
    await waitForState(id, (s) => s.ticks >= ticks + 3);
    assert.equal((await guardianState(client, id)).lastChild?.runId, state.lastChild?.runId);
  });

  test('2,000 timer ticks continue as new and keep every run under the history limit', () =>
    checkTicks(ticking));
});

/**
 * 2,000 timer ticks of an idle guardian. By default the dev server fires timers on a 1 s grid
 * (measured: a 10 ms timer fired after ~990 ms) and polls its timer and transfer queues at most
 * 20 times a second; this guardian runs on a server of its own that lifts both, so a tick takes
 * ~25 ms instead of ~1 s. It is started before the other tests and ticks while they run.
 */
interface Ticking {
  server: DevServer;
  orchestrator: TestOrchestrator;
  handle: RunbookHandle<'clusterGuardian'>;
  ticks: number;
  begun: number;
  close(): Promise<void>;
}

async function startTicking(): Promise<Ticking> {
  const server = await startDevServer({
    binary: process.env.CG_TEMPORAL_BIN ?? path.join(repoRoot, '.tools', 'bin', 'temporal'),
    port: await freePort(),
    headless: true,
    dynamicConfig: {
      'history.timerProcessorMaxTimeShift': '"1ms"',
      'history.timerProcessorMaxPollRPS': '10000',
      'history.transferProcessorMaxPollRPS': '10000',
    },
  });
  const orchestrator = await startTestOrchestrator({ server });
  // 2,000 by default; CG_GUARDIAN_TEST_TICKS shortens it on a starved machine.
  const ticks = Number(process.env.CG_GUARDIAN_TEST_TICKS ?? 2000);
  const handle = await startRunbook(
    orchestrator.client,
    'clusterGuardian',
    {
      clusterId: `guard-ticks-${process.pid}`,
      master: n1,
      intervalSeconds: 0.01,
      maxTicksPerRun: Math.max(10, Math.floor(ticks / 4)),
    },
    { taskQueue: orchestrator.taskQueue },
  );
  return {
    server,
    orchestrator,
    handle,
    ticks,
    begun: Date.now(),
    async close() {
      await handle.terminate('test over').catch(() => undefined);
      await orchestrator.close();
      await server.stop();
    },
  };
}

async function checkTicks(t: Ticking): Promise<void> {
  const { client } = t.orchestrator;
  const id = `guard-ticks-${process.pid}`;
  let state: GuardianState | undefined;
  const deadline = Date.now() + 600_000;
  while (!state || state.totalTicks < t.ticks) {
    if (Date.now() > deadline) throw new Error(`only ${state?.totalTicks} ticks`);
    await sleep(500);
    state = await guardianState(client, id).catch(() => state);
  }
  const elapsed = Date.now() - t.begun;
  await t.handle.terminate('test over');
  // The guardian may continue as new between the last query and the termination, so the run
  // count is read again from the terminated run (a query of a closed run replays its history).
  state = await guardianState(client, id);
  // Walk the chain of runs from the first.
  let runId: string | undefined = t.handle.firstExecutionRunId;
  const lengths: number[] = [];
  while (runId) {
    const history: temporal.api.history.v1.IHistory = await client.workflow
      .getHandle(t.handle.workflowId, runId)
      .fetchHistory();
    const events = history.events ?? [];
    lengths.push(events.length);
    runId =
      events.at(-1)?.workflowExecutionContinuedAsNewEventAttributes?.newExecutionRunId ?? undefined;
  }
  console.error(
    `[guardian] ${state.totalTicks} ticks in ${elapsed} ms over ${lengths.length} runs: ${lengths.join(', ')} events`,
  );
  assert.equal(state.run, lengths.length);
  // ticks / maxTicksPerRun = 4 runs at least (more if Temporal suggested continue-as-new earlier).
  assert.ok(lengths.length >= 4, `expected ≥ 4 runs, got ${lengths.length}`);
  for (const n of lengths) assert.ok(n < 10_000, `a run has ${n} events`);
}
