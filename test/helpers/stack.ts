import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { execa } from 'execa';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client, Connection, WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { stringify as toYaml } from 'yaml';
import { NodeLayout } from '../../src/config/layout.js';
import type { ClusterFile } from '../../src/contracts/cluster-file.js';
import type { Progress } from '../../src/contracts/progress.js';
import {
  agentReadyLine,
  orchestratorReadyLine,
  spawnNodeAgent,
  spawnOrchestrator,
  type ChildProcess,
} from '../../src/dev/processes.js';
import { repoRoot } from '../../src/process.js';
import { freePort, startDevServer, type DevServer } from '../../src/temporal/dev-server.js';
import { freePortOnAll } from './agents.js';
import { progressQuery } from '../../src/contracts/messages.js';

/**
 * A whole clusterguard on this machine, every part a real process that a test may SIGKILL and
 * restart: the Temporal dev server on a SQLite file, the orchestrator, and one node agent per
 * loopback address running real ZooKeeper and Kafka.
 */
export interface Stack {
  dir: string;
  client: Client;
  temporalAddress: string;
  agents: Map<string, ChildProcess>;
  /** Every agent's HTTP port (the same on each address) and the cluster token they share. */
  agentPort: number;
  token: string;
  /** Output lines of every process, by label, for diagnosis. */
  lines: Map<string, string[]>;
  /** `binDir` overrides where the agent looks for middleware (a broken node, for park tests). */
  startAgent(address: string, options?: { binDir?: string }): Promise<void>;
  killAgent(address: string): Promise<void>;
  killOrchestrator(): Promise<void>;
  startOrchestrator(): Promise<void>;
  killTemporal(): Promise<void>;
  startTemporal(): Promise<void>;
  layout(address: string): NodeLayout;
  clusterFile(address: string): Promise<ClusterFile>;
  close(): Promise<void>;
}

export interface StackOptions {
  /** Environment of one node's agent beside the shared config (e.g. CG_CLUSTER_ID). */
  agentEnv?: (address: string) => Record<string, string>;
  /** The middleware every agent runs (default ZooKeeper and Kafka); `felix`: the application. */
  enabled?: ('cockroach' | 'zookeeper' | 'kafka' | 'felix')[];
  /** Where agents find their binaries (default `.tools`). */
  binDir?: string;
}

export async function startStack(
  addresses: string[],
  stackOptions: StackOptions = {},
): Promise<Stack> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'cg-stack-'));
  const tokenFile = path.join(dir, 'cluster-token');
  const token = randomBytes(24).toString('base64url');
  await writeFile(tokenFile, `${token}\n`, { mode: 0o600 });
  const configFile = path.join(dir, 'agent.yaml');
  const enabled = stackOptions.enabled ?? ['zookeeper', 'kafka'];
  const agentConfig = {
    middleware: {
      binDir: stackOptions.binDir ?? path.join(repoRoot, '.tools'),
      enabled,
      // Small heaps: up to five nodes of both share a 2-core machine.
      zookeeper: { heapMb: 64 },
      kafka: { heapMb: 256, operationOptions: { stopServer: { timeoutMs: 15_000 } } },
      ...(enabled.includes('felix')
        ? { felix: { heapMb: 96, managementPort: await freePortOnAll(addresses) } }
        : {}),
    },
  };
  await writeFile(configFile, toYaml(agentConfig));
  const dbFile = path.join(dir, 'temporal.db');
  const port = await freePort();
  const agentPort = await freePortOnAll(addresses);
  const temporalAddress = `127.0.0.1:${port}`;
  const lines = new Map<string, string[]>();
  const sink = (label: string) => {
    const log = lines.get(label) ?? [];
    lines.set(label, log);
    return (line: string) => {
      log.push(line);
      if (log.length > 5000) log.splice(0, 1000);
    };
  };
  let temporal: DevServer | undefined;
  let orchestrator: ChildProcess | undefined;
  const agents = new Map<string, ChildProcess>();
  const roots = (a: string) => path.join(dir, 'nodes', a);

  const stack: Stack = {
    dir,
    client: undefined as unknown as Client,
    temporalAddress,
    agents,
    agentPort,
    token,
    lines,
    async startTemporal() {
      temporal = await startDevServer({
        binary: process.env.CG_TEMPORAL_BIN ?? path.join(repoRoot, '.tools', 'bin', 'temporal'),
        port,
        headless: true,
        dbFile,
      });
    },
    async killTemporal() {
      temporal?.process.kill('SIGKILL');
      await temporal?.process;
      temporal = undefined;
    },
    async startOrchestrator() {
      orchestrator = spawnOrchestrator({
        temporalAddress,
        onLine: sink('orchestrator'),
        env: { CG_EVENTS__SPOOL_FILE: path.join(dir, 'events-spool.jsonl') },
      });
      await orchestrator.waitForLine(orchestratorReadyLine, 120_000);
    },
    async killOrchestrator() {
      orchestrator?.kill('SIGKILL');
      await orchestrator?.process;
      orchestrator = undefined;
    },
    async startAgent(address, options = {}) {
      const agent = spawnNodeAgent({
        address,
        root: roots(address),
        temporalAddress,
        tokenFile,
        port: agentPort,
        // The environment outranks the config file, so the override goes there.
        binDir: options.binDir ?? stackOptions.binDir ?? path.join(repoRoot, '.tools'),
        env: { CG_CONFIG: configFile, ...stackOptions.agentEnv?.(address) },
        onLine: sink(`agent ${address}`),
      });
      agents.set(address, agent);
      // Generous: three lanes start their stacks at once on a fresh clone, each agent compiling
      // its TypeScript on a busy 2-core machine.
      await agent.waitForLine(agentReadyLine, 180_000);
    },
    async killAgent(address) {
      const agent = agents.get(address);
      agent?.kill('SIGKILL');
      await agent?.process;
      agents.delete(address);
    },
    layout: (a) => new NodeLayout(roots(a)),
    async clusterFile(a) {
      return JSON.parse(
        await readFile(new NodeLayout(roots(a)).clusterFile, 'utf8'),
      ) as ClusterFile;
    },
    async close() {
      await Promise.all([...agents.values()].map((a) => a.stop()));
      await orchestrator?.stop();
      await stack.client?.connection.close().catch(() => undefined);
      await temporal?.stop();
      // Middleware runs detached (it outlives agents by design): stop it by its pid files.
      await stopMiddleware(addresses.map(roots));
      if (!process.env.CG_KEEP_TEST_DIR) await rm(dir, { recursive: true, force: true });
    },
  };
  try {
    await stack.startTemporal();
    stack.client = new Client({
      connection: await Connection.connect({ address: temporalAddress }),
    });
    await Promise.all([stack.startOrchestrator(), ...addresses.map((a) => stack.startAgent(a))]);
  } catch (err) {
    await stack.close();
    throw err;
  }
  return stack;
}

/** Kills the middleware and Felix processes started under these node roots (their pid files). */
export async function stopMiddleware(roots: string[]): Promise<void> {
  const { readdir } = await import('node:fs/promises');
  for (const root of roots) {
    for (const mw of ['zookeeper', 'kafka', 'cockroach', 'felix']) {
      const folder = path.join(root, 'node-data', mw);
      let names: string[] = [];
      try {
        names = await readdir(folder, { recursive: true });
      } catch {
        continue;
      }
      for (const name of names.filter((n) => n.endsWith('.pid'))) {
        const pid = Number(
          (await readFile(path.join(folder, name), 'utf8').catch(() => '')).split(/\s/)[0],
        );
        if (Number.isInteger(pid) && pid > 1) {
          try {
            // Detached servers lead their own process group.
            process.kill(-pid, 'SIGKILL');
          } catch {
            // not a group leader
          }
          try {
            process.kill(pid, 'SIGKILL');
          } catch {
            // gone already
          }
        }
      }
    }
  }
}

/** Polls `progress` until `predicate` holds; survives a Temporal server that is down a while. */
export async function waitForProgress(
  handle: WorkflowHandle,
  predicate: (p: Progress) => boolean,
  timeoutMs = 300_000,
): Promise<Progress> {
  const deadline = Date.now() + timeoutMs;
  let last: Progress | undefined;
  let lastError = '';
  while (Date.now() < deadline) {
    try {
      last = await handle.query(progressQuery);
      if (predicate(last)) return last;
    } catch (err) {
      lastError = (err as Error).message;
    }
    await sleep(300);
  }
  // A step that failed says why: the reason is what a reader of a failed test needs first.
  const errors = (last?.steps ?? [])
    .filter((s) => s.lastError)
    .map((s) => `\n  ${s.id} (${s.status}, ${s.attempts} attempts): ${s.lastError}`)
    .join('');
  throw new Error(
    `progress condition not met within ${timeoutMs} ms; last: ${JSON.stringify(last?.steps.map((s) => `${s.id}=${s.status}`))} ${lastError}${errors}`,
  );
}

/** The ApplicationFailure a runbook failed with; throws when it completed or failed otherwise. */
export async function failureOf(handle: WorkflowHandle): Promise<ApplicationFailure> {
  try {
    await handle.result();
  } catch (err) {
    if (err instanceof WorkflowFailedError && err.cause instanceof ApplicationFailure)
      return err.cause;
    throw err;
  }
  throw new Error(`${handle.workflowId} did not fail`);
}

export const stepStatus = (p: Progress, id: string) => p.steps.find((s) => s.id === id)?.status;

/**
 * With CG_RECORD_HISTORIES=<dir>, writes the workflow's history (as `temporal workflow show
 * --output json` prints it) to `<dir>/<name>.json` and its id to `<dir>/workflow-ids.json`, for
 * test/replay: a child's id derives from its parent's, so a history replays under its own id.
 */
export async function recordHistory(
  stack: Pick<Stack, 'temporalAddress'>,
  workflowId: string,
  name: string,
): Promise<void> {
  const dir = process.env.CG_RECORD_HISTORIES;
  if (!dir) return;
  const { stdout } = await execa(path.join(repoRoot, '.tools', 'bin', 'temporal'), [
    'workflow',
    'show',
    '--address',
    stack.temporalAddress,
    '--workflow-id',
    workflowId,
    '--output',
    'json',
  ]);
  await mkdir(dir, { recursive: true });
  await writeFile(path.join(dir, `${name}.json`), stdout);
  const index = path.join(dir, 'workflow-ids.json');
  const ids = JSON.parse(await readFile(index, 'utf8').catch(() => '{}')) as Record<string, string>;
  ids[`${name}.json`] = workflowId;
  await writeFile(index, `${JSON.stringify(ids, null, 2)}\n`);
}
