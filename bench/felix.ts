import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Client } from '@temporalio/client';
import { stringify } from 'yaml';
import { pushBundle } from '../src/bundles/client.js';
import { startRunbook } from '../src/client/index.js';
import type { RolloutBundleInput, RolloutBundleResult } from '../src/contracts/bundles.js';
import { NodeLayout } from '../src/config/layout.js';
import { agentReadyLine, spawnNodeAgent, type ChildProcess } from '../src/dev/processes.js';
import { createLogger } from '../src/logger.js';
import { createFelixAdapter } from '../src/middleware/felix/adapter.js';
import { findBundle } from '../src/middleware/felix/verify.js';
import { repoRoot } from '../src/process.js';
import { greeterBundles } from '../test/helpers/felix-bundles.js';
import { round, summarize } from './lib.js';
import { portFreeOnAll } from './procs.js';

/** Three agents with a real Apache Felix framework each (the bench's own addresses). */
const nodes = ['127.0.0.174', '127.0.0.175', '127.0.0.176'];
const provider = 'com.example.greeter.provider';

export interface FelixBenchEnv {
  dir: string;
  client: Client;
  serverAddress: string;
  tokenFile: string;
  token: string;
  orchestratorQueue: string;
  line: (label: string) => (l: string) => void;
}

/**
 * `felix_three_nodes` (docs/performance.md): the provider of test/fixtures/felix-bundles rolled
 * out 1.0.0 → 1.1.0 to three nodes, one by one, each a hot swap inside a running Felix
 * framework, `runs` times (put back to 1.0.0 between runs, untimed). Every run is checked
 * against what the frameworks report, not the workflow's word alone.
 */
export async function felixThreeNodes(
  env: FelixBenchEnv,
  runs: number,
): Promise<Record<string, unknown> & { scenario: string }> {
  const binDir = path.join(repoRoot, '.tools');
  const agentPort = await portFreeOnAll(nodes);
  const managementPort = await portFreeOnAll(nodes);
  const config = path.join(env.dir, 'felix-agent.yaml');
  await writeFile(
    config,
    stringify({
      events: { enabled: false },
      middleware: { binDir, enabled: ['felix'], felix: { managementPort, heapMb: 96 } },
    }),
  );
  const root = (n: string) => path.join(env.dir, 'felix-nodes', n);
  const agents: ChildProcess[] = [];
  const frameworks = nodes.map((n) =>
    createFelixAdapter({
      address: n,
      layout: new NodeLayout(root(n)),
      binDir,
      logger: createLogger('bench', 'warn'),
      options: { managementPort },
    }),
  );
  try {
    const jars = await greeterBundles();
    await Promise.all(
      nodes.map(async (n) => {
        await mkdir(root(n), { recursive: true });
        const agent = spawnNodeAgent({
          address: n,
          root: root(n),
          temporalAddress: env.serverAddress,
          tokenFile: env.tokenFile,
          port: agentPort,
          binDir,
          env: { CG_CONFIG: config, CG_CLUSTER_ID: 'bench-felix' },
          onLine: env.line(`felix agent ${n}`),
        });
        agents.push(agent);
        await agent.waitForLine(agentReadyLine, 120_000);
      }),
    );
    const target = { url: `http://${nodes[0] ?? ''}:${agentPort}`, token: env.token };
    const sha = {
      api: (await pushBundle(target, jars.api)).sha256,
      provider: (await pushBundle(target, jars.provider)).sha256,
      provider11: (await pushBundle(target, jars.provider11)).sha256,
    };
    const rollout = async (
      symbolicName: string,
      input: Omit<RolloutBundleInput, 'clusterId'>,
    ): Promise<{ ms: number; result: RolloutBundleResult }> => {
      const started = Date.now();
      const handle = await startRunbook(
        env.client,
        'rolloutBundle',
        { clusterId: 'bench-felix', nodes, ...input },
        { symbolicName, taskQueue: env.orchestratorQueue },
      );
      const result = await handle.result();
      if (result.outcome !== 'completed') {
        throw new Error(`${symbolicName} rollout: ${result.outcome}: ${result.reason ?? ''}`);
      }
      return { ms: Date.now() - started, result };
    };
    // The frameworks start with the first rollout (the agents supervise them).
    const first = await rollout('com.example.greeter.api', { sha256: sha.api, batchSize: 3 });
    await rollout(provider, { sha256: sha.provider, batchSize: 3 });
    const seconds: number[] = [];
    for (let i = 0; i < runs; i++) {
      const { ms, result } = await rollout(provider, { sha256: sha.provider11 });
      if (result.nodes.some((n) => n.status !== 'installed')) {
        throw new Error(`not installed everywhere: ${JSON.stringify(result.nodes)}`);
      }
      for (const f of frameworks) {
        const b = findBundle((await f.management.list()).bundles, provider);
        if (b?.version !== '1.1.0' || b.state !== 'ACTIVE') {
          throw new Error(`a framework reports ${JSON.stringify(b)} after the rollout`);
        }
      }
      seconds.push(ms / 1000);
      await rollout(provider, { sha256: sha.provider, allowDowngrade: true, batchSize: 3 });
    }
    const s = summarize(seconds, 2);
    return {
      scenario: 'felix_three_nodes',
      nodes: nodes.length,
      bundle: `${provider} 1.0.0 → 1.1.0, batchSize 1, no health check`,
      rolloutSeconds: { n: s.n, min: s.min, median: s.p50, max: s.max, mean: s.mean },
      firstRolloutWithFrameworkStartsSeconds: round(first.ms / 1000, 2),
    };
  } finally {
    await Promise.all(agents.map((a) => a.stop()));
    await Promise.all(frameworks.map((f) => f.stopServer({ force: true }).catch(() => undefined)));
  }
}
