/**
 * `npm start -- --production`: the production shape on one machine (docs/operations.md
 * "Production on one machine") — PostgreSQL, the Temporal server on it with mutual TLS, two
 * orchestrators, three node agents with HTTPS between them — then the same bootstrap of cluster
 * `dev` as `npm start`. Everything it keeps is under .data/production/.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { membershipWorkflowId } from '../src/contracts/membership-runbooks.js';
import { repoRoot } from '../src/process.js';
import { startProductionStack, type ProductionStack } from '../src/production/stack.js';
import {
  failureMessage,
  membershipTiming,
  startRunbook,
  workflowUiUrl,
  type MembershipRunbookResult,
} from '../src/client/index.js';

export interface ProductionFlags {
  once: boolean;
  nodes: string[];
  agentPort: number;
  /** The Temporal Web UI's port on 127.0.0.1. */
  uiPort: number;
}

const say = (msg: string) => console.log(`[clusterguard] ${msg}`);

/** Resident memory of a process, from /proc (Linux), in MiB. */
async function rssMb(pid: number | undefined): Promise<string> {
  if (!pid) return '-';
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
  const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN);
  return Number.isFinite(kb) ? `${(kb / 1024).toFixed(0)} MiB` : '-';
}

async function reportRss(stack: ProductionStack, dataDir: string): Promise<void> {
  const pgPid = Number(
    (
      await readFile(path.join(dataDir, 'postgresql', 'pgdata', 'postmaster.pid'), 'utf8').catch(
        () => '',
      )
    ).split('\n')[0],
  );
  const pids = { postgresql: pgPid || undefined, ...stack.pids() };
  const parts = await Promise.all(
    Object.entries(pids).map(async ([name, pid]) => `${name} ${await rssMb(pid)}`),
  );
  say(`resident memory: ${parts.join(', ')}`);
}

export async function runProductionStack(flags: ProductionFlags): Promise<number> {
  const started = Date.now();
  const dataDir = path.join(repoRoot, '.data', 'production');
  let stack: ProductionStack | undefined;
  let stopping: Promise<void> | undefined;
  const stopAll = () =>
    (stopping ??= (async () => {
      say('stopping…');
      await stack?.close();
      say('stopped');
    })());
  process.on('SIGINT', () => void stopAll().then(() => process.exit(130)));
  process.on('SIGTERM', () => void stopAll().then(() => process.exit(143)));
  try {
    stack = await startProductionStack({
      dataDir,
      nodes: flags.nodes,
      host: '127.0.0.1',
      postgresPort: 5432,
      agentPort: flags.agentPort,
      clusterId: 'dev',
      middleware: ['zookeeper', 'kafka'],
      metricsPorts: { orchestrators: [9464, 9465], agent: 9464 },
      uiPort: flags.uiPort,
    });
  } catch (err) {
    console.error(`[clusterguard] ERROR: ${(err as Error).message}`);
    await stopAll();
    return 1;
  }
  const s = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
  say(
    `production stack ready in ${s(Date.now() - started)}: Temporal at ${stack.temporalAddress} (mutual TLS)`,
  );
  say(`Web UI at ${stack.uiUrl}`);
  await reportRss(stack, dataDir);
  const tlsFlags =
    `--tls-ca-path ${stack.certs.ca} --tls-cert-path ${stack.certs.client.cert} ` +
    `--tls-key-path ${stack.certs.client.key}`;

  const client = stack.client;
  type Run = (input: unknown) => Promise<MembershipRunbookResult>;
  const running = await client.workflow
    .getHandle<Run>(membershipWorkflowId('dev'))
    .describe()
    .then(
      (d) => (d.status.name === 'RUNNING' ? d : undefined),
      () => undefined,
    );
  const handle = running
    ? client.workflow.getHandle<Run>(running.workflowId, running.runId)
    : await startRunbook(client, 'bootstrapCluster', {
        clusterId: 'dev',
        nodes: flags.nodes,
      });
  say(`${running ? 'following' : 'started'} bootstrapCluster ${handle.workflowId}`);
  say(`watch it: ${workflowUiUrl(stack.uiUrl!, stack.namespace, handle.workflowId)}`);
  say(
    `or: .tools/bin/temporal workflow query --address ${stack.temporalAddress} ${tlsFlags} -w '${handle.workflowId}' --type progress`,
  );
  let exitCode = 0;
  try {
    const result = await handle.result();
    const timing = await membershipTiming(client, handle.workflowId);
    say(`cluster dev: [${result.nodes.join(', ')}], master ${result.nodes[0]}`);
    say(`bootstrapCluster took ${s(timing.totalMs)}; ${s(Date.now() - started)} since the start`);
    await reportRss(stack, dataDir);
  } catch (err) {
    exitCode = 1;
    say(`bootstrapCluster failed: ${failureMessage(err)}`);
  }
  if (flags.once) {
    await stopAll();
    return exitCode;
  }
  say('the production stack keeps running; Ctrl-C stops it.');
  await new Promise(() => undefined);
  return 0;
}
