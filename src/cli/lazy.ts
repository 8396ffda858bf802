import type { Client } from '@temporalio/client';
import type { Command } from 'commander';
import type { Globals } from './common.js';
import type { startCommand as runStartCommand } from './run.js';
import type { ResolvedConnection } from './settings.js';

/**
 * The heavy half of the CLI, loaded only by a command that runs: the Temporal client, the
 * schemas, the tables. Defining the commands (and so `--help`, `--version`, `completion`) needs
 * none of it (docs/cli.md, "Start-up").
 */

export const clientApi = () => import('../client/index.js');
export const renderApi = () => import('./render.js');
export const yamlApi = async () => (await import('yaml')).default;

/**
 * Runs `fn` with a connected client. The frontend is probed first, before the client's modules
 * load, so that an unreachable server is reported at once (src/cli/probe.ts).
 */
export async function withClient<T>(
  cmd: Command,
  fn: (client: Client, conn: ResolvedConnection) => Promise<T>,
): Promise<T> {
  const { resolveConnection } = await import('./settings.js');
  const conn = resolveConnection(cmd.optsWithGlobals<Globals>());
  const { ProbeFailure, cannotConnect, probeFrontend } = await import('./probe.js');
  try {
    await probeFrontend(conn.connect, conn.connect.connectTimeoutMs ?? 1500);
  } catch (err) {
    throw err instanceof ProbeFailure ? cannotConnect(conn, err.message) : err;
  }
  return (await import('./run.js')).withClient(conn, fn);
}

/** `startCommand` of ./run.js, loaded on first use. */
export const startCommand: typeof runStartCommand = async (...args) =>
  (await import('./run.js')).startCommand(...args);
