import { createWriteStream } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Connection } from '@temporalio/client';
import { msToTs } from '@temporalio/common/lib/time.js';
import { execa, type ResultPromise } from 'execa';
import { repoRoot } from '../process.js';
import type { CertFiles } from './certs.js';
import type { RunningPostgres } from './postgres.js';
import type { ServerTools } from './tools.js';

/** The databases of deploy/temporal/production.yaml: default store and visibility. */
const databases = [
  { name: 'temporal', schema: 'temporal' },
  { name: 'temporal_visibility', schema: 'visibility' },
] as const;

const sqlEnv = (pg: RunningPostgres) => ({
  SQL_PLUGIN: 'postgres12',
  SQL_HOST: pg.host,
  SQL_PORT: String(pg.port),
  SQL_USER: pg.user,
  // In the environment, not on the command line, where `ps` would show it.
  SQL_PASSWORD: pg.password,
});

/**
 * Creates both databases and brings their schema to the release's version with the server's own
 * SQL tool — what the temporalio/admin-tools image runs in docker-compose.yml. Idempotent: an
 * existing database is kept and only upgraded.
 */
export async function applySchema(tools: ServerTools, pg: RunningPostgres): Promise<void> {
  for (const db of databases) {
    const run = (args: string[]) =>
      execa(tools.sqlTool, ['--db', db.name, ...args], {
        env: { ...process.env, ...sqlEnv(pg) },
        all: true,
        reject: false,
      });
    const created = await run(['create-database']);
    if (created.exitCode !== 0 && !/already exists/i.test(created.all)) {
      throw new Error(`temporal-sql-tool create-database ${db.name} failed:\n${created.all}`);
    }
    for (const args of [
      ['setup-schema', '-v', '0.0'],
      ['update-schema', '-d', path.join(tools.schemaDir, db.schema, 'versioned')],
    ]) {
      const res = await run(args);
      if (res.exitCode !== 0) {
        throw new Error(`temporal-sql-tool ${args[0]} on ${db.name} failed:\n${res.all}`);
      }
    }
  }
}

export interface TemporalServerOptions {
  tools: ServerTools;
  postgres: RunningPostgres;
  /** Every service of the server listens here; the frontend on :7233. */
  host: string;
  ca: string;
  frontend: CertFiles;
  /** The server's output (JSON lines). */
  logFile: string;
}

export interface TemporalServer {
  address: string;
  process: ResultPromise;
  stop(): Promise<void>;
  kill(): Promise<void>;
}

/** The server's environment for deploy/temporal/production.yaml. */
export function serverEnv(options: TemporalServerOptions): Record<string, string> {
  return {
    TEMPORAL_BIND_IP: options.host,
    POSTGRES_SEEDS: options.postgres.host,
    DB_PORT: String(options.postgres.port),
    POSTGRES_USER: options.postgres.user,
    POSTGRES_PWD: options.postgres.password,
    TEMPORAL_TLS_CERT: options.frontend.cert,
    TEMPORAL_TLS_KEY: options.frontend.key,
    TEMPORAL_TLS_CA: options.ca,
    TEMPORAL_DYNAMIC_CONFIG: path.join(repoRoot, 'deploy', 'temporal', 'dynamicconfig.yaml'),
  };
}

/** A gRPC connection with the stack's client certificate (what every clusterguard process uses). */
export function connectTls(address: string, ca: Buffer, client: { crt: Buffer; key: Buffer }) {
  return Connection.connect({
    address,
    // A name on the frontend's certificate: Node warns about TLS server names that are IPs.
    tls: { serverRootCACertificate: ca, clientCertPair: client, serverNameOverride: 'localhost' },
    connectTimeout: 2000,
  });
}

/**
 * Starts the Temporal server (all four services in one process) on deploy/temporal/ and waits
 * until its frontend answers a health check over mutual TLS.
 */
export async function startTemporalServer(
  options: TemporalServerOptions,
  tls: { ca: Buffer; client: { crt: Buffer; key: Buffer } },
  readyTimeoutMs = 120_000,
): Promise<TemporalServer> {
  const address = `${options.host}:7233`;
  const log = createWriteStream(options.logFile, { flags: 'a' });
  const child = execa(
    options.tools.server,
    [
      '--root',
      repoRoot,
      '--config',
      'deploy/temporal',
      '--env',
      'production',
      '--allow-no-auth',
      'start',
    ],
    {
      cwd: repoRoot,
      env: { ...process.env, ...serverEnv(options) },
      all: true,
      buffer: false,
      reject: false,
      cleanup: true,
      forceKillAfterDelay: 15_000,
    },
  );
  child.all.pipe(log);
  let exited = false;
  void child.then(() => {
    exited = true;
  });
  const deadline = Date.now() + readyTimeoutMs;
  let lastError = '';
  for (;;) {
    if (exited) {
      throw new Error(
        `the Temporal server exited (code ${child.exitCode}) before it was ready; see ${options.logFile}`,
      );
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(
        `the Temporal server was not ready within ${readyTimeoutMs} ms: ${lastError}`,
      );
    }
    try {
      const conn = await connectTls(address, tls.ca, tls.client);
      try {
        await conn.workflowService.getSystemInfo({});
        break;
      } finally {
        await conn.close();
      }
    } catch (err) {
      lastError = (err as Error).message;
      await sleep(500);
    }
  }
  return {
    address,
    process: child,
    async stop() {
      if (exited) return;
      child.kill('SIGTERM');
      await child;
    },
    async kill() {
      if (exited) return;
      child.kill('SIGKILL');
      await child;
    },
  };
}

const alreadyExists = (err: unknown) =>
  (err as { code?: number }).code === 6 || /already/i.test((err as Error).message);

/**
 * The namespace and the runbooks' search attributes (src/contracts/search-attributes.ts), which
 * the dev server gets from its command line. Idempotent.
 */
export async function prepareNamespace(
  address: string,
  namespace: string,
  tls: { ca: Buffer; client: { crt: Buffer; key: Buffer } },
): Promise<void> {
  const conn = await connectTls(address, tls.ca, tls.client);
  try {
    await conn.workflowService
      .registerNamespace({ namespace, workflowExecutionRetentionPeriod: msToTs('7 days') })
      .catch((err: unknown) => {
        if (!alreadyExists(err)) throw err;
      });
    // IndexedValueType: 2 = KEYWORD, 7 = KEYWORD_LIST.
    const wanted: Record<string, number> = { ClusterId: 2, Runbook: 2, Nodes: 7 };
    for (let attempt = 0; ; attempt++) {
      try {
        const have = await conn.operatorService.listSearchAttributes({ namespace });
        const missing = Object.keys(wanted).filter((k) => !(k in (have.customAttributes ?? {})));
        if (missing.length === 0) return;
        await conn.operatorService.addSearchAttributes({
          namespace,
          searchAttributes: Object.fromEntries(missing.map((k) => [k, wanted[k]!])),
        });
      } catch (err) {
        // A namespace just registered takes the server a few seconds to know.
        if (attempt > 60 || alreadyExists(err)) {
          if (!alreadyExists(err)) throw err;
        }
        await sleep(1000);
      }
    }
  } finally {
    await conn.close();
  }
}
