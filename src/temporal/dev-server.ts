import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { Connection } from '@temporalio/client';
import { devServerSearchAttributes } from '../contracts/search-attributes.js';

export interface DevServerOptions {
  /** Path of the `temporal` CLI (the setup step links it at `.tools/bin/temporal`). */
  binary: string;
  ip?: string;
  port?: number;
  uiPort?: number;
  /** No Web UI: what tests use. */
  headless?: boolean;
  /** SQLite file; in memory when absent. */
  dbFile?: string;
  /** `KEY=VALUE` SQLite pragmas besides journal_mode=WAL (the bench compares tunings). */
  sqlitePragmas?: string[];
  namespace?: string;
  logLevel?: 'debug' | 'info' | 'warn' | 'error';
  readyTimeoutMs?: number;
  /** `--dynamic-config-value KEY=<json>` of the server, e.g. `{ 'history.timerProcessorMaxTimeShift': '"1ms"' }`. */
  dynamicConfig?: Record<string, string>;
}

export interface DevServer {
  address: string;
  uiUrl?: string;
  namespace: string;
  process: ResultPromise;
  stop(): Promise<void>;
}

// Ports: see src/process.ts (they live there so that node-side modules can use them too).
import { assertPortFree, freePort } from '../process.js';
export { assertPortFree, freePort };

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Starts `temporal server start-dev` with clusterguard's search attributes and waits until the
 * namespace answers. The SDK's own launcher gives a server only 5 s to come up; this waits as
 * long as `readyTimeoutMs` and fails early, with the server's output, if the process exits.
 */
export async function startDevServer(options: DevServerOptions): Promise<DevServer> {
  const ip = options.ip ?? '127.0.0.1';
  const port = options.port ?? 7233;
  const uiPort = options.uiPort ?? port + 1000;
  const namespace = options.namespace ?? 'default';
  await assertPortFree(ip, port, 'Temporal frontend');
  if (!options.headless) await assertPortFree(ip, uiPort, 'Temporal Web UI');
  const args = [
    'server',
    'start-dev',
    '--ip',
    ip,
    '--port',
    String(port),
    '--log-level',
    options.logLevel ?? 'warn',
    '--namespace',
    namespace,
    ...devServerSearchAttributes.flatMap((sa) => ['--search-attribute', sa]),
  ];
  for (const [key, value] of Object.entries(options.dynamicConfig ?? {})) {
    args.push('--dynamic-config-value', `${key}=${value}`);
  }
  if (options.headless) args.push('--headless');
  else args.push('--ui-port', String(uiPort));
  if (options.dbFile) {
    await mkdir(path.dirname(options.dbFile), { recursive: true });
    args.push('--db-filename', options.dbFile);
    for (const pragma of ['journal_mode=WAL', ...(options.sqlitePragmas ?? [])]) {
      args.push('--sqlite-pragma', pragma);
    }
  }
  const child = execa(options.binary, args, {
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

  const address = `${ip}:${port}`;
  const deadline = Date.now() + (options.readyTimeoutMs ?? 60_000);
  for (;;) {
    if (exited) {
      throw new Error(`the Temporal dev server exited during start-up:\n${output.trim()}`);
    }
    try {
      const connection = await Connection.connect({ address, connectTimeout: 1000 });
      try {
        await connection.workflowService.describeNamespace({ namespace });
        break;
      } finally {
        await connection.close();
      }
    } catch (err) {
      if (Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new Error(
          `the Temporal dev server did not answer on ${address} within ` +
            `${Math.round((options.readyTimeoutMs ?? 60_000) / 1000)} s: ${(err as Error).message}\n${output.trim()}`,
        );
      }
      await sleep(250);
    }
  }
  return {
    address,
    namespace,
    uiUrl: options.headless ? undefined : `http://${ip}:${uiPort}`,
    process: child,
    async stop() {
      if (exited) return;
      child.kill('SIGTERM');
      await child;
    },
  };
}
