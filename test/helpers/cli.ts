import assert from 'node:assert/strict';
import path from 'node:path';
import { execa } from 'execa';
import { repoRoot } from '../../src/process.js';
import { testServer } from './temporal.js';

/** The `clusterguard` binary as a user runs it: bin/clusterguard.mjs in a subprocess. */

export interface CliRun {
  exitCode: number;
  stdout: string;
  stderr: string;
}

export async function runCli(
  args: string[],
  env: Record<string, string>,
  timeoutMs = 60_000,
): Promise<CliRun> {
  const r = await execa(
    process.execPath,
    [path.join(repoRoot, 'bin', 'clusterguard.mjs'), ...args],
    {
      cwd: repoRoot,
      reject: false,
      env,
      extendEnv: false,
      timeout: timeoutMs,
    },
  );
  return { exitCode: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
}

/**
 * The environment of a CLI run against the run's dev server and an orchestrator's task queue;
 * `home` keeps an operator's ~/.config/clusterguard/cli.yaml out of the way.
 */
export function cliEnv(home: string, taskQueue: string): Record<string, string> {
  const { address, namespace } = testServer();
  return {
    PATH: process.env.PATH ?? '',
    HOME: home,
    XDG_CONFIG_HOME: home,
    TEMPORAL_ADDRESS: address,
    TEMPORAL_NAMESPACE: namespace,
    CLUSTERGUARD_TASK_QUEUE: taskQueue,
  };
}

export function parseJson<T>(r: CliRun): T {
  try {
    return JSON.parse(r.stdout) as T;
  } catch {
    assert.fail(`not JSON (exit ${r.exitCode}):\n${r.stdout}\n${r.stderr}`);
  }
}
