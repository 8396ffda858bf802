import type { Client } from '@temporalio/client';
import type { Command } from 'commander';
import type { RunbookName, StartOptions } from '../client/index.js';
import type { Globals } from './common.js';
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

export async function startCommand<N extends RunbookName>(
  cmd: Command,
  runbook: N,
  fields: Record<string, unknown>,
  options: Omit<StartOptions, 'taskQueue'> = {},
): Promise<number> {
  return (await import('./run.js')).startCommand(cmd, runbook, fields, options);
}
