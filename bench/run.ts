/**
 * `npm run bench [scenario-filter…] [--quick]` (issue 8): what clusterguard costs on top of the
 * work, how a rollout grows with the nodes, and the same rollout with Ansible. Starts its own
 * dev server (SQLite file, WAL), orchestrators and agents on 127.0.0.71–79 and simulated nodes
 * on 127.0.1.1–120, prints one JSON object per scenario, writes all of them to
 * bench/results.json. See docs/performance.md.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream, existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client, Connection, type WorkflowHandle } from '@temporalio/client';
import { tsToMs } from '@temporalio/common/lib/time.js';
import proto, { type temporal } from '@temporalio/proto';
import {
  bundleWorkflowCode,
  DefaultLogger,
  NativeConnection,
  Runtime,
  Worker,
  type WorkflowBundleWithSourceMap,
} from '@temporalio/worker';
import { ZipArchive } from 'archiver';
import { execa } from 'execa';
import { sha256OfFile, BundleStore } from '../src/bundles/store.js';
import { NodeLayout } from '../src/config/layout.js';
import { nodeTaskQueue } from '../src/contracts/addresses.js';
import {
  agentReadyLine,
  orchestratorReadyLine,
  spawnNodeAgent,
  spawnOrchestrator,
  type ChildProcess,
} from '../src/dev/processes.js';
import { repoRoot } from '../src/process.js';
import { guardianState, startRunbook } from '../src/client/index.js';
import { freePort } from '../src/temporal/dev-server.js';
import { workflowsPath } from '../worker/workflow-bundle.js';
import { createBenchActivities } from './activities.js';
import { cliStartup } from './cli.js';
import { felixThreeNodes } from './felix.js';
import {
  ansibleInventory,
  ansiblePlaybook,
  eventTypeName,
  fastTimerConfig,
  gapProfile,
  parseBenchArgs,
  round,
  stepTimings,
  summarize,
  topSelfTime,
  busyShare,
  type CpuProfile,
  type ScenarioName,
  type TimedEvent,
} from './lib.js';
import { logSink, portFreeOnAll, rssMiB, spawnTsChild, type TsChild } from './procs.js';
import { startBenchServer, type BenchServer } from './server.js';
import type { BenchStepsInput } from './workflows.js';
import { progressQuery } from '../src/contracts/messages.js';

const args = parseBenchArgs(process.argv.slice(2));
const Q = args.quick;
const counts = {
  steps: Q ? 40 : 200,
  starts: Q ? 10 : 50,
  rolloutSizes: Q ? [10, 20] : [10, 50, 100],
  ansibleHosts: Q ? 20 : 100,
  guardianTicks: Q ? 150 : 5000,
  inFlight: Q ? 20 : 100,
  felixRuns: Q ? 3 : 10,
  cliRuns: Q ? 5 : 20,
};
const benchStarted = Date.now();
/** The guardian stops here at the latest, so that the whole bench stays under 15 minutes. */
const guardianDeadline = benchStarted + (Q ? 4 : 12) * 60_000;

const ips = {
  // `start-dev --ip` other than 127.0.0.1 fails (its system workers dial 127.0.0.1), so the
  // server takes a free port there, as test/run.ts does; everything else is on our own range.
  server: '127.0.0.1',
  startAgent: '127.0.0.71',
  guardianMaster: '127.0.0.72',
  lossAgent: '127.0.0.73',
};
const simNode = (i: number) => `127.0.1.${i}`;
const stepNode = simNode(120);
const nodesPerSimProcess = 25;
const ansibleVersion = '2.19.14';
const venv = path.join(repoRoot, '.tools', 'ansible-venv');
// Under .data/ (git-ignored): profiles are large and belong to one machine.
const profileDir = path.join(repoRoot, '.data', 'bench-profiles');

type Result = Record<string, unknown> & { scenario: string };
const results: Result[] = [];
function report(result: Result): void {
  results.push(result);
  process.stdout.write(`${JSON.stringify(result)}\n`);
}
const note = (msg: string) =>
  process.stderr.write(`[bench ${round((Date.now() - benchStarted) / 1000, 0)}s] ${msg}\n`);
const secs = (ms: number) => round(ms / 1000, 2);
/** The message with its causes: the SDK's own errors wrap the server's reason. */
function describeError(err: unknown): string {
  const parts: string[] = [];
  for (let e: unknown = err; e instanceof Error && parts.length < 5; e = e.cause) {
    parts.push(e.message);
  }
  return parts.join(': ') || String(err);
}

// --- history ------------------------------------------------------------------------------------

function timedEvents(history: temporal.api.history.v1.IHistory): TimedEvent[] {
  return (history.events ?? []).map((e) => {
    const eventId = Number(e.eventId ?? 0);
    const eventTime = new Date(tsToMs(e.eventTime));
    if (e.activityTaskScheduledEventAttributes) {
      return {
        eventId,
        eventTime,
        eventType: 'ActivityTaskScheduled',
        taskQueue: e.activityTaskScheduledEventAttributes.taskQueue?.name ?? '',
      };
    }
    const started = e.activityTaskStartedEventAttributes;
    if (started) {
      return {
        eventId,
        eventTime,
        eventType: 'ActivityTaskStarted',
        scheduledEventId: Number(started.scheduledEventId),
      };
    }
    const completed = e.activityTaskCompletedEventAttributes;
    if (completed) {
      return {
        eventId,
        eventTime,
        eventType: 'ActivityTaskCompleted',
        scheduledEventId: Number(completed.scheduledEventId),
      };
    }
    const name = proto.temporal.api.enums.v1.EventType[e.eventType ?? 0];
    return { eventId, eventTime, eventType: eventTypeName(name ?? 'unknown') };
  });
}

async function eventsOf(handle: WorkflowHandle): Promise<TimedEvent[]> {
  return timedEvents(await handle.fetchHistory());
}

// --- setup --------------------------------------------------------------------------------------

/** ansible-core from PyPI into .tools/ansible-venv, once; a stamp names the version. */
async function ensureAnsible(): Promise<string> {
  const playbook = path.join(venv, 'bin', 'ansible-playbook');
  const stamp = path.join(venv, '.clusterguard-ansible');
  if (existsSync(playbook) && (await readFile(stamp, 'utf8').catch(() => '')) === ansibleVersion) {
    return playbook;
  }
  note(`installing ansible-core ${ansibleVersion} into ${venv} (once)…`);
  await rm(venv, { recursive: true, force: true });
  const python = process.env.PYTHON ?? 'python3';
  try {
    await execa(python, ['-m', 'venv', venv]);
    await execa(
      path.join(venv, 'bin', 'pip'),
      ['install', '-q', '--disable-pip-version-check', `ansible-core==${ansibleVersion}`],
      { stderr: 'inherit' },
    );
  } catch (err) {
    throw new Error(
      `could not install ansible-core ${ansibleVersion} into ${venv} (${(err as Error).message}): ` +
        'install Python 3.11+ with the venv module (`apt-get install python3-venv`) and make PyPI reachable',
    );
  }
  await writeFile(stamp, ansibleVersion);
  return playbook;
}

/** A real jar: a manifest and `bytes` of random (incompressible) payload. */
async function writeJar(
  file: string,
  symbolicName: string,
  version: string,
  bytes: number,
): Promise<{ sha256: string; sha1: string; bytes: number }> {
  const archive = new ZipArchive({ zlib: { level: 1 } });
  const written = pipeline(archive, createWriteStream(file));
  archive.append(
    'Manifest-Version: 1.0\r\nBundle-ManifestVersion: 2\r\n' +
      `Bundle-SymbolicName: ${symbolicName}\r\nBundle-Version: ${version}\r\n\r\n`,
    { name: 'META-INF/MANIFEST.MF' },
  );
  archive.append(randomBytes(bytes), { name: 'com/example/bench/payload.bin' });
  await archive.finalize();
  await written;
  const data = await readFile(file);
  return {
    sha256: createHash('sha256').update(data).digest('hex'),
    sha1: createHash('sha1').update(data).digest('hex'),
    bytes: data.length,
  };
}

/** What the bench needs of a child process, spawned by src/dev/processes.ts or by hand. */
interface Proc {
  process: { pid?: number | undefined };
  waitForLine(pattern: RegExp, timeoutMs: number): Promise<unknown>;
  stop(): Promise<void>;
}

interface Env {
  dir: string;
  server: BenchServer;
  client: Client;
  tokenFile: string;
  token: string;
  agentPort: number;
  bundlePath: string;
  log: ReturnType<typeof logSink>;
  orchestrator: Proc;
  orchestratorQueue: string;
  orchestratorBoot: number;
  agents: Map<string, ChildProcess>;
  agentRoot: (address: string) => string;
  startAgent(address: string): Promise<{ agent: ChildProcess; bootMs: number }>;
}

async function setup(): Promise<Env> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'cg-bench-'));
  const log = logSink(path.join(dir, 'bench.log'));
  note(`work folder ${dir} (child output in bench.log)`);
  const server = await startBenchServer({
    binary: process.env.CG_TEMPORAL_BIN ?? path.join(repoRoot, '.tools', 'bin', 'temporal'),
    ip: ips.server,
    port: await freePort(ips.server),
    dbFile: path.join(dir, 'temporal.sqlite'),
    pragmas: args.pragmas,
    dynamicConfig: args.fastTimers ? fastTimerConfig : {},
  });
  note(
    `dev server at ${server.address} (pragmas journal_mode=WAL ${args.pragmas.join(' ')}; ` +
      `${args.fastTimers ? 'fast timers' : 'default timers'})`,
  );
  const connection = await Connection.connect({ address: server.address });
  const client = new Client({ connection, namespace: server.namespace });
  const token = randomBytes(24).toString('base64url');
  const tokenFile = path.join(dir, 'cluster-token');
  await writeFile(tokenFile, `${token}\n`, { mode: 0o600 });
  const agentPort = await portFreeOnAll([ips.startAgent, ips.guardianMaster, ips.lossAgent]);
  // The orchestrator's workflow bundle, built once like `npm run build:bundle` (into the work
  // folder, so that a bundle in dist/ that someone else built is left alone).
  const bundlePath = path.join(dir, 'workflow-bundle.js');
  const bundleStarted = Date.now();
  const { code } = await bundleWorkflowCode({ workflowsPath, logger: new DefaultLogger('WARN') });
  await writeFile(bundlePath, code);
  note(`workflow bundle built in ${Date.now() - bundleStarted} ms`);

  const orchestratorQueue = 'bench-orchestrator';
  const orchestratorStarted = Date.now();
  const orchestratorEnv = {
    CG_EVENTS__ENABLED: 'false',
    ...(args.prebuiltBundle ? { CG_WORKFLOW_BUNDLE: bundlePath } : {}),
  };
  // --cpu-prof is refused in NODE_OPTIONS, so a profiled orchestrator is started by hand; every
  // thread (the workflow threads too) writes its own profile when it exits.
  const orchestrator: Proc = args.cpuProf
    ? spawnTsChild(
        'worker/orchestrator.ts',
        [],
        log.line('orchestrator'),
        {
          ...orchestratorEnv,
          CG_TEMPORAL__ADDRESS: server.address,
          CG_TEMPORAL__TASK_QUEUE: orchestratorQueue,
          CG_LOG_LEVEL: 'info',
        },
        ['--cpu-prof', '--cpu-prof-dir', profileDir],
      )
    : spawnOrchestrator({
        temporalAddress: server.address,
        taskQueue: orchestratorQueue,
        env: orchestratorEnv,
        onLine: log.line('orchestrator'),
      });
  await orchestrator.waitForLine(orchestratorReadyLine, 120_000);
  const orchestratorBoot = Date.now() - orchestratorStarted;
  note(`orchestrator ready in ${orchestratorBoot} ms`);

  const agents = new Map<string, ChildProcess>();
  const agentRoot = (address: string) => path.join(dir, 'nodes', address);
  const emptyBin = path.join(dir, 'bin');
  await mkdir(emptyBin, { recursive: true });
  return {
    dir,
    server,
    client,
    token,
    tokenFile,
    agentPort,
    bundlePath,
    log,
    orchestrator,
    orchestratorQueue,
    orchestratorBoot,
    agents,
    agentRoot,
    async startAgent(address) {
      const started = Date.now();
      const agent = spawnNodeAgent({
        address,
        root: agentRoot(address),
        temporalAddress: server.address,
        tokenFile,
        port: agentPort,
        // No middleware binaries: a ping answers without probing any.
        binDir: emptyBin,
        env: { CG_EVENTS__ENABLED: 'false', CG_CLUSTER_ID: 'bench' },
        onLine: log.line(`agent ${address}`),
      });
      agents.set(address, agent);
      await agent.waitForLine(agentReadyLine, 120_000);
      return { agent, bootMs: Date.now() - started };
    },
  };
}

// --- scenarios ----------------------------------------------------------------------------------

async function stepOverhead(env: Env): Promise<void> {
  const bundleStarted = Date.now();
  const bundle: WorkflowBundleWithSourceMap = await bundleWorkflowCode({
    workflowsPath: path.join(repoRoot, 'bench', 'workflows.ts'),
    logger: new DefaultLogger('WARN'),
  });
  const bundleMs = Date.now() - bundleStarted;
  const connection = await NativeConnection.connect({ address: env.server.address });
  const activityWorker = await Worker.create({
    connection,
    namespace: env.server.namespace,
    taskQueue: nodeTaskQueue(stepNode),
    activities: createBenchActivities(),
    ...(args.pollers ? { maxConcurrentActivityTaskPolls: args.pollers } : {}),
  });
  const runs: Record<string, unknown> = {};
  const run = async (label: string, kind: BenchStepsInput['kind'], sticky: boolean) => {
    const taskQueue = `bench-steps-${label}`;
    const wfWorker = await Worker.create({
      connection,
      namespace: env.server.namespace,
      taskQueue,
      workflowBundle: { code: bundle.code },
      ...(sticky ? {} : { maxCachedWorkflows: 0 }),
      ...(args.pollers ? { maxConcurrentWorkflowTaskPolls: args.pollers } : {}),
    });
    const input: BenchStepsInput = {
      taskQueue: nodeTaskQueue(stepNode),
      steps: counts.steps,
      kind,
    };
    const started = Date.now();
    const handle = await wfWorker.runUntil(
      (async () => {
        const h = await env.client.workflow.start('benchSteps', {
          args: [input],
          taskQueue,
          workflowId: `bench-steps-${label}-${Date.now()}`,
        });
        await h.result();
        return h;
      })(),
    );
    const wall = Date.now() - started;
    const events = await eventsOf(handle);
    const t = stepTimings(events);
    runs[label] = {
      steps: counts.steps,
      sticky,
      wallSeconds: secs(wall),
      perStepMs: summarize(t.perStep),
      breakdownMs: {
        dispatch: summarize(t.dispatch),
        execution: summarize(t.execution),
        decide: summarize(t.decide),
      },
      // Where a step's time goes, event by event (ms per step).
      profileMs: gapProfile(events, counts.steps, 6),
    };
    note(`step_overhead ${label}: p50 ${summarize(t.perStep).p50} ms per step`);
  };
  await activityWorker.runUntil(async () => {
    await run('noop', 'noop', args.sticky);
    await run('exec_true', 'exec', args.sticky);
    // What the sticky cache saves: every workflow task replays the whole history without it.
    if (args.sticky) await run('noop_without_sticky_cache', 'noop', false);
  });
  await connection.close();
  const noop = runs.noop as { perStepMs: { p50: number; p95: number; p99: number } };
  const exec = runs.exec_true as { perStepMs: { p50: number; p95: number; p99: number } };
  report({
    scenario: 'step_overhead',
    node: stepNode,
    noop: noop.perStepMs,
    exec_true: exec.perStepMs,
    runs,
    benchBundleMs: bundleMs,
    note: 'perStep = ActivityTaskScheduled to the next one (server clock); breakdown: dispatch = scheduled→started, execution = started→completed, decide = completed→next scheduled',
  });
}

async function startLatency(env: Env): Promise<void> {
  const node = ips.startAgent;
  const one = async (i: number) => {
    const t0 = Date.now();
    const handle = await env.client.workflow.start('pingCluster', {
      args: [{ clusterId: 'bench', nodes: [node] }],
      taskQueue: env.orchestratorQueue,
      workflowId: `bench-start-${i}-${Date.now()}`,
    });
    const returned = Date.now();
    await handle.result();
    const events = await eventsOf(handle);
    const firstWft = events.find((e) => e.eventType === 'WorkflowTaskStarted');
    const scheduled = events.find((e) => e.eventType === 'ActivityTaskScheduled');
    const started = events.find((e) => e.eventType === 'ActivityTaskStarted');
    if (!firstWft || !scheduled || !started) throw new Error(`pingCluster ${i}: no activity ran`);
    return {
      total: started.eventTime.getTime() - t0,
      startCall: returned - t0,
      toWorkflowTask: firstWft.eventTime.getTime() - t0,
      toScheduled: scheduled.eventTime.getTime() - t0,
      dispatch: started.eventTime.getTime() - scheduled.eventTime.getTime(),
    };
  };
  const warm = await one(-1);
  const samples: Awaited<ReturnType<typeof one>>[] = [];
  for (let i = 0; i < counts.starts; i++) samples.push(await one(i));
  const pick = (k: keyof (typeof samples)[number]) => summarize(samples.map((s) => s[k]));
  const total = pick('total');
  report({
    scenario: 'start_latency',
    runbook: 'pingCluster',
    runs: counts.starts,
    p50Ms: total.p50,
    p99Ms: total.p99,
    totalMs: total,
    breakdownMs: {
      startCall: pick('startCall'),
      toFirstWorkflowTask: pick('toWorkflowTask'),
      toActivityScheduled: pick('toScheduled'),
      activityDispatch: pick('dispatch'),
    },
    firstRunMs: warm.total,
    note: 'client start() (client clock) to ActivityTaskStarted of the first pingNode on the agent process (server clock, same machine); the first run is reported apart',
  });
}

async function memory(env: Env, idleAgentMiB: number, orchestratorIdleMiB: number): Promise<void> {
  const node = ips.startAgent;
  const before = await rssMiB(env.orchestrator.process.pid);
  const handles = await Promise.all(
    Array.from({ length: counts.inFlight }, (_, i) =>
      env.client.workflow.start('pingCluster', {
        args: [{ clusterId: 'bench', nodes: [node], holdSeconds: 120 }],
        taskQueue: env.orchestratorQueue,
        workflowId: `bench-inflight-${i}-${Date.now()}`,
      }),
    ),
  );
  // In flight: every runbook has run its first workflow task and waits on its node's step.
  const deadline = Date.now() + 120_000;
  for (;;) {
    const pending = await Promise.all(
      handles.map(async (h) => (await h.describe()).raw.pendingActivities?.length ?? 0),
    );
    if (pending.every((n) => n > 0)) break;
    if (Date.now() > deadline) throw new Error('the runbooks did not all reach their first step');
    await sleep(500);
  }
  await sleep(2000);
  const inFlight = await rssMiB(env.orchestrator.process.pid);
  await Promise.all(handles.map((h) => h.terminate('bench done')));
  report({
    scenario: 'memory',
    orchestratorIdleAtStartMiB: orchestratorIdleMiB,
    orchestratorBeforeMiB: before,
    orchestratorWithRunbooksInFlightMiB: inFlight,
    runbooksInFlight: counts.inFlight,
    idleNodeAgentMiB: idleAgentMiB,
    note: 'RSS from /proc/<pid>/status; in flight = pingCluster runbooks each holding a step on a real agent',
  });
}

async function nodeLoss(env: Env): Promise<void> {
  const node = ips.lossAgent;
  const first = await env.startAgent(node);
  const agentTimeoutSeconds = 15;
  const holdSeconds = 10;
  const handle = await env.client.workflow.start('pingCluster', {
    args: [{ clusterId: 'bench', nodes: [node], holdSeconds, agentTimeoutSeconds }],
    taskQueue: env.orchestratorQueue,
    workflowId: `bench-loss-${Date.now()}`,
  });
  const runningOnAgent = async () =>
    (await handle.describe()).raw.pendingActivities?.[0]?.state ===
    proto.temporal.api.enums.v1.PendingActivityState.PENDING_ACTIVITY_STATE_STARTED;
  const waitFor = async (what: string, cond: () => Promise<boolean>, timeoutMs: number) => {
    const deadline = Date.now() + timeoutMs;
    while (!(await cond())) {
      if (Date.now() > deadline)
        throw new Error(`node_loss_detection: ${what} within ${timeoutMs} ms`);
      await sleep(100);
    }
    return Date.now();
  };
  await waitFor('the step did not start', runningOnAgent, 30_000);
  await sleep(2000);
  first.agent.kill('SIGKILL');
  const killedAt = Date.now();
  await first.agent.process.catch(() => undefined);
  const stepStatus = async () =>
    (await handle.query(progressQuery)).steps.find((s) => s.node === node)?.status;
  const unreachableAt = await waitFor(
    'progress never showed the node unreachable',
    async () => (await stepStatus()) === 'waiting',
    120_000,
  );
  const restartAt = Date.now();
  const second = await env.startAgent(node);
  const resumedAt = await waitFor('the step did not resume', runningOnAgent, 120_000);
  await handle.result();
  report({
    scenario: 'node_loss_detection',
    secondsUntilUnreachable: secs(unreachableAt - killedAt),
    secondsUntilResumedAfterRestart: secs(resumedAt - restartAt),
    agentBootSeconds: secs(second.bootMs),
    secondsFromAgentReadyToResumed: secs(resumedAt - restartAt - second.bootMs),
    settings: {
      heartbeatTimeoutSeconds: 5,
      agentTimeoutSeconds,
      holdSeconds,
      retryInitialSeconds: 1,
    },
    note: 'SIGKILL of the agent process while pingCluster holds its step; unreachable = progress step status "waiting"; resumed = the rescheduled step is running on the restarted agent',
  });
}

interface SimCluster {
  procs: TsChild[];
  nodes: string[];
  root: string;
  port: number;
}

async function startSimCluster(env: Env, count: number): Promise<SimCluster> {
  const nodes = Array.from({ length: count }, (_, i) => simNode(i + 1));
  const root = path.join(env.dir, 'sim');
  const port = await portFreeOnAll(nodes);
  const procs: TsChild[] = [];
  const started = Date.now();
  for (let i = 0; i < nodes.length; i += nodesPerSimProcess) {
    const cfgFile = path.join(env.dir, `sim-${i}.json`);
    await writeFile(
      cfgFile,
      JSON.stringify({
        temporalAddress: env.server.address,
        namespace: env.server.namespace,
        addresses: nodes.slice(i, i + nodesPerSimProcess),
        rootDir: root,
        port,
        token: env.token,
        pollers: args.pollers ?? 2,
      }),
    );
    procs.push(spawnTsChild('bench/sim-agents.ts', [cfgFile], env.log.line(`sim ${i}`)));
  }
  await Promise.all(procs.map((p) => p.waitForLine(/sim agents ready/, 180_000)));
  note(`${count} simulated nodes in ${procs.length} processes ready in ${Date.now() - started} ms`);
  return { procs, nodes, root, port };
}

/** Puts a jar into the first simulated node's store, as `POST /v1/bundles` would. */
async function seedJar(sim: SimCluster, jar: string): Promise<void> {
  const store = new BundleStore(
    new NodeLayout(path.join(sim.root, sim.nodes[0] ?? '')).bundleStoreFolder,
  );
  const temp = await store.tempFile();
  await copyFile(jar, temp);
  await store.adopt(temp, { fileName: path.basename(jar) });
}

interface RolloutRun {
  nodes: number;
  totalSeconds: number;
  batches: number;
  perBatchSeconds: ReturnType<typeof summarize>;
  inspectSeconds: number;
  installMs: ReturnType<typeof summarize>;
  verifiedNodes: number;
}

async function rollout(env: Env, sim: SimCluster, size: number): Promise<RolloutRun> {
  const symbolicName = 'com.example.bench';
  const version = `1.0.${size}`;
  const jar = path.join(env.dir, `bench-${size}.jar`);
  const { sha256 } = await writeJar(jar, symbolicName, version, 1024 * 1024);
  await seedJar(sim, jar);
  const nodes = sim.nodes.slice(0, size);
  const started = Date.now();
  const handle = await startRunbook(
    env.client,
    'rolloutBundle',
    { clusterId: 'bench', sha256, nodes, batchSize: 10, healthCheck: 'noop' },
    { symbolicName, taskQueue: env.orchestratorQueue },
  );
  const result = await handle.result();
  const total = Date.now() - started;
  if (result.outcome !== 'completed' || result.nodes.some((n) => n.status !== 'installed')) {
    throw new Error(
      `rollout to ${size} nodes did not install everywhere: ${JSON.stringify(result)}`,
    );
  }
  // Not the workflow's word for it: every deploy folder holds the jar with the right hash.
  let verified = 0;
  for (const n of nodes) {
    const file = path.join(
      new NodeLayout(path.join(sim.root, n)).bundleDeployFolder,
      `${symbolicName}.jar`,
    );
    if ((await sha256OfFile(file)).sha256 === sha256) verified += 1;
  }
  if (verified !== size) throw new Error(`only ${verified} of ${size} nodes hold the right jar`);
  const events = await eventsOf(handle);
  const wfStart = events[0]?.eventTime.getTime() ?? started;
  // Each node's last scheduled activity is its install (the first is the inspect).
  const lastScheduled = new Map<string, number>();
  for (const e of events) {
    if (e.eventType === 'ActivityTaskScheduled' && e.taskQueue?.startsWith('cg-node-')) {
      lastScheduled.set(e.taskQueue, e.eventId);
    }
  }
  const byId = new Map<number, { scheduled: number; started?: number; done?: number }>();
  for (const e of events) {
    if (e.eventType === 'ActivityTaskScheduled')
      byId.set(e.eventId, { scheduled: e.eventTime.getTime() });
    const rec = e.scheduledEventId !== undefined ? byId.get(e.scheduledEventId) : undefined;
    if (rec && e.eventType === 'ActivityTaskStarted') rec.started = e.eventTime.getTime();
    if (rec && e.eventType === 'ActivityTaskCompleted') rec.done = e.eventTime.getTime();
  }
  const installs = new Map([...lastScheduled].map(([queue, id]) => [queue, byId.get(id)] as const));
  let firstInstall = Number.POSITIVE_INFINITY;
  const perBatch: number[] = [];
  for (const batch of result.plan.batches) {
    const recs = batch.map((n) => installs.get(nodeTaskQueue(n)));
    const from = Math.min(...recs.map((r) => r?.scheduled ?? Number.NaN));
    const to = Math.max(...recs.map((r) => r?.done ?? Number.NaN));
    firstInstall = Math.min(firstInstall, from);
    perBatch.push(to - from);
  }
  const installMs = [...installs.values()].flatMap((r) =>
    r?.started !== undefined && r.done !== undefined ? [r.done - r.started] : [],
  );
  return {
    nodes: size,
    totalSeconds: secs(total),
    batches: result.plan.batches.length,
    perBatchSeconds: summarize(
      perBatch.map((ms) => ms / 1000),
      2,
    ),
    inspectSeconds: secs(firstInstall - wfStart),
    installMs: summarize(installMs),
    verifiedNodes: verified,
  };
}

async function runAnsible(env: Env, hosts: number): Promise<Record<string, unknown>> {
  const playbookBin = await ensureAnsible();
  const dir = path.join(env.dir, 'ansible');
  await mkdir(dir, { recursive: true });
  const jar = path.join(dir, 'bench.jar');
  const { sha1, sha256 } = await writeJar(jar, 'com.example.bench', '2.0.0', 1024 * 1024);
  const names = Array.from({ length: hosts }, (_, i) => `node-${simNode(i + 1)}`);
  await writeFile(path.join(dir, 'inventory.ini'), ansibleInventory(names));
  const destRoot = path.join(dir, 'nodes');
  await writeFile(
    path.join(dir, 'rollout.yml'),
    ansiblePlaybook({ jar, sha1, destRoot, serial: 10, healthCommand: 'true' }),
  );
  const started = Date.now();
  const r = await execa(playbookBin, ['-i', 'inventory.ini', 'rollout.yml', '--forks', '10'], {
    cwd: dir,
    reject: false,
    all: true,
    env: {
      ANSIBLE_HOME: path.join(dir, 'home'),
      ANSIBLE_LOCAL_TEMP: path.join(dir, 'tmp'),
      ANSIBLE_REMOTE_TEMP: path.join(dir, 'remote-tmp'),
      ANSIBLE_NOCOLOR: '1',
      ANSIBLE_RETRY_FILES_ENABLED: 'false',
    },
  });
  const ms = Date.now() - started;
  await writeFile(path.join(dir, 'ansible.log'), r.all ?? '');
  if (r.exitCode !== 0) {
    throw new Error(`ansible-playbook failed (exit ${r.exitCode}): ${String(r.all).slice(-1500)}`);
  }
  let verified = 0;
  for (const n of names) {
    const file = path.join(destRoot, n, 'deploy', 'bench.jar');
    if ((await sha256OfFile(file).catch(() => ({ sha256: '' }))).sha256 === sha256) verified += 1;
  }
  if (verified !== hosts)
    throw new Error(`ansible: only ${verified} of ${hosts} hosts hold the jar`);
  return {
    hosts,
    totalSeconds: secs(ms),
    verifiedHosts: verified,
    ansibleCore: ansibleVersion,
    settings: { serial: 10, forks: 10, connection: 'local', gather_facts: false },
  };
}

interface GuardianRun {
  stop(): Promise<void>;
  finish(): Promise<Result>;
}

async function startGuardianHistory(env: Env): Promise<GuardianRun> {
  const master = ips.guardianMaster;
  const conf = path.join(env.agentRoot(master), 'conf');
  await mkdir(conf, { recursive: true });
  // A one-member cluster that is as desired: every tick reads cluster.json and finds it in sync.
  await writeFile(
    path.join(conf, 'cluster.json'),
    JSON.stringify({
      cluster: {
        datetime: new Date().toISOString(),
        nodes: [master],
        decommissionNodes: [],
        clusterConfigReady: true,
        nodeConfigReady: true,
        nodeIsMaster: true,
        nodeIsRejoin: false,
      },
      history: [],
    }),
  );
  await env.startAgent(master);
  const taskQueue = 'bench-guardian';
  const orchestrator = spawnOrchestrator({
    temporalAddress: env.server.address,
    taskQueue,
    env: { CG_EVENTS__ENABLED: 'false', CG_WORKFLOW_BUNDLE: env.bundlePath },
    onLine: env.log.line('guardian-orchestrator'),
  });
  await orchestrator.waitForLine(orchestratorReadyLine, 120_000);
  const pid = orchestrator.process.pid;
  const rssReady = await rssMiB(pid);
  const clusterId = 'bench-guardian';
  const handle = await startRunbook(
    env.client,
    'clusterGuardian',
    { clusterId, master, desired: [master], intervalSeconds: 0.1 },
    { taskQueue },
  );
  const started = Date.now();
  const ticks = async () => (await guardianState(env.client, clusterId)).totalTicks;
  while ((await ticks().catch(() => 0)) < 10) await sleep(200);
  const rssStart = await rssMiB(pid);
  let stopped = false;
  let reached = 0;
  const watcher = (async () => {
    for (;;) {
      reached = await ticks().catch(() => reached);
      if (reached >= counts.guardianTicks || Date.now() > guardianDeadline || stopped) return;
      await sleep(1000);
    }
  })();
  return {
    async stop() {
      stopped = true;
      await watcher;
      await handle.terminate('bench done').catch(() => undefined);
      await orchestrator.stop();
    },
    async finish() {
      await watcher;
      const elapsed = Date.now() - started;
      const rssEnd = await rssMiB(pid);
      const state = await guardianState(env.client, clusterId);
      await handle.terminate('bench done');
      await orchestrator.stop();
      const runs = [];
      for await (const w of env.client.workflow.list({
        query: `WorkflowId = '${handle.workflowId}'`,
      })) {
        runs.push({
          runId: w.runId,
          status: w.status.name,
          events: w.historyLength,
          bytes: w.historySize ?? 0,
        });
      }
      // Where a tick's time goes, from the timestamps of the last complete run's history.
      const profiled = runs.find((r) => r.status === 'CONTINUED_AS_NEW') ?? runs[0];
      let tickProfile: ReturnType<typeof gapProfile> = [];
      if (profiled) {
        const events = await eventsOf(
          env.client.workflow.getHandle(handle.workflowId, profiled.runId),
        );
        const ticksInRun = events.filter((e) => e.eventType === 'TimerStarted').length;
        tickProfile = gapProfile(events, Math.max(1, ticksInRun));
      }
      const largest = runs.reduce(
        (a, b) => (b.events > a.events ? b : a),
        runs[0] ?? { events: 0, bytes: 0 },
      );
      return {
        scenario: 'guardian_history',
        intervalSeconds: 0.1,
        ticksTarget: counts.guardianTicks,
        ticks: state.totalTicks,
        reachedTarget: state.totalTicks >= counts.guardianTicks,
        lastOutcome: state.lastCheck?.outcome,
        seconds: secs(elapsed),
        meanTickMs: round(elapsed / Math.max(1, state.totalTicks - 10), 1),
        runs: runs.length,
        continueAsNew: runs.filter((r) => r.status === 'CONTINUED_AS_NEW').length,
        largestRunEvents: largest.events,
        largestRunHistoryBytes: largest.bytes,
        orchestratorRssMiB: { ready: rssReady, atStart: rssStart, atEnd: rssEnd },
        tickProfileMs: tickProfile,
        note: 'its own orchestrator process; each tick reads cluster.json on a real agent (in sync); ran while the other scenarios ran',
      };
    },
  };
}

/** The self time of each profile the orchestrator wrote (one per thread), as a result line. */
async function summarizeProfiles(): Promise<void> {
  const files = (await readdir(profileDir).catch(() => [] as string[])).filter((f) =>
    f.endsWith('.cpuprofile'),
  );
  for (const f of files) {
    const profile = JSON.parse(await readFile(path.join(profileDir, f), 'utf8')) as CpuProfile;
    report({
      scenario: 'cpu_profile',
      file: path.relative(repoRoot, path.join(profileDir, f)),
      busyPercent: busyShare(profile),
      top: topSelfTime(profile),
    });
  }
}

// --- main ---------------------------------------------------------------------------------------

async function main(): Promise<void> {
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const has = (s: ScenarioName) => args.scenarios.includes(s);
  note(
    `scenarios: ${args.scenarios.join(', ')}${Q ? ' (quick)' : ''}; load ${os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
  );
  if (has('rollout_vs_ansible')) await ensureAnsible();
  const env = await setup();
  const cleanups: (() => Promise<void>)[] = [];
  let guardian: GuardianRun | undefined;
  let failed = false;
  const attempt = async (name: ScenarioName, fn: () => Promise<void>) => {
    if (!has(name)) return;
    note(`${name}…`);
    const t = Date.now();
    try {
      await fn();
    } catch (err) {
      failed = true;
      report({ scenario: name, error: describeError(err) });
    }
    note(`${name} done in ${secs(Date.now() - t)} s`);
  };
  try {
    const orchestratorIdleMiB = await rssMiB(env.orchestrator.process.pid);
    if (has('guardian_history')) {
      try {
        guardian = await startGuardianHistory(env);
        cleanups.push(() => guardian?.stop() ?? Promise.resolve());
      } catch (err) {
        failed = true;
        report({ scenario: 'guardian_history', error: describeError(err) });
      }
    }
    await attempt('step_overhead', () => stepOverhead(env));
    let idleAgentMiB = Number.NaN;
    if (has('start_latency') || has('memory')) {
      const { agent } = await env.startAgent(ips.startAgent);
      await sleep(3000);
      idleAgentMiB = await rssMiB(agent.process.pid);
    }
    await attempt('start_latency', () => startLatency(env));
    await attempt('memory', () => memory(env, idleAgentMiB, orchestratorIdleMiB));
    await attempt('node_loss_detection', () => nodeLoss(env));
    await attempt('cli_startup', async () => {
      const cli = await cliStartup(env.server.address, counts.cliRuns);
      note(
        `cli_startup: ${JSON.stringify(Object.fromEntries(Object.entries(cli.cases).map(([k, v]) => [k, v.p50])))} ms (p50)`,
      );
      report(cli);
    });
    await attempt('felix_three_nodes', async () => {
      const felix = await felixThreeNodes(
        { ...env, serverAddress: env.server.address, line: env.log.line },
        counts.felixRuns,
      );
      note(`felix_three_nodes: ${JSON.stringify(felix.rolloutSeconds)} s`);
      report(felix);
    });

    const scalingRuns: RolloutRun[] = [];
    if (has('rollout_scaling') || has('rollout_vs_ansible')) {
      const sizes = has('rollout_scaling') ? counts.rolloutSizes : [];
      const sim = await startSimCluster(env, Math.max(...sizes, counts.ansibleHosts));
      cleanups.push(async () => {
        await Promise.all(sim.procs.map((p) => p.stop()));
      });
      await attempt('rollout_scaling', async () => {
        for (const size of sizes) {
          const r = await rollout(env, sim, size);
          note(`rollout to ${size} nodes: ${r.totalSeconds} s`);
          scalingRuns.push(r);
        }
        report({
          scenario: 'rollout_scaling',
          processes: sim.procs.length,
          nodesPerProcess: nodesPerSimProcess,
          jarBytes: 1024 * 1024,
          batchSize: 10,
          healthCheck: 'true (command)',
          runs: scalingRuns,
        });
      });
      await attempt('rollout_vs_ansible', async () => {
        const hundred =
          scalingRuns.find((r) => r.nodes === counts.ansibleHosts) ??
          (await rollout(env, sim, counts.ansibleHosts));
        const ansible = await runAnsible(env, counts.ansibleHosts);
        const cg = hundred.totalSeconds;
        const an = ansible.totalSeconds as number;
        report({
          scenario: 'rollout_vs_ansible',
          nodes: counts.ansibleHosts,
          clusterguardSeconds: cg,
          ansibleSeconds: an,
          ratioClusterguardToAnsible: round(cg / an, 3),
          ansibleTimesSlower: round(an / cg, 1),
          clusterguard: hundred,
          ansible,
        });
      });
    }
    if (guardian) {
      note('guardian_history: waiting for its ticks…');
      try {
        report(await guardian.finish());
      } catch (err) {
        failed = true;
        report({ scenario: 'guardian_history', error: describeError(err) });
      }
      guardian = undefined;
    }
    report({
      scenario: 'environment',
      quick: Q,
      cpus: os.cpus().length,
      cpuModel: os.cpus()[0]?.model,
      memoryGiB: round(os.totalmem() / 2 ** 30, 1),
      node: process.version,
      loadAverageAtEnd: os.loadavg().map((l) => round(l, 2)),
      sqlitePragmas: ['journal_mode=WAL', ...args.pragmas],
      serverDynamicConfig: args.fastTimers ? fastTimerConfig : 'server defaults',
      workerPollers: args.pollers ?? 'SDK default',
      stickyCache: args.sticky,
      prebuiltBundle: args.prebuiltBundle,
      orchestratorBootMs: env.orchestratorBoot,
      benchSeconds: secs(Date.now() - benchStarted),
    });
  } finally {
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
    await Promise.all([...env.agents.values()].map((a) => a.stop()));
    await env.orchestrator.stop();
    await env.client.connection.close();
    await env.server.stop();
    env.log.stream.end();
    if (args.cpuProf) await summarizeProfiles();
    await writeFile(
      path.join(repoRoot, 'bench', 'results.json'),
      `${JSON.stringify(results, null, 2)}\n`,
    );
    if (!process.env.CG_BENCH_KEEP) await rm(env.dir, { recursive: true, force: true });
  }
  note(`results in bench/results.json (${secs(Date.now() - benchStarted)} s)`);
  if (failed) process.exitCode = 1;
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
