import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { Connection } from '@temporalio/client';
import { execa, type ResultPromise } from 'execa';
import { devServerSearchAttributes } from '../src/contracts/search-attributes.js';
import { assertPortFree } from '../src/temporal/dev-server.js';

export interface BenchServer {
  address: string;
  namespace: string;
  pid: number;
  stop(): Promise<void>;
}

/**
 * The bench's own dev server on a SQLite file. Like src/temporal/dev-server.ts, but with the
 * SQLite pragmas as a parameter: they are one of the tunings the bench compares.
 */
export async function startBenchServer(options: {
  binary: string;
  ip: string;
  port: number;
  dbFile: string;
  /** `KEY=VALUE`; journal_mode=WAL is always set. */
  pragmas: string[];
  /** `--dynamic-config-value KEY=<json>`. */
  dynamicConfig?: Record<string, string>;
}): Promise<BenchServer> {
  await assertPortFree(options.ip, options.port, 'Temporal frontend');
  await mkdir(path.dirname(options.dbFile), { recursive: true });
  const args = [
    'server',
    'start-dev',
    '--headless',
    '--ip',
    options.ip,
    '--port',
    String(options.port),
    '--log-level',
    'error',
    '--db-filename',
    options.dbFile,
    ...['journal_mode=WAL', ...options.pragmas].flatMap((p) => ['--sqlite-pragma', p]),
    ...devServerSearchAttributes.flatMap((sa) => ['--search-attribute', sa]),
    ...Object.entries(options.dynamicConfig ?? {}).flatMap(([k, v]) => [
      '--dynamic-config-value',
      `${k}=${v}`,
    ]),
  ];
  const child: ResultPromise = execa(options.binary, args, {
    reject: false,
    cleanup: true,
    all: true,
    buffer: { all: true },
    forceKillAfterDelay: 5000,
  });
  let output = '';
  child.all?.on('data', (chunk: Buffer) => {
    output = (output + chunk.toString()).slice(-4000);
  });
  let exited = false;
  void child.then(() => {
    exited = true;
  });
  const address = `${options.ip}:${options.port}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (exited) throw new Error(`the Temporal dev server exited during start-up:\n${output}`);
    try {
      const connection = await Connection.connect({ address, connectTimeout: 1000 });
      try {
        await connection.workflowService.describeNamespace({ namespace: 'default' });
        break;
      } finally {
        await connection.close();
      }
    } catch (err) {
      if (Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new Error(`the dev server did not answer within 60 s: ${(err as Error).message}`);
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  }
  return {
    address,
    namespace: 'default',
    pid: child.pid ?? 0,
    async stop() {
      if (exited) return;
      child.kill('SIGTERM');
      await child;
    },
  };
}
