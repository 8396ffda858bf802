import path from 'node:path';
import { loadAppConfig } from '../../src/config/app-config.js';
import { createLogger } from '../../src/logger.js';
import { createMiddlewareAdapter } from '../../src/middleware/index.js';
import type { FelixAdapter } from '../../src/middleware/felix/adapter.js';
import type { FelixListing } from '../../src/middleware/felix/client.js';
import type { MiddlewareAdapter } from '../../src/middleware/kit/index.js';
import type { Stack } from '../helpers/stack.js';

/**
 * The campaign's only contact with src/middleware: a node's ZooKeeper, Kafka or Felix adapter,
 * built from the same config file its agent reads, to find the server's pid, to see whether it
 * serves again, to start it again after a SIGKILL when the agents' supervisors are off
 * (`--no-supervisor`), and to ask a framework what it runs.
 */
export type ServerName = 'zookeeper' | 'kafka' | 'felix';

async function adapterOf(stack: Stack, node: string, name: ServerName): Promise<MiddlewareAdapter> {
  const config = await loadAppConfig({ file: path.join(stack.dir, 'agent.yaml'), env: {} });
  return createMiddlewareAdapter(name, config, {
    address: node,
    layout: stack.layout(node),
    logger: createLogger(`chaos ${name} ${node}`, 'error'),
  });
}

/** The pid of the node's running server, if it runs. */
export async function serverPid(
  stack: Stack,
  node: string,
  name: ServerName,
): Promise<number | undefined> {
  const status = await (await adapterOf(stack, node, name)).checkServer();
  return status.running ? status.pid : undefined;
}

/** Whether the node's server runs and serves (Kafka: its broker is registered). */
export async function serverServes(stack: Stack, node: string, name: ServerName): Promise<boolean> {
  return (await (await adapterOf(stack, node, name)).checkServer()).healthy;
}

/** SIGKILLs the server and its process group (middleware runs detached, leading its group). */
export function killServer(pid: number): void {
  for (const target of [-pid, pid]) {
    try {
      process.kill(target, 'SIGKILL');
    } catch {
      // not a group leader, or gone already
    }
  }
}

/** Starts the node's server with the configuration it has; a running one is left alone. */
export async function restartServer(stack: Stack, node: string, name: ServerName): Promise<void> {
  const status = await (await adapterOf(stack, node, name)).startServer();
  if (!status.running) throw new Error(`${name} on ${node} did not start: ${status.detail}`);
}

/** What the node's Felix framework runs, from its management bundle. */
export async function felixListing(stack: Stack, node: string): Promise<FelixListing> {
  const felix = (await adapterOf(stack, node, 'felix')) as FelixAdapter;
  return felix.management.list(AbortSignal.timeout(10_000));
}

/** The node's framework log (the greeter consumer says there what it got). */
export async function felixLogFile(stack: Stack, node: string): Promise<string> {
  return ((await adapterOf(stack, node, 'felix')) as FelixAdapter).logFile;
}
