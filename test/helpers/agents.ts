import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { agentReadyLine, spawnNodeAgent, type ChildProcess } from '../../src/dev/processes.js';
import { assertPortFree, freePort } from '../../src/temporal/dev-server.js';
import { testServer } from './temporal.js';

/** A port that is free on every one of `hosts`. */
export async function freePortOnAll(hosts: string[]): Promise<number> {
  for (let tries = 0; tries < 20; tries++) {
    const port = await freePort(hosts[0]);
    try {
      for (const h of hosts.slice(1)) await assertPortFree(h, port, 'test agent');
      return port;
    } catch {
      // taken on another address: try another
    }
  }
  throw new Error(`no port free on all of ${hosts.join(', ')}`);
}

export interface TestCluster {
  dir: string;
  token: string;
  tokenFile: string;
  port: number;
  agents: Map<string, ChildProcess>;
  /** Every output line of each agent, for assertions. */
  lines: Map<string, string[]>;
  start(address: string): Promise<ChildProcess>;
  close(): Promise<void>;
}

/** Real node agent processes on loopback addresses, each with its own root under a temp dir. */
export async function startTestCluster(
  addresses: string[],
  options: {
    /** More `CG_*` settings per agent, e.g. `CG_CONFIG` for a YAML file of its own. */
    env?: (address: string) => Record<string, string>;
  } = {},
): Promise<TestCluster> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'cg-cluster-'));
  const token = randomBytes(24).toString('base64url');
  const tokenFile = path.join(dir, 'cluster-token');
  await writeFile(tokenFile, `${token}\n`, { mode: 0o600 });
  const port = await freePortOnAll(addresses);
  const agents = new Map<string, ChildProcess>();
  const lines = new Map<string, string[]>();
  const { address: temporalAddress, namespace } = testServer();
  const cluster: TestCluster = {
    dir,
    token,
    tokenFile,
    port,
    agents,
    lines,
    async start(address) {
      const log = lines.get(address) ?? [];
      lines.set(address, log);
      const agent = spawnNodeAgent({
        address,
        root: path.join(dir, 'nodes', address),
        temporalAddress,
        namespace,
        tokenFile,
        port,
        binDir: path.join(dir, 'bin'),
        // These agents run no middleware of their own (an empty binDir): no supervisor
        // (docs/design.md, "Self-healing node") unless a test's env turns it on.
        env: { CG_AGENT__SUPERVISOR__ENABLED: 'false', ...options.env?.(address) },
        onLine: (line) => log.push(line),
      });
      agents.set(address, agent);
      await agent.waitForLine(agentReadyLine, 180_000);
      return agent;
    },
    async close() {
      await Promise.all([...agents.values()].map((a) => a.stop()));
      await rm(dir, { recursive: true, force: true });
    },
  };
  try {
    await Promise.all(addresses.map((a) => cluster.start(a)));
  } catch (err) {
    await cluster.close();
    throw err;
  }
  return cluster;
}
