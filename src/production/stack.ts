import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Client } from '@temporalio/client';
import { loadAppConfig } from '../config/app-config.js';
import { NodeLayout } from '../config/layout.js';
import {
  agentReadyLine,
  orchestratorReadyLine,
  spawnNodeAgent,
  spawnOrchestrator,
  type ChildProcess,
} from '../dev/processes.js';
import { createLogger } from '../logger.js';
import { createMiddlewareAdapter } from '../middleware/index.js';
import { repoRoot } from '../process.js';
import { assertPortFree } from '../temporal/dev-server.js';
import { ensureCerts, type ProductionCerts } from './certs.js';
import { startPostgres, type RunningPostgres } from './postgres.js';
import {
  applySchema,
  connectTls,
  prepareNamespace,
  startTemporalServer,
  type TemporalServer,
} from './temporal-server.js';
import { ensureServerTools, ensureUiServer, type ServerTools } from './tools.js';
import { startUiServer, type UiServer } from './ui-server.js';

export interface ProductionStackOptions {
  /** Everything the stack keeps: PostgreSQL's data, certificates, node roots, logs. */
  dataDir: string;
  nodes: string[];
  /** PostgreSQL and every Temporal service listen on this address only. */
  host: string;
  postgresPort: number;
  agentPort: number;
  clusterId: string;
  /** Middleware each node runs (`middleware.enabled`). */
  middleware: ('zookeeper' | 'kafka')[];
  /** Prometheus text of the orchestrators on `host` (one port each), and of each agent. */
  metricsPorts: { orchestrators: [number, number]; agent: number };
  /** The Temporal Web UI on `host` (deploy/temporal-ui/); none without it. */
  uiPort?: number;
  /** Output lines of a process, by its label; default: this process's stderr, prefixed. */
  onLine?: (label: string, line: string) => void;
  say?: (msg: string) => void;
}

export interface ProductionStack {
  client: Client;
  temporalAddress: string;
  /** The Web UI, when `uiPort` was given. */
  uiUrl: string | undefined;
  namespace: string;
  certs: ProductionCerts;
  tokenFile: string;
  /** Ready-made `CG_TEMPORAL__*` settings for another client of this stack (TLS files). */
  temporalEnv: Record<string, string>;
  orchestrators: (ChildProcess | undefined)[];
  agents: Map<string, ChildProcess>;
  pids(): Record<string, number | undefined>;
  startOrchestrator(i: number): Promise<void>;
  killOrchestrator(i: number): Promise<void>;
  startAgent(node: string): Promise<void>;
  killAgent(node: string): Promise<void>;
  /** SIGKILLs the Temporal server and starts it again on the same database. */
  restartTemporal(): Promise<void>;
  layout(node: string): NodeLayout;
  close(): Promise<void>;
}

const namespace = 'default';

/**
 * The production shape on one machine: PostgreSQL, the Temporal server on it with mutual TLS on
 * its frontend, two orchestrators, and one node agent per address serving HTTPS to its peers.
 * The processes read deploy/orchestrator.yaml and deploy/agent.yaml — the files
 * docker-compose.yml mounts — and the environment fills in what differs on one machine.
 */
export async function startProductionStack(
  options: ProductionStackOptions,
): Promise<ProductionStack> {
  const say = options.say ?? ((m: string) => console.log(`[clusterguard] ${m}`));
  const dir = path.resolve(options.dataDir);
  // World-traversable: PostgreSQL runs as another user and reaches its folder through this one.
  await mkdir(dir, { recursive: true });
  await chmod(dir, 0o755);
  for (const node of options.nodes) {
    await assertPortFree(node, options.agentPort, `node agent ${node}`);
    await assertPortFree(node, options.metricsPorts.agent, `agent metrics ${node}`);
  }
  await assertPortFree(options.host, 7233, 'Temporal frontend');
  if (options.uiPort) await assertPortFree(options.host, options.uiPort, 'Temporal Web UI');
  for (const p of options.metricsPorts.orchestrators) {
    await assertPortFree(options.host, p, 'orchestrator metrics');
  }

  const tokenFile = path.join(dir, 'cluster-token');
  if (!existsSync(tokenFile)) {
    await writeFile(tokenFile, `${randomBytes(32).toString('base64url')}\n`, { mode: 0o600 });
  }
  say('certificates…');
  const certs = await ensureCerts(path.join(dir, 'tls'), {
    frontendHost: options.host,
    nodes: options.nodes,
  });
  const tls = {
    ca: await readFile(certs.ca),
    client: { crt: await readFile(certs.client.cert), key: await readFile(certs.client.key) },
  };
  say('the Temporal server binaries…');
  const tools: ServerTools = await ensureServerTools();
  const uiBinary = options.uiPort ? await ensureUiServer() : undefined;
  say(`PostgreSQL on ${options.host}:${options.postgresPort}…`);
  const postgres: RunningPostgres = await startPostgres({
    dir: path.join(dir, 'postgresql'),
    host: options.host,
    port: options.postgresPort,
  });
  const serverOptions = {
    tools,
    postgres,
    host: options.host,
    ca: certs.ca,
    frontend: certs.frontend,
    logFile: path.join(dir, 'temporal-server.log'),
  };
  let temporal: TemporalServer | undefined;
  let ui: UiServer | undefined;
  const orchestrators: (ChildProcess | undefined)[] = [undefined, undefined];
  const agents = new Map<string, ChildProcess>();
  const nodeRoot = (node: string) => path.join(dir, 'nodes', node);
  const onLine = (label: string) =>
    options.onLine
      ? (line: string) => options.onLine!(label, line)
      : (line: string) => process.stderr.write(`[${label}] ${line}\n`);

  const temporalAddress = `${options.host}:7233`;
  const temporalEnv = {
    CG_TEMPORAL__ADDRESS: temporalAddress,
    CG_TEMPORAL__NAMESPACE: namespace,
    CG_TEMPORAL__TLS__CA_FILE: certs.ca,
    CG_TEMPORAL__TLS__CERT_FILE: certs.client.cert,
    CG_TEMPORAL__TLS__KEY_FILE: certs.client.key,
    CG_CLUSTER_ID: options.clusterId,
  };
  let client: Client | undefined;

  const stack: ProductionStack = {
    get client() {
      if (!client) throw new Error('the production stack is not started');
      return client;
    },
    temporalAddress,
    get uiUrl() {
      return ui?.url;
    },
    namespace,
    certs,
    tokenFile,
    temporalEnv,
    orchestrators,
    agents,
    pids() {
      return {
        'temporal-server': temporal?.process.pid,
        ...(ui ? { 'temporal-ui': ui.process.pid } : {}),
        ...Object.fromEntries(
          orchestrators.map((o, i) => [`orchestrator-${i + 1}`, o?.process.pid]),
        ),
        ...Object.fromEntries([...agents].map(([n, a]) => [`agent ${n}`, a.process.pid])),
      };
    },
    async startOrchestrator(i) {
      const label = `orchestrator-${i + 1}`;
      const child = spawnOrchestrator({
        temporalAddress,
        label,
        onLine: onLine(label),
        env: {
          CG_CONFIG: path.join(repoRoot, 'deploy', 'orchestrator.yaml'),
          ...temporalEnv,
          // Runbook events go to the nodes' Kafka; without one there is nowhere to send them.
          ...(options.middleware.includes('kafka')
            ? { CG_EVENTS__BROKERS: options.nodes.map((n) => `${n}:9092`).join(',') }
            : { CG_EVENTS__ENABLED: 'false' }),
          CG_EVENTS__SPOOL_FILE: path.join(dir, label, 'events-spool.jsonl'),
          CG_METRICS__HOST: options.host,
          CG_METRICS__PORT: String(options.metricsPorts.orchestrators[i]),
        },
      });
      orchestrators[i] = child;
      await child.waitForLine(orchestratorReadyLine, 120_000);
    },
    async killOrchestrator(i) {
      const child = orchestrators[i];
      child?.kill('SIGKILL');
      await child?.process;
      orchestrators[i] = undefined;
    },
    async startAgent(node) {
      const agentCert = certs.agent(node);
      const child = spawnNodeAgent({
        address: node,
        root: nodeRoot(node),
        temporalAddress,
        tokenFile,
        port: options.agentPort,
        onLine: onLine(`agent ${node}`),
        env: {
          CG_CONFIG: path.join(repoRoot, 'deploy', 'agent.yaml'),
          ...temporalEnv,
          CG_AGENT__TLS__CERT_FILE: agentCert.cert,
          CG_AGENT__TLS__KEY_FILE: agentCert.key,
          CG_AGENT__TLS__CA_FILE: certs.ca,
          CG_AGENT__TLS__REQUIRE_CLIENT_CERT: 'true',
          CG_MIDDLEWARE__ENABLED: options.middleware.join(','),
          CG_MIDDLEWARE__ZOOKEEPER__HEAP_MB: '64',
          CG_MIDDLEWARE__KAFKA__HEAP_MB: '256',
          CG_METRICS__PORT: String(options.metricsPorts.agent),
        },
      });
      agents.set(node, child);
      await child.waitForLine(agentReadyLine, 120_000);
    },
    async killAgent(node) {
      const child = agents.get(node);
      child?.kill('SIGKILL');
      await child?.process;
      agents.delete(node);
    },
    async restartTemporal() {
      await temporal?.kill();
      temporal = await startTemporalServer(serverOptions, tls);
    },
    layout: (node) => new NodeLayout(nodeRoot(node)),
    async close() {
      await Promise.all([...agents.values()].map((a) => a.stop()));
      await Promise.all(orchestrators.map((o) => o?.stop() ?? Promise.resolve()));
      await client?.connection.close().catch(() => undefined);
      await stopNodeMiddleware(options.nodes, nodeRoot);
      await ui?.stop();
      await temporal?.stop();
      await postgres.stop();
    },
  };

  try {
    say('the Temporal schema (temporal-sql-tool)…');
    await applySchema(tools, postgres);
    say(`the Temporal server on ${temporalAddress} (mutual TLS)…`);
    temporal = await startTemporalServer(serverOptions, tls);
    await prepareNamespace(temporalAddress, namespace, tls);
    client = new Client({
      connection: await connectTls(temporalAddress, tls.ca, tls.client),
      namespace,
    });
    say(`two orchestrators and the node agents${uiBinary ? ', the Web UI' : ''}…`);
    await Promise.all([
      uiBinary &&
        startUiServer({
          binary: uiBinary,
          host: options.host,
          port: options.uiPort!,
          temporalAddress,
          ca: certs.ca,
          client: certs.client,
          logFile: path.join(dir, 'temporal-ui.log'),
        }).then((u) => {
          ui = u;
        }),
      stack.startOrchestrator(0),
      stack.startOrchestrator(1),
      ...options.nodes.map((n) => stack.startAgent(n)),
    ]);
  } catch (err) {
    await stack.close();
    throw err;
  }
  return stack;
}

/** ZooKeeper and Kafka run detached from their agents (by design): stopped on the way out. */
async function stopNodeMiddleware(nodes: string[], nodeRoot: (n: string) => string) {
  const config = await loadAppConfig({
    env: {},
    defaults: { middleware: { binDir: path.join(repoRoot, '.tools') } },
  });
  const logger = createLogger('production-stack', 'warn');
  await Promise.all(
    nodes.flatMap((address) =>
      (['kafka', 'zookeeper'] as const).map((mw) =>
        createMiddlewareAdapter(mw, config, {
          address,
          layout: new NodeLayout(nodeRoot(address)),
          logger,
        })
          .stopServer()
          .catch(() => undefined),
      ),
    ),
  );
}
