/**
 * `npm start`: the embedded stack on one machine — the Temporal dev server (SQLite file, Web UI),
 * the orchestrator and three node agents on 127.0.0.11–.13 running ZooKeeper and Kafka — then
 * the first runbook, bootstrapCluster of cluster `dev`, then Apache Felix on every node. `npm start -- --once` prints the result
 * and stops everything it started, the middleware included.
 */
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { repoRoot } from '../src/process.js';
import { assertPortFree, startDevServer, type DevServer } from '../src/temporal/dev-server.js';
import { connectClient } from '../src/temporal/connection.js';
import { stringify as toYaml } from 'yaml';
import { loadAppConfig } from '../src/config/app-config.js';
import { NodeLayout } from '../src/config/layout.js';
import { createLogger } from '../src/logger.js';
import { installRuntime } from '../src/observability/runtime.js';
import { createMiddlewareAdapter } from '../src/middleware/index.js';
import {
  membershipWorkflowId,
  type MembershipRunbookResult,
} from '../src/contracts/membership-runbooks.js';
import {
  ClusterBusyError,
  failureMessage,
  membershipTiming,
  startRunbook,
  workflowUiUrl,
} from '../src/client/index.js';
import {
  agentReadyLine,
  orchestratorReadyLine,
  spawnNodeAgent,
  spawnOrchestrator,
  type ChildProcess,
} from '../src/dev/processes.js';

const { values: flags } = parseArgs({
  options: {
    once: { type: 'boolean', default: false },
    production: { type: 'boolean', default: false },
    nodes: { type: 'string', default: '127.0.0.11,127.0.0.12,127.0.0.13' },
    port: { type: 'string', default: '7233' },
    'ui-port': { type: 'string', default: '8233' },
    'agent-port': { type: 'string', default: '7700' },
  },
});

/**
 * What the embedded nodes run: ZooKeeper and Kafka from .tools, small heaps (CockroachDB cannot
 * be had here), and the application runtime, Apache Felix, where bundles are rolled out.
 */
const agentConfig = {
  middleware: {
    binDir: path.join(repoRoot, '.tools'),
    enabled: ['zookeeper', 'kafka', 'felix'],
    zookeeper: { heapMb: 96 },
    kafka: { heapMb: 256 },
    felix: { heapMb: 128 },
  },
};
const agentConfigFile = path.join(repoRoot, '.data', 'agent.yaml');
const nodeRoot = (address: string) => path.join(repoRoot, '.data', 'nodes', address);

/** ZooKeeper and Kafka run detached from their agents (by design): stop them on the way out. */
async function stopNodeMiddleware(nodes: string[]): Promise<void> {
  const config = await loadAppConfig({ file: agentConfigFile, env: {} });
  const logger = createLogger('dev-stack', 'warn');
  await Promise.all(
    nodes.flatMap((address) =>
      (['felix', 'kafka', 'zookeeper'] as const).map((mw) =>
        createMiddlewareAdapter(mw, config, {
          address,
          layout: new NodeLayout(nodeRoot(address)),
          logger,
        })
          .stopServer()
          .catch((err: unknown) =>
            say(`could not stop ${mw} on ${address}: ${(err as Error).message}`),
          ),
      ),
    ),
  );
}

const dataDir = path.join(repoRoot, '.data');
const tokenFile = path.join(dataDir, 'cluster-token');
const say = (msg: string) => console.log(`[clusterguard] ${msg}`);

/** The embedded stack's cluster token: generated once, readable only by its owner. */
async function ensureToken(): Promise<void> {
  await mkdir(dataDir, { recursive: true });
  try {
    const existing = (await readFile(tokenFile, 'utf8')).trim();
    if (existing.length >= 16) {
      await chmod(tokenFile, 0o600);
      return;
    }
  } catch {
    // none yet
  }
  await writeFile(tokenFile, `${randomBytes(32).toString('base64url')}\n`, { mode: 0o600 });
  say(`generated the cluster token in ${path.relative(repoRoot, tokenFile)} (mode 0600)`);
}

async function main(): Promise<number> {
  // The SDK's lines in the orchestrator's JSON format; warnings and errors only, unless
  // CG_LOG_LEVEL says otherwise.
  try {
    installRuntime({ defaultLevel: 'warn' });
  } catch (err) {
    console.error(`[clusterguard] ERROR: ${(err as Error).message}`);
    return 2;
  }
  const nodes = flags.nodes
    .split(',')
    .map((n) => n.trim())
    .filter(Boolean);
  const port = Number(flags.port);
  const uiPort = Number(flags['ui-port']);
  const agentPort = Number(flags['agent-port']);
  if (flags.production) {
    const { runProductionStack } = await import('./production-stack.js');
    return runProductionStack({ once: flags.once, nodes, agentPort, uiPort });
  }
  const started = Date.now();

  // Fail before starting anything when a port is taken, so nothing is left half-started.
  try {
    await assertPortFree('127.0.0.1', port, 'Temporal frontend');
    await assertPortFree('127.0.0.1', uiPort, 'Temporal Web UI');
    for (const node of nodes) await assertPortFree(node, agentPort, `node agent ${node}`);
    await ensureToken();
    await writeFile(agentConfigFile, toYaml(agentConfig));
  } catch (err) {
    console.error(`[clusterguard] ERROR: ${(err as Error).message}`);
    return 1;
  }

  const children: ChildProcess[] = [];
  let server: DevServer | undefined;
  let stopping: Promise<void> | undefined;
  const stopAll = () =>
    (stopping ??= (async () => {
      say('stopping…');
      await Promise.all(children.map((c) => c.stop()));
      await stopNodeMiddleware(nodes);
      await server?.stop();
      say('stopped');
    })());
  // Persistent listeners, not `once`: execa's child cleanup re-raises a signal that no other
  // listener handles, which would kill this process before the children are stopped.
  process.on('SIGINT', () => void stopAll().then(() => process.exit(130)));
  process.on('SIGTERM', () => void stopAll().then(() => process.exit(143)));

  try {
    say('starting the Temporal dev server…');
    server = await startDevServer({
      binary: process.env.CG_TEMPORAL_BIN ?? path.join(repoRoot, '.tools', 'bin', 'temporal'),
      port,
      uiPort,
      dbFile: path.join(dataDir, 'temporal.db'),
    });
    say(`Temporal at ${server.address}, Web UI at ${server.uiUrl}`);

    const orchestrator = spawnOrchestrator({ temporalAddress: server.address });
    children.push(orchestrator);
    const agents = nodes.map((address) =>
      spawnNodeAgent({
        address,
        root: nodeRoot(address),
        temporalAddress: server!.address,
        tokenFile,
        port: agentPort,
        env: { CG_CONFIG: agentConfigFile },
      }),
    );
    children.push(...agents);
    await Promise.all([
      orchestrator.waitForLine(orchestratorReadyLine, 120_000),
      ...agents.map((a) => a.waitForLine(agentReadyLine, 120_000)),
    ]);
    say(`orchestrator and ${agents.length} node agents ready`);

    const client = await connectClient({ address: server.address, namespace: server.namespace });
    // A bootstrap that an earlier `npm start` left running (Ctrl-C mid-way) is still in the
    // SQLite file: follow it to its end instead of refusing to start.
    const running = await client.workflow
      .getHandle<(input: unknown) => Promise<MembershipRunbookResult>>(membershipWorkflowId('dev'))
      .describe()
      .then(
        (d) => (d.status.name === 'RUNNING' ? d : undefined),
        () => undefined,
      );
    const handle = running
      ? client.workflow.getHandle<(input: unknown) => Promise<MembershipRunbookResult>>(
          running.workflowId,
          running.runId,
        )
      : await startRunbook(client, 'bootstrapCluster', { clusterId: 'dev', nodes });
    if (running)
      say(`following ${running.type} ${running.workflowId}, still running from an earlier start`);
    say(`started bootstrapCluster ${handle.workflowId}`);
    say(`watch it: ${workflowUiUrl(server.uiUrl!, server.namespace, handle.workflowId)}`);
    say(
      `or: .tools/bin/temporal workflow query --address ${server.address} -w '${handle.workflowId}' --type progress`,
    );
    let exitCode = 0;
    try {
      const result = await handle.result();
      const timing = await membershipTiming(client, handle.workflowId);
      const s = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
      say(`cluster dev: [${result.nodes.join(', ')}], master ${result.nodes[0]}`);
      say(
        `bootstrapCluster took ${s(timing.totalMs)}: ${s(timing.middlewareMs)} with ZooKeeper or Kafka ` +
          `stopping, starting or joining somewhere, ${s(timing.totalMs - timing.middlewareMs)} orchestration ` +
          `only (cluster.json, archives, scheduling); ${s(Date.now() - started)} since npm start`,
      );
      // The application runtime comes after ZooKeeper and Kafka, one framework per node: each
      // agent's supervisor starts it once cluster.json says the node is a configured member
      // (docs/design.md, "Self-healing node").
      const t0 = Date.now();
      const felix = await Promise.all(
        nodes.map((address) => supervisedServer(address, agentPort, 'felix', 180_000)),
      );
      say(
        `Apache Felix on every node in ${s(Date.now() - t0)} (${felix.join('; ')}), started by the agents; ` +
          'roll bundles out into it: docs/bundles.md',
      );
      // The guardian of cluster dev watches membership and every node's health.
      const guardian = await startRunbook(client, 'clusterGuardian', {
        clusterId: 'dev',
        master: nodes[0]!,
        desired: nodes,
        intervalSeconds: 15,
      }).catch((err: unknown) => {
        // The guardian of an earlier `npm start` (kept in .data) still runs: keep it.
        if (err instanceof ClusterBusyError) return undefined;
        throw err;
      });
      say(
        `guardian ${guardian ? 'started' : 'still running from an earlier start'}: ` +
          `${workflowUiUrl(server.uiUrl!, server.namespace, 'cg/dev/guardian')}`,
      );
      say(
        `or: .tools/bin/temporal workflow query --address ${server.address} -w cg/dev/guardian --type state`,
      );
    } catch (err) {
      exitCode = 1;
      say(`bootstrapCluster failed: ${failureMessage(err)}`);
    }
    await client.connection.close();
    if (flags.once) {
      await stopAll();
      return exitCode;
    }
    say(
      'the stack keeps running; start more runbooks from the Web UI or the temporal CLI. Ctrl-C stops it.',
    );
    await new Promise(() => undefined);
    return 0;
  } catch (err) {
    console.error(`[clusterguard] ERROR: ${(err as Error).message}`);
    await stopAll();
    return 1;
  }
}

/** Waits until the agent of `address` reports `server` running (its /healthz); says how it runs. */
async function supervisedServer(
  address: string,
  port: number,
  server: string,
  timeoutMs: number,
): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer';
  while (Date.now() < deadline) {
    try {
      const res = await fetch(`http://${address}:${port}/healthz`);
      const body = (await res.json()) as {
        supervisor?: { servers: { server: string; state: string; detail: string }[] };
      };
      const s = body.supervisor?.servers.find((x) => x.server === server);
      if (s?.state === 'running') return `${address}: ${s.state}`;
      last = s ? `${s.state}: ${s.detail}` : 'not supervised';
    } catch (err) {
      last = (err as Error).message;
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  throw new Error(`${server} on ${address} is not running after ${timeoutMs / 1000} s (${last})`);
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
