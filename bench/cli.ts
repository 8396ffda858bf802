/**
 * `cli_startup` (docs/performance.md): how long the `clusterguard` CLI takes, as a whole process
 * started by a shell would, for what needs no server (`--help`, `--version`), for a server it
 * cannot reach (nothing listening; a listener that accepts and never answers), and for one
 * round trip to the bench's real Temporal server (`status` of a runbook that does not exist).
 */
import { createServer, type Server } from 'node:net';
import path from 'node:path';
import { execa } from 'execa';
import { repoRoot } from '../src/process.js';
import { freePort } from '../src/temporal/dev-server.js';
import { summarize, type Summary } from './lib.js';

const bin = path.join(repoRoot, 'bin', 'clusterguard.mjs');

interface Case {
  what: string;
  args: string[];
  /** The exit code the case must end with: a run that exits otherwise fails the scenario. */
  exitCode: number;
}

export type CliStartupResult = Record<string, unknown> & {
  scenario: 'cli_startup';
  runs: number;
  /** Wall milliseconds from spawn to exit, per case. */
  cases: Record<string, Summary & { exitCode: number; args: string[] }>;
};

async function timed(args: string[]): Promise<{ ms: number; exitCode: number; stderr: string }> {
  const started = process.hrtime.bigint();
  const r = await execa(process.execPath, [bin, ...args], {
    reject: false,
    env: { NO_COLOR: '1' },
    timeout: 30_000,
  });
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  return { ms, exitCode: r.exitCode ?? -1, stderr: r.stderr };
}

export async function cliStartup(serverAddress: string, runs: number): Promise<CliStartupResult> {
  // Accepts connections and never answers: the CLI's own connect timeout (1.5 s) ends the wait.
  const silent: Server = createServer(() => undefined);
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  const silentPort = (silent.address() as { port: number }).port;
  const closedPort = await freePort();
  const cases: Case[] = [
    { what: 'help', args: ['--help'], exitCode: 0 },
    { what: 'version', args: ['--version'], exitCode: 0 },
    {
      what: 'connection_refused',
      args: ['status', 'cg/bench/none', '--address', `127.0.0.1:${closedPort}`],
      exitCode: 3,
    },
    {
      what: 'server_silent',
      args: ['status', 'cg/bench/none', '--address', `127.0.0.1:${silentPort}`],
      exitCode: 3,
    },
    {
      what: 'status_round_trip',
      args: ['status', 'cg/bench/none', '--address', serverAddress],
      exitCode: 4,
    },
  ];
  const out: CliStartupResult['cases'] = {};
  try {
    for (const c of cases) {
      await timed(c.args); // warm-up: file system caches
      const times: number[] = [];
      for (let i = 0; i < runs; i++) {
        const r = await timed(c.args);
        if (r.exitCode !== c.exitCode) {
          throw new Error(
            `clusterguard ${c.args.join(' ')} exited ${r.exitCode}, expected ${c.exitCode}: ${r.stderr.slice(0, 400)}`,
          );
        }
        if (r.stderr.includes('running from the TypeScript sources')) {
          throw new Error('the compiled CLI is missing or stale: run `npm run setup` first');
        }
        times.push(r.ms);
      }
      out[c.what] = { ...summarize(times, 0), exitCode: c.exitCode, args: c.args };
    }
  } finally {
    silent.close();
  }
  return { scenario: 'cli_startup', runs, cases: out };
}
