import { startDevServer } from '../src/temporal/dev-server.js';

export interface BenchServer {
  address: string;
  namespace: string;
  pid: number;
  stop(): Promise<void>;
}

/**
 * The bench's own headless dev server on a SQLite file, with the SQLite pragmas as a
 * parameter: they are one of the tunings the bench compares.
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
  const server = await startDevServer({
    binary: options.binary,
    ip: options.ip,
    port: options.port,
    headless: true,
    logLevel: 'error',
    dbFile: options.dbFile,
    sqlitePragmas: options.pragmas,
    ...(options.dynamicConfig ? { dynamicConfig: options.dynamicConfig } : {}),
  });
  return {
    address: server.address,
    namespace: server.namespace,
    pid: server.process.pid ?? 0,
    stop: () => server.stop(),
  };
}
