import assert from 'node:assert/strict';
import path from 'node:path';
import { execa } from 'execa';
import { repoRoot } from '../../src/process.js';

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

export function parseJson<T>(r: CliRun): T {
  try {
    return JSON.parse(r.stdout) as T;
  } catch {
    assert.fail(`not JSON (exit ${r.exitCode}):\n${r.stdout}\n${r.stderr}`);
  }
}
